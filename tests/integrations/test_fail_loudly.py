"""TRL and verl plug-ins fail loudly, as the OpenRLHF one does (test_openrlhf_plugin.py): a configuration
error raises at the first call with a one-line message instead of becoming reward 0 (or None) sample after
sample, and a streak of calls that scored nothing raises instead of training on it. verl's ``prime`` form is
the exception: verl turns any exception of it into 0.0 for the whole batch, so it keeps failures as logged
zeros."""

from __future__ import annotations

import pytest

from acecoder_rl.integrations import ConfigError, RewardUnavailable
from acecoder_rl.integrations.common import CONFIG_ENV, MAX_FAILED_BATCHES_ENV, URL_ENV

ADD = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3"]


@pytest.fixture
def plugins(load_plugin):
    from acecoder_rl.integrations import verl as verl_adapter

    yield load_plugin("trl_reward.py", "trl_loud"), load_plugin("verl_reward.py", "verl_loud")
    verl_adapter._POOL_PROCESS_SCORER.close()  # the prime form's own holder: the next test reads the env again


def _calls(trl, verl):
    """One call of each entry point that raises (TRL's reward function, verl's two compute_score forms)."""
    return [
        lambda: trl.acecoder_reward(prompts=["p"], completions=[ADD], test_cases=[TESTS]),
        lambda: verl.compute_score("acecode", ADD, TESTS),
        lambda: verl.compute_score_batch(["acecode"], [ADD], [TESTS]),
    ]


def test_a_configuration_error_raises_at_the_first_call(backend_env, plugins, caplog):
    caplog.set_level("ERROR", logger="acecoder_rl.integrations")
    backend_env(**{CONFIG_ENV: '{"wrokers": 2}'})
    for call in _calls(*plugins):
        with pytest.raises(ConfigError, match="unknown reward config key\\(s\\): wrokers") as info:
            call()
        assert "\n" not in str(info.value)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1  # one ERROR line for the process, not one per call


def test_an_outage_raises_after_the_configured_streak(backend_env, plugins, monkeypatch):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    backend_env(**{URL_ENV: dead, MAX_FAILED_BATCHES_ENV: "2"})
    from acecoder_rl.integrations import shared_scorer

    client = shared_scorer().get()
    client.retries, client.backoff = 1, 0.05
    trl, verl = plugins
    # TRL: a failed sample is None (left out); the second call in a row with nothing scored raises.
    assert trl.acecoder_reward(prompts=["p"], completions=[ADD], test_cases=[TESTS]) == [None]
    with pytest.raises(RewardUnavailable, match="2 reward calls in a row"):
        trl.acecoder_reward(prompts=["p"], completions=[ADD], test_cases=[TESTS])
    # verl: a failed sample is 0 with reward_error, then the streak raises.
    assert verl.compute_score("acecode", ADD, TESTS)["reward_error"] == 1.0
    with pytest.raises(RewardUnavailable):
        verl.compute_score("acecode", ADD, TESTS)
    # prime: never raises (verl would zero the whole batch with only a print), a logged 0.0 each time.
    assert [verl.compute_score_prime("acecode", ADD, TESTS) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_rows_without_tests_do_not_count_as_failures(local_backend, plugins, monkeypatch):
    monkeypatch.setenv(MAX_FAILED_BATCHES_ENV, "1")
    trl, _ = plugins
    for _ in range(3):  # a multi-task batch without code rows is not an outage
        assert trl.acecoder_reward(prompts=["p"], completions=["hi"], test_cases=[None]) == [None]
