"""reward_fns/openrlhf_reward.py driven by OpenRLHF 0.11's own ``SingleTurnAgentExecutor``: it loads the file,
tokenizes the prompt, "generates" (a canned completion: the vLLM boundary is the only stand-in), decodes
prompt + response with special tokens and calls ``reward_func`` through ``asyncio.to_thread``. The outputs
then go through OpenRLHF's own ``_process_response_into_experience`` and batch split, which is where wrong
types or shapes would fail."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from acecoder_rl.integrations.common import CONFIG_ENV, METRIC_KEYS, shared_scorer

PLUGIN = "openrlhf_reward.py"
PLUGIN_PATH = Path(__file__).resolve().parents[2] / "reward_fns" / PLUGIN
# Never skipped: the README set-up installs it (requirements-nodeps.txt); a missing install fails here.
import openrlhf.utils.agent  # noqa: E402,F401


class CannedLLM:
    """Stands in for OpenRLHF's vLLM engine: ``generate`` returns the token ids of a fixed completion."""

    def __init__(self, tokenizer, completion: str) -> None:
        self.text = completion + tokenizer.eos_token
        self.token_ids = tokenizer(text=self.text, add_special_tokens=False)["input_ids"]
        self.prompt_token_ids = None

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        self.prompt_token_ids = prompt_token_ids
        output = SimpleNamespace(token_ids=list(self.token_ids), text=self.text, finish_reason="stop",
                                 logprobs=None)
        return SimpleNamespace(outputs=[output])


def _run_executor(plugin_path, tokenizer, prompts, labels, completions) -> list[dict]:
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(remote_rm_url=str(plugin_path))
    assert executor.reward_func is not None  # it took our file's reward_func

    async def run_all():
        calls = [executor.execute(prompt, label, SimpleNamespace(max_tokens=None, logprobs=None), 100_000,
                                  tokenizer, CannedLLM(tokenizer, completion))
                 for prompt, label, completion in zip(prompts, labels, completions, strict=True)]
        return await asyncio.gather(*calls)

    return asyncio.run(run_all())


@pytest.fixture(scope="module")
def to_experience(tmp_path_factory):
    """OpenRLHF's consumer of the executor output (``SamplesGenerator._process_response_into_experience``)
    and its batch split. Its module imports vLLM, which has no CPU build: a stand-in exposing only the three
    names imported at module level is put on sys.path when vLLM is not installed, and removed afterwards."""
    import importlib.util

    stub_names = []
    if importlib.util.find_spec("vllm") is None:
        root = tmp_path_factory.mktemp("vllm_stand_in")
        (root / "vllm" / "inputs").mkdir(parents=True)
        (root / "vllm" / "utils").mkdir()
        (root / "vllm" / "__init__.py").write_text("__version__ = '0.0'\nclass SamplingParams:\n    pass\n")
        (root / "vllm" / "inputs" / "__init__.py").write_text("class TokensPrompt(dict):\n    pass\n")
        (root / "vllm" / "utils" / "__init__.py").write_text("def random_uuid():\n    return '0'\n")
        sys.path.insert(0, str(root))
        stub_names = ["vllm", "vllm.inputs", "vllm.utils"]
    try:
        from openrlhf.trainer.ppo_utils.experience import Experience, split_experience_batch
        from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator
    finally:
        if stub_names:
            sys.path.remove(str(root))
            for name in stub_names:
                sys.modules.pop(name, None)

    def convert(outputs: list[dict]):
        experiences = [SamplesGenerator._process_response_into_experience(None, o, max_len=100_000)
                       for o in outputs]
        batch = Experience.concat_experiences(experiences, pad_token_id=0)
        split_experience_batch(batch)  # raises when an info value's length differs from the batch size
        return batch

    return convert


def test_executor_rewards_equal_the_local_engine(local_backend, items, reference, tiny_tokenizer, helpers,
                                                  to_experience):
    prompts = [helpers.chat_prompt(tiny_tokenizer, f"Task {i}: write it.") for i in range(len(items))]
    # Labels as OpenRLHF delivers them: the test list, or a JSON string of it (half of each here).
    labels = [tests if i % 2 else json.dumps(tests) for i, (_, tests) in enumerate(items)]
    outputs = _run_executor(PLUGIN_PATH, tiny_tokenizer, prompts, labels, [c for c, _ in items])

    for out, (reward, score, pass_rate, status) in zip(outputs, reference, strict=True):
        assert isinstance(out["reward"], torch.Tensor) and out["reward"].shape == (1,)
        assert out["reward"].dtype == torch.float32
        assert out["reward"].item() == pytest.approx(reward, abs=1e-6)
        assert out["scores"].item() == pytest.approx(score, abs=1e-6)
        assert 0.0 <= out["scores"].item() <= 1.0
        logs = out["extra_logs"]
        assert list(logs) == list(METRIC_KEYS)
        assert all(isinstance(v, torch.Tensor) and v.shape == (1,) for v in logs.values())
        assert logs["pass_rate"].item() == pytest.approx(pass_rate, abs=1e-6)
        assert logs[f"status_{status}"].item() == 1.0
        assert logs["code_found"].item() == (0.0 if status == "no_code" else 1.0)
        assert logs["reward_error"].item() == 0.0
    statuses = {s for *_, s in reference}
    assert {"ok", "no_code", "runtime_error", "crashed", "syntax_error"} <= statuses
    assert [r for r, *_ in reference[20:]] == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]  # hostile, no code, correct

    batch = to_experience(outputs)
    assert batch.rewards.shape == (len(items),)
    assert batch.rewards.tolist() == pytest.approx([r for r, *_ in reference], abs=1e-6)
    assert batch.scores.tolist() == pytest.approx([s for _, s, *_ in reference], abs=1e-6)
    for key in METRIC_KEYS:
        assert batch.info[key].shape == (len(items),)


