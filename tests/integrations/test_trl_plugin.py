"""reward_fns/trl_reward.py: called directly the way TRL 1.16 calls reward functions, pickled, and inside a
real ``GRPOTrainer.train()`` on a tiny randomly initialised Qwen2 on CPU."""
from __future__ import annotations

import json
import pickle

import pytest

from acecoder_rl.integrations import TRLReward
from acecoder_rl.integrations.common import METRIC_KEYS

PLUGIN = "trl_reward.py"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
ADD = "def add(a, b):\n    return a + b\n"


def test_known_good_completions_score_one_in_every_form(local_backend, load_plugin):
    reward = load_plugin(PLUGIN, "trl_reward").acecoder_reward
    assert reward.__name__ == "acecoder_reward"
    completions = [
        ADD,  # standard (text) dataset
        f"Sure:\n```python\n{ADD}```",
        [{"role": "assistant", "content": ADD}],  # conversational dataset
        [{"role": "assistant", "content": "let me think"}, {"role": "tool", "content": "..."},
         {"role": "assistant", "content": [{"type": "text", "text": f"```python\n{ADD}"},
                                           {"type": "text", "text": "```"}]}],
    ]
    out = reward(prompts=["Write add."] * 4, completions=completions, completion_ids=[[1]] * 4,
                 test_cases=[ADD_TESTS, json.dumps(ADD_TESTS), tuple(ADD_TESTS), ADD_TESTS], id=list("abcd"))
    assert out == [1.0, 1.0, 1.0, 1.0] and all(type(x) is float for x in out)


def test_wrong_code_and_bad_rows(local_backend, warnings_log):
    reward = TRLReward()
    metrics, extra = {}, {}
    out = reward(prompts=["p"] * 5,
                 completions=["def add(a, b):\n    return a - b\n", ADD, ADD,
                              [{"role": "user", "content": ADD}], 7],
                 test_cases=[ADD_TESTS, "[1, 2]", [], ADD_TESTS, ADD_TESTS],
                 log_metric=lambda name, value: metrics.setdefault(name, value),
                 log_extra=lambda column, values: extra.setdefault(column, values))
    assert out == [0.0, 0.0, 0.0, 0.0, 0.0]
    for reason in ("test_cases[1][0] must be a string", "test_cases[2] is empty", "no assistant message",
                   "a completion must be a string or a list of messages"):
        assert reason in warnings_log.text
    assert set(metrics) == {f"acecoder/{k}" for k in METRIC_KEYS}
    assert metrics["acecoder/reward_error"] == pytest.approx(0.8)
    assert extra == {"acecoder_status": ["ok"] + ["reward_error"] * 4}


def test_wiring_errors_raise():
    with pytest.raises(ValueError, match="no 'test_cases' column"):
        TRLReward()(prompts=["p"], completions=[ADD], tests=[ADD_TESTS])
    with pytest.raises(ValueError, match="2 completions but 1 values"):
        TRLReward()(prompts=["p", "p"], completions=[ADD, ADD], test_cases=[ADD_TESTS])


def test_pickle_round_trip(local_backend, load_plugin):
    reward = load_plugin(PLUGIN, "trl_reward").acecoder_reward
    clone = pickle.loads(pickle.dumps(reward))
    assert isinstance(clone, TRLReward) and clone.__name__ == "acecoder_reward"
    assert clone.tests_column == "test_cases" and clone.scorer is None
    assert clone(prompts=["p"], completions=[ADD], test_cases=[ADD_TESTS]) == [1.0]
    custom = pickle.loads(pickle.dumps(TRLReward(tests_column="asserts", name="code_reward")))
    assert (custom.tests_column, custom.__name__) == ("asserts", "code_reward")


def test_loadable_by_the_trl_cli_dotted_path(monkeypatch, local_backend):
    """``trl grpo --reward_funcs reward_fns.trl_reward.acecoder_reward`` imports it from the current
    directory (TRL puts it on sys.path)."""
    import importlib
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    try:
        reward = importlib.import_module("reward_fns.trl_reward").acecoder_reward
        assert reward(prompts=["p"], completions=[ADD], test_cases=[ADD_TESTS]) == [1.0]
    finally:
        for name in ("reward_fns.trl_reward", "reward_fns"):
            sys.modules.pop(name, None)


def test_grpo_trainer_calls_the_reward_with_the_dataset_columns(local_backend, tiny_tokenizer, tmp_path):
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    class Recording(TRLReward):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[dict, list]] = []

        def __call__(self, prompts, completions, **kwargs):
            out = super().__call__(prompts, completions, **kwargs)
            self.calls.append(({"prompts": prompts, "completions": completions, **kwargs}, out))
            return out

    reward = Recording()
    rows = [{"prompt": [{"role": "user", "content": f"Write f{i}."}], "test_cases": [f"assert f{i}() == {i}"],
             "id": f"row-{i}"} for i in range(4)]
    config = Qwen2Config(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256,
                         eos_token_id=tiny_tokenizer.eos_token_id, pad_token_id=tiny_tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=16, report_to=[], use_cpu=True, bf16=False, logging_steps=1,
                      save_strategy="no", learning_rate=1e-4, seed=0)
    trainer = GRPOTrainer(model=Qwen2ForCausalLM(config), reward_funcs=reward, args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tiny_tokenizer)
    trainer.train()

    assert reward.calls, "GRPOTrainer never called the reward function"
    by_id = {r["id"]: r["test_cases"] for r in rows}
    for kwargs, out in reward.calls:
        n = len(kwargs["completions"])
        assert n == 2 and len(kwargs["prompts"]) == n
        assert all(isinstance(c, list) and c[-1]["role"] == "assistant" for c in kwargs["completions"])
        assert [by_id[i] for i in kwargs["id"]] == kwargs["test_cases"]  # the row's own tests, per completion
        assert isinstance(out, list) and len(out) == n and all(type(x) is float for x in out)
        assert out == [0.0] * n  # a random model writes no working code
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert "rewards/acecoder_reward/mean" in logged
    assert {"acecoder/pass_rate", "acecoder/reward_error", "acecoder/status_ok"} <= logged
