"""reward_fns/trl_reward.py: called directly the way TRL 1.16 calls reward functions, pickled, and inside a
real ``GRPOTrainer.train()`` on a tiny randomly initialised Qwen2 on CPU."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from acecoder_rl.integrations import TRLReward
from acecoder_rl.reward.results import SAMPLE_METRICS
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.results import ProgramOutcome, ProgramStatus, TestStatus
from acecoder_rl.reward.shaping import shape

PLUGIN = "trl_reward.py"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
ADD = "def add(a, b):\n    return a + b\n"
WRONG_ADD = "def add(a, b):\n    return a - b\n"
SANDBOX_FAULT = "# SANDBOX_FAULT\n"


class SandboxFailsOnMarker:
    """A real engine, except that a program holding SANDBOX_FAULT meets a sandbox error (what the engine
    returns when a worker dies twice in a row), which no test can cause on purpose."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def score(self, completions, test_cases):
        results = self.engine.score(completions, test_cases)
        for i, completion in enumerate(completions):
            if SANDBOX_FAULT in completion:
                error, n = "sandbox error: WorkerFailure: zygote died", len(test_cases[i])
                outcome = ProgramOutcome(ProgramStatus.SANDBOX_ERROR, [TestStatus.NOT_RUN] * n, [error] * n,
                                         completion, error)
                results[i] = shape(outcome, RewardConfig())
        return results


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


def test_wrong_code_scores_zero_and_failed_samples_are_left_out(local_backend, warnings_log):
    """A sample that could not be scored is None (TRL leaves it out of the group baseline), never a fake 0."""
    reward = TRLReward()
    metrics, extra = {}, {}
    out = reward(prompts=["p"] * 4,
                 completions=[WRONG_ADD, ADD, [{"role": "user", "content": ADD}], 7],
                 test_cases=[ADD_TESTS, "[1, 2]", ADD_TESTS, ADD_TESTS],
                 log_metric=lambda name, value: metrics.setdefault(name, value),
                 log_extra=lambda column, values: extra.setdefault(column, values))
    assert out == [0.0, None, None, None] and type(out[0]) is float
    assert warnings_log.text.count("acecoder-rl trl: sample left out (reward None): ") == 3
    for reason in ("test_cases[1][0] must be a test string", "no assistant message",
                   "a completion must be a string or a list of messages"):
        assert reason in warnings_log.text
    assert set(metrics) == {f"acecoder/{k}" for k in SAMPLE_METRICS}
    assert metrics["acecoder/reward_error"] == pytest.approx(0.75)
    assert extra == {"acecoder_status": ["ok", "reward_error", "reward_error", "reward_error"]}


def test_rows_without_tests_get_none_and_stay_out_of_the_metrics(local_backend, warnings_log):
    """Multi-task data: a row meant for other reward functions has no tests; this one does not apply."""
    reward = TRLReward()
    metrics, extra = {}, {}
    out = reward(prompts=["p"] * 6, completions=[ADD] * 6,
                 test_cases=[ADD_TESTS, None, [], "", " [] ", np.array([], dtype=object)],
                 log_metric=lambda name, value: metrics.setdefault(name, value),
                 log_extra=lambda column, values: extra.setdefault(column, values))
    assert out == [1.0, None, None, None, None, None]
    assert metrics["acecoder/pass_rate"] == 1.0 and metrics["acecoder/reward_error"] == 0.0
    assert extra == {"acecoder_status": ["ok"] + ["no_tests"] * 5}
    assert not warnings_log.records


def test_a_batch_without_tests_never_reaches_the_backend():
    class Unreachable:
        def score(self, completions, test_cases):
            raise AssertionError("a batch without tests was sent to the backend")

    metrics = {}
    out = TRLReward(scorer=Unreachable())(prompts=["p", "q"], completions=[ADD, "hi"], test_cases=[None, []],
                                          log_metric=lambda name, value: metrics.setdefault(name, value))
    assert out == [None, None] and metrics == {}