def test_malformed_samples_get_zero_and_a_logged_reason(local_backend, tiny_tokenizer, helpers, to_experience,
                                                        warnings_log):
    prompt = helpers.chat_prompt(tiny_tokenizer, "Write add.")
    good = "def add(a, b):\n    return a + b"
    labels = [42, "not json [", [], ["assert add(1, 2) == 3", 5], {"tests": []}, ["assert add(1, 2) == 3"]]
    outputs = _run_executor(PLUGIN_PATH, tiny_tokenizer, [prompt] * len(labels), labels, [good] * len(labels))

    assert [o["reward"].item() for o in outputs] == [0.0] * 5 + [1.0]
    assert [o["extra_logs"]["reward_error"].item() for o in outputs] == [1.0] * 5 + [0.0]
    assert all(list(o["extra_logs"]) == list(METRIC_KEYS) for o in outputs)
    text = warnings_log.text
    for reason in ("labels[0] must be a non-empty array", "labels[0] is a string but not a JSON array",
                   "labels[0] is empty", "labels[0][1] must be a string", "got an object"):
        assert reason in text
    to_experience(outputs)  # a failed sample still makes a well-formed experience


def test_direct_calls_never_raise(local_backend, load_plugin, warnings_log):
    reward_func = load_plugin(PLUGIN, "reward_func").reward_func
    # Mismatched lengths, a query that is not a string, a completely wrong argument.
    out = reward_func(["q1", "q2"], ["p"], [["assert True"]])
    assert out["rewards"].tolist() == [0.0, 0.0] and out["extra_logs"]["reward_error"].tolist() == [1.0, 1.0]
    out = reward_func([None], ["p"], [["assert f() == 1"]])
    assert out["rewards"].tolist() == [0.0] and "query must be a str" in warnings_log.text
    out = reward_func(None, None, None)
    assert out["rewards"].tolist() == [0.0] and out["extra_logs"]["reward_error"].tolist() == [1.0]
    assert "reward_func failed" in warnings_log.text
    out = reward_func([], [], [])
    assert out["rewards"].shape == (0,) and set(out["extra_logs"]) == set(METRIC_KEYS)


def test_bad_config_gives_zero_with_the_reason_and_no_exception(backend_env, load_plugin, caplog):
    caplog.set_level("WARNING", logger="acecoder_rl.integrations")
    backend_env(**{CONFIG_ENV: '{"wrokers": 2}'})
    reward_func = load_plugin(PLUGIN, "reward_func").reward_func
    prompt = "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n"
    for _ in range(3):
        out = reward_func([prompt + "def f():\n    return 1<|im_end|>"], [prompt], [["assert f() == 1"]])
        assert out["rewards"].tolist() == [0.0] and out["extra_logs"]["reward_error"].tolist() == [1.0]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1  # the backend is not rebuilt (nor the error repeated) on every sample
    assert "unknown reward config key(s): wrokers" in errors[0].getMessage()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "wrokers" in warnings[0]  # repeats are summarised, not logged per sample


def test_64_concurrent_calls_take_about_one_batch(backend_env, load_plugin):
    """OpenRLHF makes one call per sample, all at once (``asyncio.to_thread``): the programs of concurrent
    calls must run side by side on the engine's workers, not one after another."""
    backend_env(**{CONFIG_ENV: json.dumps({"workers": 8})})
    reward_func = load_plugin(PLUGIN, "reward_func").reward_func
    prompt = "<|im_start|>user\nWrite the function.<|im_end|>\n<|im_start|>assistant\n"
    sleep_s, n = 0.2, 64

    def program(i: int) -> tuple[str, list[str]]:
        code = f"import time\ndef slow_{i}():\n    time.sleep({sleep_s})\n    return {i}\n"
        return code, [f"assert slow_{i}() == {i}"]

    started = reward_func([prompt + "x = 1"], [prompt], [["assert x == 1"]])  # starts the engine
    assert started["rewards"].tolist() == [1.0]
    engine = shared_scorer().get()

    started = time.monotonic()
    batch = engine.score(*zip(*[program(i) for i in range(n)], strict=True))
    one_batch_s = time.monotonic() - started
    assert all(r.reward == 1.0 for r in batch)

    async def concurrent_calls():
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(n))
        calls = []
        for i in range(n, 2 * n):  # other programs than the batch's: nothing comes from the cache
            code, tests = program(i)
            calls.append(asyncio.to_thread(reward_func, [prompt + code + "<|im_end|>"], [prompt], [tests]))
        return await asyncio.gather(*calls)

    started = time.monotonic()
    outputs = asyncio.run(concurrent_calls())
    concurrent_s = time.monotonic() - started
    assert [o["rewards"].item() for o in outputs] == [1.0] * n
    serial_s = n * sleep_s  # the least one-program-at-a-time could take
    assert concurrent_s < 1.5 * one_batch_s + 1.0, (concurrent_s, one_batch_s)
    assert concurrent_s < serial_s / 2, (concurrent_s, serial_s)


def test_pickle_round_trip(local_backend, load_plugin):
    import pickle

    from acecoder_rl.integrations import OpenRLHFReward

    clone = pickle.loads(pickle.dumps(load_plugin(PLUGIN, "reward_func").reward_func))
    assert isinstance(clone, OpenRLHFReward) and clone.scorer is None
    prompt = "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n"
    out = clone([prompt + "def f():\n    return 1<|im_end|>"], [prompt], [["assert f() == 1"]])
    assert out["rewards"].tolist() == [1.0]
