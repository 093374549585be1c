"""Backend selection by environment variables, the shared backend's life cycle and failure policy, and the
plug-ins on the two remote backends: a real ``acecoder-rl serve`` on a loopback port (ACECODER_REWARD_URL)
and a local Ray cluster (ACECODER_REWARD_RAY=1), both giving the local engine's exact rewards."""
from __future__ import annotations

import json
import logging

import pytest

from acecoder_rl.integrations import OpenRLHFReward, common
from acecoder_rl.integrations.common import (
    CONFIG_ENV,
    RAY_ADDRESS_ENV,
    RAY_ENV,
    URL_ENV,
    BackendError,
    BackendSpec,
    ConfigError,
    FailureLog,
    SharedScorer,
    backend_from_env,
    shared_scorer,
)
from acecoder_rl.reward import RewardConfig, RewardEngine
from acecoder_rl.reward.results import SAMPLE_METRICS

N_FIXTURE = 20


# ------------------------------------------------------------------------------------------ selection
def test_selection_from_the_environment():
    local = backend_from_env({})
    assert (local.kind, local.config) == ("local", RewardConfig())
    tuned = backend_from_env({CONFIG_ENV: '{"mode": "binary", "all_pass_bonus": 0.5, "preimport": ["json"]}'})
    assert tuned.config == RewardConfig(mode="binary", all_pass_bonus=0.5, preimport=("json",))
    http = backend_from_env({URL_ENV: " 10.0.0.5:5000/get_reward , http://10.0.0.6:5000/ ", RAY_ENV: "0"})
    assert (http.kind, http.config) == ("http", None)
    assert http.urls == ("http://10.0.0.5:5000", "http://10.0.0.6:5000")
    ray = backend_from_env({RAY_ENV: "1", RAY_ADDRESS_ENV: "10.0.0.1:6379", CONFIG_ENV: '{"workers": 4}'})
    assert (ray.kind, ray.ray_address, ray.config.workers) == ("ray", "10.0.0.1:6379", 4)
    assert backend_from_env({RAY_ENV: "true"}).ray_address is None
    assert "RayRewardPool at 10.0.0.1:6379" in ray.describe()


@pytest.mark.parametrize("env, message", [
    ({URL_ENV: "http://a:1", RAY_ENV: "1"}, "both ACECODER_REWARD_URL and ACECODER_REWARD_RAY=1"),
    ({URL_ENV: "http://a:1", CONFIG_ENV: '{"mode": "binary"}'}, "has no effect with ACECODER_REWARD_URL"),
    ({URL_ENV: " , "}, "no reward service URL"),
    ({RAY_ENV: "maybe"}, "ACECODER_REWARD_RAY='maybe'"),
    ({CONFIG_ENV: "{mode: binary}"}, "ACECODER_REWARD_CONFIG is not valid JSON"),
    ({CONFIG_ENV: '["binary"]'}, "must be a JSON object"),
    ({CONFIG_ENV: '{"mdoe": "binary"}'}, "unknown reward config key(s): mdoe"),
    ({CONFIG_ENV: '{"mode": "strict"}'}, "RewardConfig.mode must be one of"),
    ({CONFIG_ENV: '{"workers": 0}'}, "RewardConfig.workers must be between 1 and 256"),
])
def test_bad_settings_are_errors_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as info:
        backend_from_env(env)
    assert message in str(info.value)


# ------------------------------------------------------------------------------------ shared backend
def test_shared_backend_is_built_once_reused_and_rebuilt_after_close():
    environ = {CONFIG_ENV: '{"workers": 1}'}
    shared = SharedScorer(environ)
    first = shared.get()
    assert isinstance(first, RewardEngine) and shared.get() is first and shared.spec.config.workers == 1
    shared.close()
    environ[CONFIG_ENV] = '{"workers": 1, "mode": "binary"}'
    second = shared.get()
    assert second is not first and second.config.mode == "binary"
    shared.close()
    shared.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        first.score(["x = 1"], [["assert x == 1"]])


def test_a_configuration_error_is_kept_until_close(caplog):
    caplog.set_level(logging.ERROR, logger="acecoder_rl.integrations")
    environ = {CONFIG_ENV: '{"workers": -1}'}
    shared = SharedScorer(environ)
    with pytest.raises(ConfigError, match="workers must be between"):
        shared.get()
    environ[CONFIG_ENV] = '{"workers": 1}'  # the environment of a running process does not change: no retry
    with pytest.raises(ConfigError, match="workers must be between"):
        shared.get()
    assert len(caplog.records) == 1
    shared.close()  # reads the environment again
    try:
        assert isinstance(shared.get(), RewardEngine)
    finally:
        shared.close()


