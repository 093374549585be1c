"""The Ray reward pool on a real (simulated) two-node Ray cluster: same verdicts as the local engine,
actors on every node, an actor killed mid-batch costs a retry, ``close()`` leaves nothing behind.

One module-scoped cluster (Ray starts slowly) whose two nodes have one CPU each, so the pool holds one
one-worker actor per node. The tests share the pool and run in file order; the last one closes it.
"""
import asyncio
import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import pytest
import ray  # the dev extra installs ray[default]==2.55.0

from acecoder_rl.reward import ProgramStatus, RewardConfig, RewardEngine, RewardScorer
from acecoder_rl.reward.ray_pool import RayRewardPool, RewardPoolError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KINDS = ("canonical", "mutant", "acecode_inference", "broken")
CONFIG = RewardConfig(timeout_per_test=2.0, cache_size=0)  # no cache: every batch really runs its programs
MIB = 1024 ** 2


def _items(per_kind: int = 15) -> list[dict]:
    rows = [json.loads(line) for line in (FIXTURES / "workload_small.jsonl").open()]
    return [r for kind in KINDS for r in [r for r in rows if r["kind"] == kind][:per_kind]]


def _slow(i: int) -> tuple[str, list[str]]:
    code = f"import time\ndef slow_{i}(x):\n    time.sleep(0.5)\n    return x + {i}\n"
    return code, [f"assert slow_{i}(1) == {i + 1}"]


def _verdicts(results) -> list[tuple]:
    return [(r.test_results, r.status, r.reward) for r in results]


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            table[int(entry)] = (int(fields[1]), fields[0])
    return table


def _descendants(roots: set[int]) -> set[int]:
    table = _proc_table()
    found, frontier = set(), set(roots)
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def _living(pids: set[int]) -> set[int]:
    table = _proc_table()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def _wait_gone(pids: set[int], timeout: float = 15.0) -> set[int]:
    limit = time.monotonic() + timeout
    while _living(pids) and time.monotonic() < limit:
        time.sleep(0.1)
    return _living(pids)


def _free_cpus_settle_at(want: float, timeout: float = 30.0) -> float:
    """Free CPUs in the cluster once they reach ``want`` (Ray's resource view lags behind actors)."""
    limit = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0.0) != want and time.monotonic() < limit:
        time.sleep(0.1)
    return ray.available_resources().get("CPU", 0.0)


def _kill_later(victim, delay: float, seen: dict) -> threading.Thread:
    """Kill ``victim`` from another thread ``delay`` s from now, noting its sandbox processes just before."""

    def run() -> None:
        time.sleep(delay)
        seen["sandbox"] = _descendants({victim.pid})
        ray.kill(victim.handle)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silence a Ray FutureWarning
    if ray.is_initialized():  # left connected by another test module: the pool must join this cluster
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 100 * MIB,
                                                      "include_dashboard": False})
    c.add_node(num_cpus=1, object_store_memory=100 * MIB)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def pool(cluster):
    p = RayRewardPool(CONFIG, num_cpus_per_actor=1, address=cluster.address, chunk_size=8)
    yield p
    p.close()


@pytest.fixture(scope="module")
def workload():
    """Fixture programs and their verdicts from the local engine (the reference)."""
    items = _items()
    with RewardEngine(dataclasses.replace(CONFIG, workers=2)) as engine:
        expected = engine.score([r["completion"] for r in items], [r["test_cases"] for r in items])
    return items, expected


def test_actors_that_cannot_start_are_a_clear_error(cluster):
    """Runs before the shared pool exists (it needs the CPUs): a sandbox that cannot start on any node."""
    broken = dataclasses.replace(CONFIG, python="/nonexistent/python3")
    with pytest.warns(RuntimeWarning, match="failed to start"), \
            pytest.raises(RewardPoolError, match="none of the 2 reward actors started.*sandbox"):
        RayRewardPool(broken, num_cpus_per_actor=1, address=cluster.address, start_timeout_s=60)
    assert _free_cpus_settle_at(2.0) == 2.0  # its actors are gone again, their CPUs free


def _worker_node() -> str:
    """The non-head node (the one a real cluster would lose)."""
    return next(n["NodeID"] for n in ray.nodes()
                if n["Alive"] and "node:__internal_head__" not in n["Resources"])


def test_one_actor_on_each_node_reserving_only_cpus(pool):
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    assert sorted(a.node_id for a in pool.actors) == sorted(nodes)
    assert [a.workers for a in pool.actors] == [1, 1] and pool.total_workers == 2
    assert _free_cpus_settle_at(0.0) == 0.0  # both nodes' CPUs are held by the pool
    assert ray.available_resources().get("GPU", 0) == 0 and isinstance(pool, RewardScorer)


