"""Every plug-in reports the same metric keys for every sample, scored or failed, on every backend: the
local engine, the reward service over HTTP and the Ray pool. verl keeps each key as one ``np.array`` column
of the batch (a key missing on one sample breaks it); TRL and OpenRLHF average them per step (a key that
exists on one backend only breaks the dashboards when the backend changes)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from acecoder_rl.integrations.common import CONFIG_ENV, RAY_ENV, URL_ENV
from acecoder_rl.reward.results import SAMPLE_METRICS

ROOT = Path(__file__).resolve().parents[2]
ADD = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3"]
COMPLETIONS = [ADD, "no code here", ADD + "\n"]
GROUND_TRUTHS = [TESTS, TESTS, 17]  # the last row's tests are malformed: that sample fails


def reported_keys(load_plugin) -> dict[str, list[set[str]]]:
    """Per plug-in, the key set of each report: each sample for verl, each batch for TRL and OpenRLHF."""
    verl = load_plugin("verl_reward.py", "custom_module")
    trl = load_plugin("trl_reward.py", "trl_reward").acecoder_reward
    openrlhf = load_plugin("openrlhf_reward.py", "reward_func").reward_func
    metrics: dict[str, float] = {}
    assert trl(prompts=["p"] * 3, completions=COMPLETIONS, test_cases=GROUND_TRUTHS,
               log_metric=metrics.__setitem__)[2] is None
    batch = verl.compute_score_batch(["acecode"] * 3, COMPLETIONS, GROUND_TRUTHS)
    assert [d["reward_error"] for d in batch] == [0.0, 0.0, 1.0]
    return {
        "verl": [set(d) for d in batch] + [set(verl.compute_score("acecode", c, t))
                                           for c, t in zip(COMPLETIONS, GROUND_TRUTHS)],
        "trl": [{key.removeprefix("acecoder/") for key in metrics}],
        "openrlhf": [set(openrlhf([c], [""], [t])["extra_logs"]) for c, t in zip(COMPLETIONS, GROUND_TRUTHS)],
    }


@pytest.mark.parametrize("backend", ["local", "http", "ray"])
def test_same_metric_keys_on_every_backend(backend, backend_env, load_plugin):
    settings = json.dumps({"workers": 1})
    if backend == "local":
        backend_env(**{CONFIG_ENV: settings})
        keys = reported_keys(load_plugin)
    elif backend == "http":
        from acecoder_rl.service.process import ServiceProcess

        with ServiceProcess(["--workers", "1", "--log-level", "warning"]) as server:
            server.wait_ready()
            backend_env(**{URL_ENV: server.url})
            keys = reported_keys(load_plugin)
    else:
        import ray

        assert not ray.is_initialized(), "this test starts its own Ray with this worktree on the actors' path"
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        try:
            backend_env(**{RAY_ENV: "1", CONFIG_ENV: settings})
            keys = reported_keys(load_plugin)
        finally:
            backend_env()  # closes the pool while Ray is up
            ray.shutdown()
    assert all(k == {"score", "acc", *SAMPLE_METRICS} for k in keys["verl"])
    assert all(k == set(SAMPLE_METRICS) for k in keys["trl"] + keys["openrlhf"])
