"""reward_fns/verl_reward.py, loaded from its path and called the ways verl calls custom reward functions:
``compute_score(data_source=, solution_str=, ground_truth=, extra_info=)`` by keyword (naive manager, reward
loop, plus verl's own extra keyword arguments), positionally, ``compute_score_batch(data_sources=,
solution_strs=, ground_truths=, extra_infos=)`` (batch manager) and ``compute_score_prime`` positionally
(prime manager). Inside verl's own managers: test_verl_managers.py."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from acecoder_rl.integrations import VerlBatchComputeScore, VerlComputeScore, VerlPrimeComputeScore
from acecoder_rl.reward.results import SAMPLE_METRICS

PLUGIN = "verl_reward.py"
ADD = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 1"]  # the last one is wrong
KEYS = {"score", "acc", *SAMPLE_METRICS}


@pytest.fixture
def plugin(load_plugin):
    return load_plugin(PLUGIN, "custom_module")


def test_compute_score_by_keyword_and_positionally(local_backend, plugin):
    by_keyword = plugin.compute_score(data_source="acecode", solution_str=ADD, ground_truth=TESTS,
                                      extra_info={"index": 3, "num_turns": None, "rollout_reward_scores": {}})
    positional = plugin.compute_score("acecode", f"```python\n{ADD}```", TESTS, None)
    json_truth = plugin.compute_score("acecode", ADD, json.dumps(TESTS))
    parquet_truth = plugin.compute_score("acecode", ADD, np.array(TESTS, dtype=object))  # a pandas cell
    for result in (by_keyword, positional, json_truth, parquet_truth):
        assert set(result) == KEYS and all(type(v) is float for v in result.values())
        assert result["score"] == pytest.approx(2 / 3) and result["acc"] == pytest.approx(2 / 3)
        assert result["pass_rate"] == pytest.approx(2 / 3)
        assert result["status_ok"] == 1.0 and result["reward_error"] == 0.0


def test_verl_keyword_arguments_are_accepted_and_unknown_ones_reported(local_backend, plugin, warnings_log):
    result = plugin.compute_score(data_source="acecode", solution_str=ADD, ground_truth=TESTS[:2],
                                  extra_info={}, reward_router_address=None, reward_model_tokenizer=None)
    assert result["score"] == 1.0 and "ignoring" not in warnings_log.text
    for _ in range(2):
        assert plugin.compute_score("acecode", ADD, TESTS[:2], mode="binary")["score"] == 1.0
    assert warnings_log.text.count("ignoring keyword argument(s) mode") == 1


def test_batch_form_scores_all_samples_in_one_call(local_backend, plugin):
    results = plugin.compute_score_batch(
        data_sources=np.array(["acecode"] * 4, dtype=object),
        solution_strs=[ADD, "def add(a, b):\n    return a - b\n", "def add(a, b:\n", ADD],
        ground_truths=[TESTS[:2], json.dumps(TESTS[:2]), TESTS[:2], 17],
        extra_infos=[{}, {}, {}, {}],
    )
    assert [r["score"] for r in results] == [1.0, 0.0, 0.0, 0.0]
    assert [r["status_syntax_error"] for r in results] == [0.0, 0.0, 1.0, 0.0]
    assert [r["reward_error"] for r in results] == [0.0, 0.0, 0.0, 1.0]
    # verl stores each key as an np.array column of the batch: every sample carries every key, as floats.
    assert all(set(r) == KEYS for r in results)
    columns = {k: np.array([r[k] for r in results]) for k in KEYS}
    assert all(c.dtype == np.float64 and c.shape == (4,) for c in columns.values())


def test_failures_give_zero_and_a_logged_reason(local_backend, plugin, warnings_log):
    for truth, reason in ((None, "ground_truth must be a list of test strings or a tests object, got null"),
                          ("[", "is a string but not JSON tests"), ([], "ground_truth is empty")):
        result = plugin.compute_score("acecode", ADD, truth)
        assert result["score"] == 0.0 and result["acc"] == 0.0 and result["reward_error"] == 1.0
        assert set(result) == KEYS and reason in warnings_log.text
    assert plugin.compute_score("acecode", None, TESTS)["reward_error"] == 1.0
    assert "solution_str must be a string" in warnings_log.text
    mismatched = plugin.compute_score_batch(["a", "b"], [ADD, ADD], [TESTS])
    assert [r["reward_error"] for r in mismatched] == [1.0, 1.0]
    assert plugin.compute_score_batch(None, 5, None) == []  # nonsense in: no exception out


def test_pickle_round_trip(local_backend, plugin):
    """verl ships the reward manager, with its compute_score, to a Ray worker (``compute_reward_async``);
    the prime manager pickles each call of compute_score_prime to its process pool."""
    for fn in (plugin.compute_score, plugin.compute_score_batch, plugin.compute_score_prime):
        clone = pickle.loads(pickle.dumps(fn))
        assert type(clone) in (VerlComputeScore, VerlBatchComputeScore, VerlPrimeComputeScore)
    clone = pickle.loads(pickle.dumps(plugin.compute_score))
    assert clone("acecode", ADD, TESTS[:2])["score"] == 1.0


def test_prime_form_returns_the_reward_as_a_float(local_backend, plugin, warnings_log):
    """verl's prime manager calls it positionally and takes ``float(result)`` of a number only."""
    assert plugin.compute_score_prime("acecode", ADD, TESTS, {"index": 0}) == pytest.approx(2 / 3)
    assert type(plugin.compute_score_prime("acecode", ADD, TESTS[:2], None)) is float
    assert plugin.compute_score_prime("acecode", ADD, {"tests": TESTS}) == 0.0
    assert "ground_truth.tests must be a list of objects" in warnings_log.text