def test_same_verdicts_as_the_local_engine_in_input_order(pool, workload):
    items, expected = workload
    completions = [r["completion"] for r in items] + [items[3]["completion"]] * 3  # duplicates: scored once
    tests = [r["test_cases"] for r in items] + [items[3]["test_cases"]] * 3
    before = dict(pool.stats)
    results = pool.score(completions, tests)
    assert _verdicts(results) == _verdicts(expected) + _verdicts([expected[3]]) * 3
    assert [r.test_status for r in results[:len(items)]] == [r.test_status for r in expected]
    assert pool.stats["unique"] - before.get("unique", 0) == len(items)
    assert {r.status for r in results} >= {ProgramStatus.OK, ProgramStatus.SYNTAX_ERROR}
    assert results[-1] is not results[-2] and results[-1].test_results is not results[-2].test_results


def test_ascore_and_input_checks(pool, workload):
    items, expected = workload
    head = items[:6]
    results = asyncio.run(pool.ascore([r["completion"] for r in head], [r["test_cases"] for r in head]))
    assert _verdicts(results) == _verdicts(expected[:6])
    assert pool.score([], []) == []
    with pytest.raises(ValueError, match="completions but"):
        pool.score(["x"], [])
    with pytest.raises(ValueError, match="empty"):
        pool.score(["def f(): pass"], [[]])


def _slow_batch(items):
    """Fixture programs with a slow (0.5 s) program after every fourth, so every chunk takes a while."""
    batch = []
    for i, row in enumerate(items):
        batch.append((row["completion"], row["test_cases"]))
        if i % 4 == 0:
            batch.append(_slow(i))
    return batch


def test_actor_killed_mid_batch_costs_a_retry_not_a_result(pool, workload):
    items, expected = workload
    batch = _slow_batch(items)
    reference = iter(_verdicts(expected))
    want = [([1], ProgramStatus.OK, 1.0) if code.startswith("import time\ndef slow_") else next(reference)
            for code, _ in batch]
    victim = next(a for a in pool.actors if a.node_id == _worker_node())
    before = dict(pool.stats)
    seen: dict = {}
    killer = _kill_later(victim, 1.5, seen)
    results = pool.score([c for c, _ in batch], [t for _, t in batch])
    killer.join()
    assert _verdicts(results) == want
    assert pool.stats["actor_deaths"] - before.get("actor_deaths", 0) == 1
    assert pool.stats["chunk_retries"] - before.get("chunk_retries", 0) >= 1
    assert seen["sandbox"] and _wait_gone(seen["sandbox"] | {victim.pid}) == set()  # died with its actor
    # the worker node still has its CPU: a replacement actor takes the dead one's place there
    assert pool.wait_for_actors(60) == 2
    assert sorted(a.node_id for a in pool.actors) == sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    assert victim.index not in {a.index for a in pool.actors}


def test_gives_up_after_max_retries_and_stays_usable(pool, workload):
    items, expected = workload
    batch = _slow_batch(items[:40])  # 10 slow programs: the victim is surely busy at 1 s
    victim = next(a for a in pool.actors if a.node_id == _worker_node())
    pool.max_retries = 0
    try:
        killer = _kill_later(victim, 1.0, {})
        with pytest.raises(RewardPoolError, match="max_retries=0"):
            pool.score([c for c, _ in batch], [t for _, t in batch])
        killer.join()
    finally:
        pool.max_retries = 3
    assert pool.wait_for_actors(60) == 2
    results = pool.score([r["completion"] for r in items[:4]], [r["test_cases"] for r in items[:4]])
    assert _verdicts(results) == _verdicts(expected[:4])


def test_close_leaves_no_actor_and_no_sandbox_process(pool, workload):
    """Runs last: closes the shared pool."""
    items, _ = workload
    pool.score([r["completion"] for r in items[:4]], [r["test_cases"] for r in items[:4]])  # sandboxes are up
    actors = pool.actors
    actor_pids = {a.pid for a in actors}
    sandbox = _descendants(actor_pids)
    assert len(actors) == 2 and sandbox
    pool.close()
    pool.close()  # idempotent
    assert pool.actors == []
    for actor in actors:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.handle.ready.remote(), timeout=30)
    assert _wait_gone(sandbox | actor_pids) == set()
    with pytest.raises(RuntimeError, match="closed"):
        pool.score(["def f(): pass"], [["assert f() is None"]])
