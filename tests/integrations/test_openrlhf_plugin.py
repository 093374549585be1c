"""acecoder-rl through OpenRLHF 0.11's own code, for each of its reward entry points:

- the plug-in file (``--reward.remote_url reward_fns/openrlhf_reward.py``): OpenRLHF's
  ``SingleTurnAgentExecutor`` loads the file, tokenizes the prompt, "generates" (a canned completion: the
  vLLM boundary is the only stand-in), decodes prompt + response with special tokens and calls
  ``reward_func`` through ``asyncio.to_thread``;
- the remote URL (``--reward.remote_url http://HOST:PORT/get_reward``): the same executor's
  ``_fetch_rewards_via_http`` (aiohttp, its retries) against a real ``acecoder-rl serve`` on loopback;
- an agent (``--train.agent_func_path``): OpenRLHF's ``MultiTurnAgentExecutor`` with an agent whose step
  scores with ``OpenRLHFReward``.

The outputs then go through OpenRLHF's own ``_process_response_into_experience`` and batch split, which is
where wrong types, shapes or ``extra_logs`` keys would fail."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from acecoder_rl.integrations.common import (
    CONFIG_ENV,
    MAX_FAILED_BATCHES_ENV,
    URL_ENV,
    ConfigError,
    Failure,
    FailureStreak,
    RewardUnavailable,
    shared_scorer,
)
from acecoder_rl.reward.results import SAMPLE_METRICS

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


def _run_executor(remote_rm_url, tokenizer, prompts, labels, completions, *,
                  one_at_a_time: bool = False) -> list[dict]:
    """OpenRLHF's SingleTurnAgentExecutor on every sample (all at once, as its rollout actor does, or one
    after another where the order of the calls matters)."""
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(remote_rm_url=str(remote_rm_url))
    # a .py path: it took our file's reward_func; a URL: it posts to it
    assert (executor.reward_func is not None) == str(remote_rm_url).endswith(".py")

    def execute(prompt, label, completion):
        return executor.execute(prompt, label, SimpleNamespace(max_tokens=None, logprobs=None), 100_000,
                                tokenizer, CannedLLM(tokenizer, completion))

    async def run_all():
        samples = list(zip(prompts, labels, completions, strict=True))
        if one_at_a_time:
            return [await execute(*sample) for sample in samples]
        return await asyncio.gather(*(execute(*sample) for sample in samples))

    return asyncio.run(run_all())


@pytest.fixture
def openrlhf_log():
    """The lines OpenRLHF's agent executor logs (its loggers do not propagate to the root logger)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    agent_logger = logging.getLogger("openrlhf.utils.agent")
    agent_logger.addHandler(handler)
    yield records
    agent_logger.removeHandler(handler)


@pytest.fixture(scope="module")
def service():
    """A real `acecoder-rl serve` on a loopback port, with the reference engine's settings."""
    from acecoder_rl.service.process import ServiceProcess

    with ServiceProcess(["--workers", "2", "--log-level", "warning"]) as server:
        server.wait_ready()
        yield server


def _dead_url() -> str:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def import_openrlhf(tmp_path_factory):
    """Import OpenRLHF modules whose import chain reaches vLLM, which has no CPU build: a stand-in exposing
    only the names imported at module level is put on sys.path when vLLM is not installed, and removed
    afterwards."""
    import importlib
    import importlib.util

    def load(*names: str) -> list:
        stub_names = []
        if importlib.util.find_spec("vllm") is None:
            root = tmp_path_factory.mktemp("vllm_stand_in")
            (root / "vllm" / "inputs").mkdir(parents=True)
            (root / "vllm" / "utils").mkdir()
            (root / "vllm" / "__init__.py").write_text("__version__ = '0.0'\n"
                                                       "class SamplingParams:\n    pass\n")
            (root / "vllm" / "inputs" / "__init__.py").write_text("class TokensPrompt(dict):\n    pass\n")
            (root / "vllm" / "utils" / "__init__.py").write_text("def random_uuid():\n    return '0'\n")
            sys.path.insert(0, str(root))
            stub_names = ["vllm", "vllm.inputs", "vllm.utils"]
        try:
            return [importlib.import_module(name) for name in names]
        finally:
            if stub_names:
                sys.path.remove(str(root))
                for name in stub_names:
                    sys.modules.pop(name, None)

    return load


