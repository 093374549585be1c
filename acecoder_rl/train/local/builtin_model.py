"""Built-in models (``model.pretrain: builtin:tiny-llama``): built in code, no download.

``builtin:tiny-llama`` is a 2-layer Llama (hidden size 64) with random weights from a fixed seed and a
word-level tokenizer built with ``tokenizers``, so the quickstart runs on a machine that cannot reach the
Hub. It is written to a directory like any checkpoint (TRL loads the policy and its reference model from a
path), and loads back with ``AutoTokenizer``/``AutoModelForCausalLM``. Llama rather than Qwen2 (the same
blocks but for Qwen2's q/k/v biases): transformers 5 always rebuilds a ``qwen2`` checkpoint's tokenizer
as Qwen2's byte-level BPE, which would discard this word-level one.

Vocabulary: ChatML's special tokens, the words of the quickstart prompts (any other word is ``<unk>``), and
one token per quickstart candidate program (:data:`acecoder_rl.data.quickstart.CANDIDATES`), which decodes to
the whole ``def f(x): return ...`` line. The chat template is ChatML (``<|im_start|>user ...<|im_end|>``).

The one deliberate prior: Llama's output head has no bias, so residual dimension 0 is reserved as a constant
"bias unit": every token embedding sets it to a small positive value, no block writes to it at
initialisation, and the head rows of all tokens that are not programs read it with a large negative weight.
The untrained model therefore answers every prompt with one of the candidate programs, about uniformly: a
stand-in for a pretrained code model that already writes code, just not yet the right code. Everything else
is the standard random initialisation, and training may change all of it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

BUILTIN_PREFIX = "builtin:"

# ChatML (the Qwen family's template); the prompt ends where the assistant's answer starts.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
ROLE_WORDS = ("system", "user", "assistant")
UNK = "<unk>"
SPACE = "\u2581"  # the Metaspace marker that starts every word

BIAS_UNIT = 0.05  # value of the constant residual dimension (other embedding entries have std 0.02)
NON_PROGRAM_BIAS = -6.0  # head weight on the bias unit for every token that is not a program


def is_builtin(model: str) -> bool:
    return model.startswith(BUILTIN_PREFIX)


def builtin_name(model: str) -> str:
    """``tiny-llama`` for ``builtin:tiny-llama``."""
    return model[len(BUILTIN_PREFIX):]


def build_tiny_llama(seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """The ``tiny-llama`` model and tokenizer (module docstring); the same seed gives the same weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from acecoder_rl.data.quickstart import CANDIDATES, TASKS

    tokenizer = build_tokenizer({word for task in TASKS for word in task.question.split()}, CANDIDATES)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    programs = tokenizer.convert_tokens_to_ids(list(CANDIDATES))
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = BIAS_UNIT
        for layer in model.model.layers:  # what blocks add to the residual stream leaves dimension 0 alone
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        others = torch.ones(len(tokenizer), dtype=torch.bool)
        others[programs] = False
        model.lm_head.weight[others] = 0.0
        model.lm_head.weight[others, 0] = NON_PROGRAM_BIAS
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def build_tokenizer(words: Iterable[str], programs: Sequence[str]) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: ``words`` and the chat roles, ChatML specials, each of ``programs`` one token."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {UNK: 0, SPACE: 1}  # a lone marker: the newline between chat turns
    for word in sorted(set(words) | set(ROLE_WORDS)):
        vocab[SPACE + word] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.normalizer = normalizers.Replace("\n", " ")  # chat-template newlines separate words like spaces
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    # Programs are matched verbatim (not normalised) and decode to their exact text, newline included.
    backend.add_tokens([AddedToken(text, normalized=False, special=False) for text in programs])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=UNK, pad_token="<|endoftext|>",
                                        eos_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


Builder = Callable[[int], tuple["PreTrainedModel", "PreTrainedTokenizerFast"]]
BUILDERS: dict[str, Builder] = {"tiny-llama": build_tiny_llama}


def materialize(model: str, directory: Path, seed: int) -> Path:
    """Write the built-in ``model`` (``builtin:NAME``, ``NAME`` a key of :data:`BUILDERS`) to ``directory``
    and return it. A directory that already holds it (a resumed run) is reused as is: the reference model
    stays the one the run started from."""
    if (directory / "config.json").is_file():
        return directory
    built, tokenizer = BUILDERS[builtin_name(model)](seed)
    built.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