def test_sandbox_error_and_refused_tests_are_failures_and_failure_reward_is_configurable(local_backend,
                                                                                         warnings_log):
    """Results that say nothing about the code (our sandbox failed, the row's tests were refused whole) are
    treated like unscored samples; ``failure_reward=0.0`` turns them back into zeros."""
    from acecoder_rl.integrations.common import shared_scorer

    scorer = SandboxFailsOnMarker(shared_scorer().get())

    refused = ["assert True" + " " * RewardConfig().max_test_chars]  # past max_test_chars: invalid_tests
    completions = [ADD, ADD + SANDBOX_FAULT, ADD, ADD]
    tests = [ADD_TESTS, ADD_TESTS, refused, None]
    assert TRLReward(scorer=scorer)(prompts=["p"] * 4, completions=completions,
                                                    test_cases=tests) == [1.0, None, None, None]
    assert "sample left out (reward None): sandbox error: WorkerFailure: zygote died" in warnings_log.text
    assert "sample left out (reward None): tests refused: test 0 has 100011 characters" in warnings_log.text
    zero = TRLReward(scorer=scorer, failure_reward=0.0)
    assert zero(prompts=["p"] * 5, completions=completions + [ADD], test_cases=tests + ["[1]"]) == [
        1.0, 0.0, 0.0, None, 0.0]
    assert "sample rewarded 0: RequestError: test_cases[4][0] must be a test string" in warnings_log.text


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


def test_grpo_step_leaves_rows_without_tests_and_failed_samples_out_of_the_baseline(
        local_backend, tiny_tokenizer, tmp_path, monkeypatch):
    """One real ``GRPOTrainer`` step (TRL 1.16: ``_calculate_rewards``, the group baseline, the loss) with the
    completions fixed through TRL's ``rollout_func``: a row without tests and a sample whose sandbox failed
    get ``None``, so TRL gives them advantage 0 and keeps them out of the baseline of their group, where a
    0.0 would have pushed the policy away from correct code."""
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from acecoder_rl.integrations.common import shared_scorer

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    completions_for = {
        "Write add.": [ADD, WRONG_ADD],  # scored: 1 and 0
        "Say hi.": ["hi", "hello"],  # a row for another task: no tests
        "Write add, again.": [ADD, ADD + SANDBOX_FAULT],  # 1, and a sandbox error
    }
    rows = [{"prompt": prompt, "test_cases": None if prompt == "Say hi." else ADD_TESTS}
            for prompt in completions_for]

    def rollout(prompts, trainer):
        seen: dict[str, int] = {}
        prompt_ids, completion_ids = [], []
        for prompt in prompts:
            k = seen[prompt] = seen.get(prompt, -1) + 1
            prompt_ids.append(tiny_tokenizer.encode(prompt, add_special_tokens=False))
            completion_ids.append(tiny_tokenizer.encode(completions_for[prompt][k], add_special_tokens=False)
                                  + [tiny_tokenizer.eos_token_id])
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids,
                "logprobs": [[0.0] * len(ids) for ids in completion_ids]}

    config = Qwen2Config(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256, eos_token_id=tiny_tokenizer.eos_token_id,
                         pad_token_id=tiny_tokenizer.pad_token_id, tie_word_embeddings=True)
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=6, num_generations=2,
                      max_completion_length=64, report_to=[], use_cpu=True, bf16=False, logging_steps=1,
                      save_strategy="no", learning_rate=1e-4, seed=0)
    reward = TRLReward(scorer=SandboxFailsOnMarker(shared_scorer().get()))
    trainer = GRPOTrainer(model=Qwen2ForCausalLM(config), reward_funcs=reward, args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tiny_tokenizer,
                          rollout_func=rollout)
    batches = []
    score_batch = trainer._generate_and_score_completions

    def recording(inputs):  # observe TRL's own scoring of the batch, change nothing
        batches.append((inputs, score_batch(inputs)))
        return batches[-1][1]

    monkeypatch.setattr(trainer, "_generate_and_score_completions", recording)
    trainer.train()

    [(inputs, scored)] = batches
    seen: dict[str, int] = {}
    advantages: dict[str, list[float]] = {prompt: [0.0, 0.0] for prompt in completions_for}
    for x, value in zip(inputs, scored["advantages"].tolist(), strict=True):
        k = seen[x["prompt"]] = seen.get(x["prompt"], -1) + 1
        advantages[x["prompt"]][k] = value
    assert advantages["Write add, again."] == [0.0, 0.0]  # a fake 0 would have pushed correct code apart
    assert advantages["Say hi."] == [0.0, 0.0]
    high, low = advantages["Write add."]
    assert high == pytest.approx(-low) and high > 0.5
    [logged] = [entry for entry in trainer.state.log_history if "rewards/acecoder_reward/mean" in entry]
    assert logged["rewards/acecoder_reward/mean"] == pytest.approx(2 / 3)  # mean of 1, 0 and 1
    assert logged["acecoder/status_sandbox_error"] == pytest.approx(0.25)  # 1 of the 4 samples with tests
