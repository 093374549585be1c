"""The shared backend and the engine across fork: a process that has scored and then forks (verl's prime
manager's process pool, DataLoader workers, ``multiprocessing``) gives its children working rewards from
backends of their own, started at their first sample, and keeps its own; an engine used in a forked child
raises at once. Every child runs under ``helpers.run_forked``, which fails the test on a hang."""
from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from acecoder_rl.integrations import TRLReward, VerlComputeScore
from acecoder_rl.integrations.common import (
    CONFIG_ENV,
    RAY_ENV,
    BackendError,
    SharedScorer,
    failure_log,
    shared_scorer,
)
from acecoder_rl.reward import RewardConfig, RewardEngine

ROOT = Path(__file__).resolve().parents[2]
ADD = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 5"]  # the second is wrong: reward 0.5


def score_once(completion: str = ADD) -> float:
    return VerlComputeScore()("acecode", completion, TESTS)["score"]


def test_forked_child_scores_with_its_own_backend_and_leaves_the_parents_alone(local_backend, helpers):
    assert score_once() == 0.5
    parent_backend = shared_scorer().get()
    failure_log().record("verl", "a failure the parent had")

    def child() -> tuple:
        reward = score_once()
        own = shared_scorer().get()
        trl = TRLReward()(prompts=["p"], completions=[ADD], test_cases=[TESTS])
        shared_scorer().close()  # what the child's atexit does: must not stop the parent's sandboxes
        return reward, trl, own is not parent_backend, os.getpid(), failure_log().total

    (reward, trl, own_backend, child_pid, failures), alive = helpers.run_forked(child)
    assert (reward, trl, own_backend, failures) == (0.5, [0.5], True, 0) and child_pid != os.getpid()
    assert alive == []  # the child's engine, closed, left nothing behind
    assert shared_scorer().get() is parent_backend and score_once(ADD + "\n") == 0.5


def test_fork_while_another_thread_holds_the_backend_lock(local_backend, helpers):
    """A thread of the parent inside ``get()`` at the moment of the fork leaves the lock locked in the child,
    where that thread does not exist."""
    score_once()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with shared_scorer()._lock:
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    try:
        (reward, _), _ = helpers.run_forked(lambda: (score_once(), shared_scorer().close()), timeout_s=60)
    finally:
        release.set()
        holder.join()
    assert reward == 0.5


@pytest.mark.parametrize("pool", ["multiprocessing", "ProcessPoolExecutor"])
def test_fork_start_method_pools(pool, local_backend, helpers):
    """``multiprocessing.Pool`` (DataLoader workers are such processes) and ``ProcessPoolExecutor`` (as verl's
    prime manager uses it), both with the fork start method, from a process that has scored."""
    score_once()
    context = multiprocessing.get_context("fork")
    completions = [ADD, "def add(a, b):\n    return a - b\n", ADD + "\n", "no code"]

    def run() -> list[float]:
        if pool == "multiprocessing":
            with context.Pool(2) as workers:
                return workers.map(score_once, completions)
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as workers:
            return list(workers.map(score_once, completions))

    rewards, _ = helpers.run_forked(run)
    assert rewards == [0.5, 0.0, 0.5, 0.0]


def test_engine_used_in_a_forked_child_raises_at_once_and_closing_it_there_is_harmless(helpers):
    with RewardEngine(RewardConfig(workers=1)) as engine:
        assert engine.score([ADD], [TESTS])[0].reward == 0.5

        def child() -> str:
            with pytest.raises(RuntimeError) as info:  # a program not in the cache: it would be queued
                engine.score([ADD + "# scored in the child\n"], [TESTS])
            engine.close()  # a forked copy: the parent's workers keep running
            return str(info.value)

        message, _ = helpers.run_forked(child, timeout_s=60)
        assert f"belongs to process {os.getpid()}" in message and "is a fork of it" in message
        assert engine.score(["def add(a, b):\n    return b + a\n"], [TESTS])[0].reward == 0.5  # not cached
        assert engine.worker_restarts == 0  # the child's close() did not kill the parent's sandbox


def test_default_workers_applies_only_when_the_environment_sets_none():
    holder = SharedScorer({}, default_workers=1)
    try:
        assert holder.get().config.workers == 1
    finally:
        holder.close()
    configured = SharedScorer({CONFIG_ENV: '{"workers": 2}'}, default_workers=1)
    try:
        assert configured.get().config.workers == 2
    finally:
        configured.close()


def test_ray_backend_in_a_forked_child_is_a_clear_error_and_the_parent_keeps_its_pool(backend_env, helpers):
    """Ray's calls hang in a process forked from one connected to Ray (measured: ``ray.nodes()`` never
    returns there), so such a child's samples fail at once with the reason; the parent's pool, which the
    child holds on to without finalizing it, keeps working."""
    import ray

    assert not ray.is_initialized(), "this test starts its own Ray with this worktree on the actors' path"
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        backend_env(**{RAY_ENV: "1", CONFIG_ENV: json.dumps({"workers": 1})})
        assert score_once() == 0.5

        def child() -> tuple[float, str]:
            reward_error = VerlComputeScore()("acecode", ADD + "# in the child\n", TESTS)["reward_error"]
            with pytest.raises(BackendError) as info:
                shared_scorer().get()
            return reward_error, str(info.value)

        (reward_error, reason), _ = helpers.run_forked(child, timeout_s=60)
        assert reward_error == 1.0
        assert "a fork of process" in reason and "must score through ACECODER_REWARD_URL" in reason
        assert score_once("def add(a, b):\n    return b + a\n") == 0.5
    finally:
        backend_env()
        ray.shutdown()