@pytest.fixture(scope="module")
def to_experience(import_openrlhf):
    """OpenRLHF's consumer of the executor output (``SamplesGenerator._process_response_into_experience``)
    and its batch split."""
    experience, samples_generator = import_openrlhf("openrlhf.trainer.ppo_utils.experience",
                                                    "openrlhf.trainer.ppo_utils.samples_generator")

    def convert(outputs: list[dict]):
        process = samples_generator.SamplesGenerator._process_response_into_experience
        batch = experience.Experience.concat_experiences([process(None, o, max_len=100_000) for o in outputs],
                                                         pad_token_id=0)
        experience.split_experience_batch(batch)  # raises when an info value's length differs from the batch
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
        assert list(logs) == list(SAMPLE_METRICS)
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
    for key in SAMPLE_METRICS:
        assert batch.info[key].shape == (len(items),)


def test_malformed_samples_get_zero_and_a_logged_reason(local_backend, tiny_tokenizer, helpers, to_experience,
                                                        warnings_log):
    prompt = helpers.chat_prompt(tiny_tokenizer, "Write add.")
    good = "def add(a, b):\n    return a + b"
    labels = [42, "not json [", [], ["assert add(1, 2) == 3", 5], {"tests": []}, ["assert add(1, 2) == 3"]]
    outputs = _run_executor(PLUGIN_PATH, tiny_tokenizer, [prompt] * len(labels), labels, [good] * len(labels))

    assert [o["reward"].item() for o in outputs] == [0.0] * 5 + [1.0]
    assert [o["extra_logs"]["reward_error"].item() for o in outputs] == [1.0] * 5 + [0.0]
    assert all(list(o["extra_logs"]) == list(SAMPLE_METRICS) for o in outputs)
    text = warnings_log.text
    for reason in ("labels[0] must be a list of test strings or a tests object, got a number",
                   "labels[0] is a string but not JSON tests", "labels[0] is empty",
                   "labels[0][1] must be a test string", "labels[0].tests has no tests"):
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
    assert out["rewards"].shape == (0,) and set(out["extra_logs"]) == set(SAMPLE_METRICS)


@pytest.mark.parametrize("env, words", [
    ({CONFIG_ENV: '{"wrokers": 2}'}, "ACECODER_REWARD_CONFIG: unknown reward config key(s): wrokers"),
    ({CONFIG_ENV: "{workers: 2}"}, "ACECODER_REWARD_CONFIG is not valid JSON"),
    ({URL_ENV: "http://127.0.0.1:1", CONFIG_ENV: '{"mode": "binary"}'},
     "has no effect with ACECODER_REWARD_URL"),
    ({MAX_FAILED_BATCHES_ENV: "many"}, "ACECODER_REWARD_MAX_FAILED_BATCHES='many'"),
])
def test_a_configuration_error_raises_at_the_first_call(backend_env, load_plugin, tiny_tokenizer, helpers,
                                                         caplog, openrlhf_log, to_experience, env, words):
    caplog.set_level("WARNING", logger="acecoder_rl.integrations")
    backend_env(**env)
    reward_func = load_plugin(PLUGIN, "reward_func").reward_func
    prompt = "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n"
    for _ in range(3):  # the first call raises, and so does every later one, without a retry delay
        with pytest.raises(ConfigError) as info:
            reward_func([prompt + "def f():\n    return 1<|im_end|>"], [prompt], [["assert f() == 1"]])
        assert words in str(info.value) and "\n" not in str(info.value)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and words in errors[0]  # one ERROR line, not one per sample

    # Through OpenRLHF's executor: it logs the exception (at INFO) and leaves the samples without a reward,
    # so that its experience maker refuses the step ("reward_model_group is required when rewards are not
    # precomputed") instead of training on zeros.
    prompts = [helpers.chat_prompt(tiny_tokenizer, "Write f.")] * 2
    outputs = _run_executor(PLUGIN_PATH, tiny_tokenizer, prompts, [["assert f() == 1"]] * 2,
                            ["def f():\n    return 1"] * 2)
    assert [o["reward"] for o in outputs] == [None, None]
    assert any(words in r.getMessage() for r in openrlhf_log)
    assert to_experience(outputs).rewards is None


