"""The local backend on vLLM (faked: this machine has no GPU; the only stand-in is the ``vllm`` module) and
on transformers with a built-in model."""

from __future__ import annotations

import sys
import types

from acecoder_rl.data.pipeline.generation import LocalBackend
from acecoder_rl.eval import GenerationSettings
from acecoder_rl.eval import generation as eval_generation


def test_vllm_is_loaded_once_for_every_chunk(monkeypatch, tmp_path):
    from acecoder_rl.train.local.builtin_model import materialize

    path = materialize("builtin:tiny-llama", tmp_path / "model", 0)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    calls = {"loads": 0, "prompts": []}

    class LLM:
        def __init__(self, **kwargs):
            calls["loads"] += 1
            calls["llm"] = kwargs

        def get_tokenizer(self):
            return tokenizer

        def generate(self, prompts, params):
            calls["prompts"].append(prompts)
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"reply {j}", token_ids=[1])
                                                   for j in range(params.n)]) for _ in prompts]

    class SamplingParams:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)
            calls["sampling"] = kwargs

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    monkeypatch.setattr(eval_generation, "_has_vllm", lambda: True)
    monkeypatch.setattr(eval_generation, "_has_cuda", lambda: True)
    settings = GenerationSettings(n=2, temperature=0.7, top_p=1.0, max_new_tokens=16, seed=4)
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "write f"}]
    with LocalBackend(str(path), seed=4) as backend:
        assert backend.chunk_rows == 512
        for _ in range(2):
            replies = backend.generate([chat, chat[1:]], settings)
            assert [reply.texts for reply in replies] == [["reply 0", "reply 1"]] * 2
        assert backend.stats() == {"backend": "vllm", "model": str(path), "generated_tokens": 8}
    assert calls["loads"] == 1 and calls["llm"] == {"model": str(path), "seed": 4}
    assert calls["sampling"] == {"n": 2, "temperature": 0.7, "top_p": 1.0, "max_tokens": 16, "seed": 4}
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert calls["prompts"][0][0]["prompt_token_ids"] == ids
    assert text.startswith("<|im_start|>system\nbe brief") and text.endswith("<|im_start|>assistant\n")


def test_a_builtin_model_is_built_in_a_directory_that_goes_with_the_backend():
    backend = LocalBackend("builtin:tiny-llama")
    built = backend._built
    assert built is not None and (built / "config.json").is_file()
    replies = backend.generate([[{"role": "user", "content": "Write f."}]],
                               GenerationSettings(n=1, temperature=0.0, max_new_tokens=1))
    assert replies[0].texts[0].startswith("def f(x): return")
    backend.close()
    assert not built.exists()