def test_failed_start_fails_fast_then_is_retried(monkeypatch, caplog):
    caplog.set_level(logging.ERROR, logger="acecoder_rl.integrations")
    builds = []

    def build(spec):
        builds.append(spec)
        if len(builds) == 1:
            raise RuntimeError("no sandbox on this machine")
        return RewardEngine(spec.config)

    monkeypatch.setattr(BackendSpec, "build", build)
    shared = SharedScorer({CONFIG_ENV: '{"workers": 1}'})
    with pytest.raises(BackendError, match="no sandbox on this machine") as info:
        shared.get()
    assert not isinstance(info.value, ConfigError)
    with pytest.raises(BackendError, match="no sandbox on this machine"):  # within the retry delay
        shared.get()
    assert len(caplog.records) == 1 and len(builds) == 1
    monkeypatch.setattr(common, "RETRY_BUILD_AFTER_S", 0.0)
    try:
        assert isinstance(shared.get(), RewardEngine) and len(builds) == 2
    finally:
        shared.close()


def test_failure_log_reports_each_reason_then_summarises_repeats(caplog):
    caplog.set_level(logging.WARNING, logger="acecoder_rl.integrations")
    log = FailureLog(interval_s=3600)
    for _ in range(5):
        log.record("trl", "backend down")
    log.record("trl", "bad tests")
    assert [r.getMessage() for r in caplog.records] == [
        "acecoder-rl trl: sample rewarded 0: backend down", "acecoder-rl trl: sample rewarded 0: bad tests"]
    log.flush()
    assert caplog.records[-1].getMessage() == "acecoder-rl trl: 4 more samples rewarded 0: backend down"
    assert log.total == 6
    eager = FailureLog(interval_s=0)
    eager.record("verl", "x")
    eager.record("verl", "x")
    assert caplog.records[-1].getMessage() == "acecoder-rl verl: 1 more samples rewarded 0: x"


# --------------------------------------------------------------------------------- remote backends
def test_reward_service_backend(backend_env, items, reference, helpers):
    from acecoder_rl.service.client import RewardServiceClient
    from acecoder_rl.service.process import ServiceProcess

    with ServiceProcess(["--workers", "2", "--log-level", "warning"]) as server:
        server.wait_ready()
        backend_env(**{URL_ENV: server.url})
        rewards = helpers.adapter_rewards(items[:N_FIXTURE])
        assert isinstance(shared_scorer().get(), RewardServiceClient)
    expected = [reward for reward, *_ in reference[:N_FIXTURE]]
    for adapter, got in rewards.items():
        assert got == pytest.approx(expected, abs=1e-6), adapter


def test_unreachable_service_gives_zero_with_the_reason(backend_env, load_plugin, warnings_log):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend_env(**{URL_ENV: f"http://127.0.0.1:{port}"})
    client = shared_scorer().get()
    client.retries, client.backoff = 1, 0.1  # the client's own retry loop, shortened
    reward_func = load_plugin("openrlhf_reward.py", "reward_func").reward_func
    out = reward_func(["p" + "x = 1"], ["p"], [["assert x == 1"]])
    assert out["rewards"].tolist() == [0.0] and out["extra_logs"]["reward_error"].tolist() == [1.0]
    assert "reward service gave no answer after 2 attempts" in warnings_log.text


def test_ray_pool_backend(backend_env, items, reference, helpers):
    import ray

    from acecoder_rl.reward.ray_pool import RayRewardPool

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        backend_env(**{RAY_ENV: "1", CONFIG_ENV: json.dumps({"timeout_per_test": 4.0})})
        rewards = helpers.adapter_rewards(items[:N_FIXTURE])
        assert isinstance(shared_scorer().get(), RayRewardPool)
        # The OpenRLHF plug-in reports the same extra_logs keys on the Ray pool as on the other backends.
        openrlhf = OpenRLHFReward()(["p" + items[0][0]], ["p"], [items[0][1]])
        assert list(openrlhf["extra_logs"]) == list(SAMPLE_METRICS)
        shared_scorer().close()
    finally:
        if started_here:
            ray.shutdown()
    expected = [reward for reward, *_ in reference[:N_FIXTURE]]
    for adapter, got in rewards.items():
        assert got == pytest.approx(expected, abs=1e-6), adapter