@pytest.mark.parametrize("label, words", [
    ("", "which OpenRLHF sends when --data.label_key is not set"),
    ([{"role": "user", "content": "Write f."}], "holds chat messages, not tests"),
])
def test_a_wrong_label_key_raises_at_the_first_call(local_backend, load_plugin, tiny_tokenizer, helpers,
                                                     caplog, label, words):
    caplog.set_level("ERROR", logger="acecoder_rl.integrations")
    reward_func = load_plugin(PLUGIN, "reward_func").reward_func
    with pytest.raises(ConfigError, match="--data.label_key test_cases"):
        reward_func(["q"], ["p"], [label])
    caplog.clear()
    prompts = [helpers.chat_prompt(tiny_tokenizer, "Write f.")] * 3
    outputs = _run_executor(PLUGIN_PATH, tiny_tokenizer, prompts, [label] * 3, ["def f():\n    return 1"] * 3)
    assert [o["reward"] for o in outputs] == [None] * 3
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and words in errors[0]  # once for the rollout actor, not once per sample


def test_an_outage_raises_after_the_configured_streak(backend_env, load_plugin, tiny_tokenizer, helpers,
                                                      caplog, openrlhf_log):
    caplog.set_level("ERROR", logger="acecoder_rl.integrations")
    backend_env(**{URL_ENV: _dead_url(), MAX_FAILED_BATCHES_ENV: "3"})
    client = shared_scorer().get()
    client.retries, client.backoff = 1, 0.05  # the client's own retry loop, shortened
    prompts = [helpers.chat_prompt(tiny_tokenizer, "Write f.")] * 5
    outputs = _run_executor(PLUGIN_PATH, tiny_tokenizer, prompts, [["assert f() == 1"]] * 5,
                            ["def f():\n    return 1"] * 5, one_at_a_time=True)
    # Two calls in a row failed: reward 0, marked; the third and later raise, so OpenRLHF has no reward
    # for them and stops the step.
    assert [o["reward"] is None for o in outputs] == [False, False, True, True, True]
    assert [o["extra_logs"]["reward_error"].item() for o in outputs[:2]] == [1.0, 1.0]
    assert [o["reward"].item() for o in outputs[:2]] == [0.0, 0.0]
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and "no sample was scored in 3 reward calls in a row" in errors[0]
    assert "reward service gave no answer after 2 attempts" in errors[0]
    assert sum("no sample was scored" in r.getMessage() for r in openrlhf_log) == 3


def test_the_streak_counts_only_calls_that_scored_nothing():
    streak = FailureStreak(limit=2)
    failed, scored = Failure("down"), object()
    streak.record([failed], "test")
    streak.record([failed, scored], "test")  # one sample scored: the streak ends
    streak.record([], "test")  # nothing to score: not counted
    streak.record([failed], "test")
    with pytest.raises(RewardUnavailable, match="2 reward calls in a row"):
        streak.record([failed, failed], "test")
    with pytest.raises(RewardUnavailable, match="3 reward calls in a row"):
        streak.record([failed], "test")
    streak.record([scored], "test")
    assert streak.count == 0
    never = FailureStreak(environ={MAX_FAILED_BATCHES_ENV: "0"})
    for _ in range(100):
        never.record([failed], "test")
    assert FailureStreak(environ={}).__reduce__()[1][0] is None and never.limit == 0


def test_keyword_arguments_are_accepted(local_backend, load_plugin):
    """OpenRLHF's example signature is ``reward_func(queries, prompts, labels, **kwargs)``."""
    reward_func = load_plugin(PLUGIN, "reward_func").reward_func
    prompt = "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n"
    out = reward_func(queries=[prompt + "def f():\n    return 1<|im_end|>"], prompts=[prompt],
                      labels=[["assert f() == 1"]], datasources=["acecode"], step=3)
    assert out["rewards"].tolist() == [1.0] and list(out["extra_logs"]) == list(SAMPLE_METRICS)


# --------------------------------------------------------------------------------------- remote URL
def test_remote_url_scores_each_sample_and_marks_a_malformed_one(service, items, reference, tiny_tokenizer,
                                                                helpers):
    """OpenRLHF's own HTTP client against the service: a batch (as it shards one over its URLs) holding one
    malformed label is answered 200, that sample with 0 and reward_error 1, the others scored."""
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(remote_rm_url=[f"{service.url}/get_reward"])
    prompt = helpers.chat_prompt(tiny_tokenizer, "Write it.")
    good = items[:6]
    queries = [prompt + c + "<|im_end|>" for c, _ in good] + [prompt + "x = 1"]
    labels = [t for _, t in good] + ["not a list of tests"]
    [answer] = asyncio.run(executor._fetch_rewards_via_http(queries, [prompt] * len(queries), labels))
    expected = [reward for reward, *_ in reference[:6]]
    assert answer["rewards"] == pytest.approx(expected + [0.0], abs=1e-6)
    assert answer["scores"][-1] == 0.0
    assert list(answer["extra_logs"]) == list(SAMPLE_METRICS)
    assert answer["extra_logs"]["reward_error"] == [0.0] * 6 + [1.0]
    assert answer["errors"][:6] == [None] * 6
    assert "labels[6] is a string but not JSON tests" in answer["errors"][6]


