"""builtin:tiny-llama: built without a download, deterministic, one token per candidate program, a prior
spread over the programs, and it loads back from disk exactly as it was built."""
from __future__ import annotations

import pytest
import torch

from acecoder_rl.data.quickstart import CANDIDATES, TASKS
from acecoder_rl.train.local.builtin_model import UNK, build_tiny_llama, materialize


@pytest.fixture(scope="module")
def built():
    return build_tiny_llama(seed=42)


def prompt_ids(tokenizer, question: str) -> list[int]:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         tokenize=True, return_dict=True)["input_ids"]


def next_token_probs(model, tokenizer, question: str) -> torch.Tensor:
    ids = torch.tensor([prompt_ids(tokenizer, question)])
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1].softmax(-1)


def test_same_seed_same_weights_other_seed_other_weights(built):
    model, _ = built
    again, _ = build_tiny_llama(seed=42)
    other, _ = build_tiny_llama(seed=43)
    state, same, different = model.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not torch.equal(state["model.layers.0.self_attn.q_proj.weight"],
                           different["model.layers.0.self_attn.q_proj.weight"])
    assert model.config.num_hidden_layers == 2 and model.num_parameters() < 200_000


def test_every_candidate_is_one_token_that_decodes_to_the_program(built):
    _, tokenizer = built
    ids = tokenizer.convert_tokens_to_ids(list(CANDIDATES))
    assert len(set(ids)) == len(CANDIDATES) and tokenizer.unk_token_id not in ids
    for program, token in zip(CANDIDATES, ids):
        assert tokenizer.decode([token, tokenizer.eos_token_id], skip_special_tokens=True) == program
    assert tokenizer.decode(ids[:2]) == CANDIDATES[0] + CANDIDATES[1]  # two programs in a row stay Python


def test_prompts_are_chatml_and_every_task_reads_differently(built):
    _, tokenizer = built
    encoded = [prompt_ids(tokenizer, task.question) for task in TASKS]
    assert len({tuple(ids) for ids in encoded}) == len(TASKS)
    for ids in encoded:
        assert UNK not in tokenizer.convert_ids_to_tokens(ids)
    tokens = tokenizer.convert_ids_to_tokens(encoded[0])
    assert tokens[0] == "<|im_start|>" and tokens[-3:] == ["<|im_start|>", "\u2581assistant", "\u2581"]
    assert UNK in tokenizer.convert_ids_to_tokens(prompt_ids(tokenizer, "an unseen word"))


def test_untrained_policy_picks_a_program_about_uniformly(built):
    model, tokenizer = built
    programs = tokenizer.convert_tokens_to_ids(list(CANDIDATES))
    for task in TASKS:
        probs = next_token_probs(model, tokenizer, task.question)
        assert probs[programs].sum() > 0.99
        uniform = 1 / len(CANDIDATES)
        assert uniform / 3 < probs[programs].min() and probs[programs].max() < 3 * uniform


def test_materialized_model_loads_back_with_the_auto_classes(built, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = materialize("builtin:tiny-llama", tmp_path / "m", seed=42)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    original_model, original_tokenizer = built
    question = TASKS[0].question
    assert prompt_ids(tokenizer, question) == prompt_ids(original_tokenizer, question)
    assert torch.allclose(next_token_probs(model, tokenizer, question),
                          next_token_probs(original_model, original_tokenizer, question))
    (path / "marker").write_text("kept")
    assert materialize("builtin:tiny-llama", path, seed=1) == path and (path / "marker").exists()  # reused