def test_remote_url_and_plugin_give_the_same_rewards_and_metrics(service, local_backend, items,
                                                                  tiny_tokenizer, helpers, to_experience):
    """One sample per request, as OpenRLHF 0.11 sends them: rewards, scores and every extra_logs value but
    the timings are those of the plug-in file, failed samples included, so a run's metrics do not change
    when its reward moves from one to the other."""
    chosen = items[:4] + items[-3:]
    prompts = [helpers.chat_prompt(tiny_tokenizer, f"Task {i}.") for i in range(len(chosen) + 2)]
    labels = [json.dumps(t) for _, t in chosen] + [[], "[1, 2]"]  # the last two are malformed
    completions = [c for c, _ in chosen] + ["x = 1", "x = 1"]
    remote = _run_executor(f"{service.url}/get_reward", tiny_tokenizer, prompts, labels, completions)
    plugin = _run_executor(PLUGIN_PATH, tiny_tokenizer, prompts, labels, completions)
    timings = ("reward_latency_s", "program_s")
    for r, p in zip(remote, plugin, strict=True):
        assert list(r["extra_logs"]) == list(p["extra_logs"]) == list(SAMPLE_METRICS)
        assert r["reward"] == pytest.approx(p["reward"].tolist(), abs=1e-6)
        assert r["scores"] == pytest.approx(p["scores"].tolist(), abs=1e-6)
        for key in SAMPLE_METRICS:
            if key not in timings:
                assert r["extra_logs"][key] == p["extra_logs"][key].tolist(), key
    assert [r["extra_logs"]["reward_error"] for r in remote[-3:]] == [[0.0], [1.0], [1.0]]
    for outputs in (remote, plugin):
        batch = to_experience(outputs)
        assert all(batch.info[key].numel() == len(outputs) for key in SAMPLE_METRICS)


# --------------------------------------------------------------------------------------------- agent
AGENT_FILE = """\
import asyncio
from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor
from acecoder_rl.integrations import OpenRLHFReward

reward_func = OpenRLHFReward()

class AgentInstance(AgentInstanceBase):
    def __init__(self, *args, **kwargs):
        pass

    async def step(self, states, **kwargs):  # one step: score the response, end the episode
        obs, action = states["observation_text"], states["action_text"]
        answer = await asyncio.to_thread(reward_func, [obs + action], [obs], [states["label"]])
        return {**answer, "environment_feedback": "", "done": True}

class AgentExecutor(MultiTurnAgentExecutor):
    def __init__(self):
        super().__init__(AgentInstance)
"""


def test_an_agent_can_return_the_plugins_answer(local_backend, import_openrlhf, items, reference,
                                                tiny_tokenizer, helpers, to_experience, tmp_path):
    """``--train.agent_func_path``: the README's one-step agent, loaded by OpenRLHF's own loader and run by
    its MultiTurnAgentExecutor."""
    [vllm_engine] = import_openrlhf("openrlhf.trainer.ray.vllm_engine")
    (tmp_path / "agent.py").write_text(AGENT_FILE)
    executor = vllm_engine._load_agent_executor(str(tmp_path / "agent.py"))
    chosen = items[:3] + items[-2:]
    prompts = [helpers.chat_prompt(tiny_tokenizer, f"Task {i}.") for i in range(len(chosen))]

    async def run_all():
        return await asyncio.gather(*(
            executor.execute(prompt, tests, SimpleNamespace(max_tokens=None, logprobs=None), 100_000,
                             tiny_tokenizer, CannedLLM(tiny_tokenizer, completion))
            for prompt, (completion, tests) in zip(prompts, chosen, strict=True)))

    outputs = asyncio.run(run_all())
    expected = [reward for reward, *_ in reference[:3] + reference[-2:]]
    assert [o["reward"] for o in outputs] == pytest.approx(expected, abs=1e-6)
    assert all(list(o["extra_logs"]) == list(SAMPLE_METRICS) for o in outputs)
    batch = to_experience(outputs)
    assert batch.rewards.tolist() == pytest.approx(expected, abs=1e-6)


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
