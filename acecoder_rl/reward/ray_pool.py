"""The reward on every node of a Ray cluster: a pool of reward actors behind the ``RewardScorer`` interface.

A 7B RL step scores 4,000-8,000 programs; one machine's cores cannot keep up, so :class:`RayRewardPool`
runs a local :class:`~acecoder_rl.reward.RewardEngine` inside Ray actors on all alive nodes and feeds them
chunks of each batch. Trainer plug-ins and the HTTP service use it exactly like the local engine::

    pool = RayRewardPool(RewardConfig(mode="pass_rate"), num_cpus_per_actor=16)   # ray.init if needed
    results = pool.score(completions, test_cases)     # list[RewardResult], input order
    pool.close()                                      # actors and their sandboxes are gone

Placement: one actor per alive node by default (``actors_per_node`` for more), pinned to its node with a hard
``NodeAffinitySchedulingStrategy``. Pinning (rather than a STRICT_SPREAD placement group) is what lets the
pool replace a dead actor on the node it died on, cover nodes of any size (a placement group is
all-or-nothing) and never be captured into a trainer's placement group: an actor created with an explicit
strategy does not inherit the GPU bundles of the task that created it. Each actor reserves only CPUs
(``num_gpus=0``), ``min(num_cpus_per_actor, node CPUs)`` of them, and runs that many sandbox workers, so a
node's reward load never exceeds what Ray accounts for. Nodes without CPUs are left out.

Batches: identical (completion, tests) pairs are scored once; the unique items are cut into chunks small
enough that every sandbox worker gets several, and chunks go to the least-loaded actor (in-flight chunks per
worker, so an actor gets work in proportion to its workers), at most ``inflight_per_worker`` chunks per
worker at a time. Results travel as plain ``RewardResult.to_dict()`` dicts and are put back in input order.

Failures: an actor that dies mid-batch (``RayActorError``: killed, out of memory, its node lost) costs a
retry of its chunks on the other actors, never a wrong or lost result; the pool starts a replacement on the
same node when that node is still alive. A chunk that has failed ``1 + max_retries`` times, or a pool left
without actors, raises :class:`RewardPoolError`. ``ray`` is imported only when a pool is built.
"""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import math
import os
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.results import RewardResult
from acecoder_rl.reward.interface import validate_batch

__all__ = ["PoolActor", "RayRewardPool", "RewardPoolError"]


class RewardPoolError(AcecoderError):
    """The Ray reward pool could not produce a result (no usable actors, or a chunk lost too many times)."""


@dataclasses.dataclass(frozen=True)
class PoolActor:
    """One reward actor of the pool: where it runs and how many sandbox workers it holds."""

    index: int  # serial number within the pool (replacements get new ones)
    handle: Any  # the ray ActorHandle
    node_id: str  # hex id of the Ray node it is pinned to
    pid: int  # its worker process on that node
    workers: int  # sandbox workers of its RewardEngine (= CPUs it reserves, at least 1)
    features: dict  # the engine's isolation features (bwrap, seccomp, ...)


class _RewardActor:
    """Runs in a Ray worker process on one node: one local RewardEngine, nothing else.

    Async methods make it an asyncio actor, so several chunks are in the engine's queue at once and all of
    its sandbox workers stay busy. Arguments and results are plain data (strings, lists, dicts)."""

    def __init__(self, config: dict) -> None:
        from acecoder_rl.reward.engine import RewardEngine

        self._engine = RewardEngine(RewardConfig.from_dict(config))

    async def ready(self) -> dict:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "workers": self._engine.config.n_workers, "features": dict(self._engine.features)}

    async def score(self, completions: list[str], test_cases: list[list[str]]) -> list[dict]:
        return [r.to_dict() for r in await self._engine.ascore(completions, test_cases)]

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._engine.close)


_remote_class: Any = None


def _remote_actor_class() -> Any:
    global _remote_class
    if _remote_class is None:
        import ray

        _remote_class = ray.remote(_RewardActor)
    return _remote_class


@dataclasses.dataclass
class _Chunk:
    items: list[int]  # indices into the batch's unique items
    attempts: int = 0


@dataclasses.dataclass
class _Starting:
    handle: Any
    node_id: str
    cpus: float
    deadline: float


class RayRewardPool:
    """Sandboxed reward on all nodes of a Ray cluster; a :class:`~acecoder_rl.reward.RewardScorer`.

    Args:
        config: engine settings for every actor; its ``workers`` is replaced by the CPUs each actor reserves.
        actors_per_node: actors per alive node (default 1); capped by what the node's CPUs hold.
        num_cpus_per_actor: CPUs each actor reserves (capped at the node's CPU count); its engine runs
            ``max(1, floor(cpus))`` sandbox workers. On nodes shared with training, set it to what the
            trainer leaves free: an actor that cannot get its CPUs within ``start_timeout_s`` is dropped.
        address: the cluster to connect to when Ray is not initialised yet (else ``RAY_ADDRESS``, else
            ``"auto"``: a running local cluster; the pool never starts a cluster of its own).
        chunk_size: most programs per actor call; smaller chunks are used when a batch is small.
        max_retries: times one chunk may be resubmitted after its actor died before the batch fails.
        inflight_per_worker: chunks in flight per sandbox worker of an actor (shared by concurrent calls).
        start_timeout_s: how long actors (and replacements) may take to be placed and start their sandbox.
    """

    def __init__(self, config: RewardConfig | None = None, *, actors_per_node: int | None = None,
                 num_cpus_per_actor: float = 8.0, address: str | None = None, chunk_size: int = 16,
                 max_retries: int = 3, inflight_per_worker: int = 2, start_timeout_s: float = 180.0) -> None:
        if actors_per_node is not None and actors_per_node < 1:
            raise ValueError(f"actors_per_node must be >= 1, got {actors_per_node!r}")
        if not num_cpus_per_actor > 0:
            raise ValueError(f"num_cpus_per_actor must be > 0, got {num_cpus_per_actor!r}")
        if chunk_size < 1 or max_retries < 0 or inflight_per_worker < 1:
            raise ValueError("chunk_size and inflight_per_worker must be >= 1 and max_retries >= 0")
        import ray

        self.config = config or RewardConfig()
        self.actors_per_node = actors_per_node or 1
        self.num_cpus_per_actor = float(num_cpus_per_actor)
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self.inflight_per_worker = inflight_per_worker
        self.start_timeout_s = start_timeout_s
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._actors: dict[int, PoolActor] = {}
        self._inflight: dict[int, int] = {}
        self._starting: dict[Any, _Starting] = {}  # ready() ref -> actor being placed
        self._serial = 0
        self._closed = False

        if not ray.is_initialized():
            target = address or os.environ.get("RAY_ADDRESS") or "auto"
            try:
                ray.init(address=target)
            except ConnectionError as exc:
                raise RewardPoolError(f"cannot connect to a Ray cluster at {target!r}: {exc}; start one "
                                      "(`ray start --head`) or pass address=/set RAY_ADDRESS") from None
        plan = self._plan()
        if not plan:
            raise RewardPoolError("no alive Ray node has CPUs for a reward actor")
        for node_id, cpus in plan:
            self._start_actor(node_id, cpus)
        try:
            self.wait_for_actors(self.start_timeout_s)
        except BaseException:
            self.close()
            raise
        if not self._actors:
            self.close()
            raise RewardPoolError(f"none of the {len(plan)} reward actors started: {self._last_start_error}")

    # ------------------------------------------------------------------------------------------- public
    @property
    def actors(self) -> list[PoolActor]:
        """Live actors, in start order."""
        with self._lock:
            return sorted(self._actors.values(), key=lambda a: a.index)

    @property
    def total_workers(self) -> int:
        return sum(a.workers for a in self.actors)

    @property
    def worker_restarts(self) -> int:
        """Actors replaced after dying (the pool's counterpart of the engine's worker restarts)."""
        return self.stats["actors_replaced"]

    @property
    def features(self) -> dict:
        """What a service reports about its backend."""
        return {"isolation": "ray", "actors": len(self.actors), "workers": self.total_workers}

    def wait_for_actors(self, timeout: float | None = None) -> int:
        """Wait until no actor is still being placed or started (or ``timeout``); return the live count."""
        limit = time.monotonic() + (self.start_timeout_s if timeout is None else timeout)
        while True:
            self._poll_starting(wait_s=0.2)
            with self._lock:
                if not self._starting or time.monotonic() >= limit:
                    return len(self._actors)

    def score(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        """Score each completion against its tests on the cluster; results come back in input order."""
        validate_batch(completions, test_cases)
        if self._closed:
            raise RuntimeError("RayRewardPool is closed")
        unique: dict[tuple[str, tuple[str, ...]], int] = {}
        where = [unique.setdefault((c, tuple(t)), len(unique)) for c, t in zip(completions, test_cases)]
        items = list(unique)
        self._count(batches=1, programs=len(where), unique=len(items))
        done = self._run_chunks(items)
        results, used = [], set()
        for u in where:
            results.append(RewardResult.from_dict(copy.deepcopy(done[u]) if u in used else done[u]))
            used.add(u)
        return results

    async def ascore(self, completions: Sequence[str],
                     test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        """Async ``score`` for servers: the dispatch (blocking Ray calls) runs in a thread, off the loop."""
        return await asyncio.to_thread(self.score, completions, test_cases)

    def close(self, timeout: float = 30.0) -> None:
        """Close every actor's engine (its sandbox processes end), then kill the actors. Idempotent."""
        import ray

        with self._lock:
            if self._closed:
                return
            self._closed = True
            actors, starting = list(self._actors.values()), list(self._starting.values())
            self._actors.clear()
            self._starting.clear()
            self._slot_freed.notify_all()
        limit = time.monotonic() + timeout
        refs = [a.handle.shutdown.remote() for a in actors]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=timeout)
        handles = [a.handle for a in actors] + [s.handle for s in starting]
        for handle in handles:
            _kill(handle)
        _wait_dead(handles, limit)  # ray.kill only asks: return once Ray reports every actor dead

    def __enter__(self) -> "RayRewardPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------------------- placement
    def _plan(self) -> list[tuple[str, float]]:
        """(node id, CPUs) for every actor to start: ``actors_per_node`` on each alive node with CPUs."""
        import ray

        plan = []
        for node in ray.nodes():
            node_cpus = float(node.get("Resources", {}).get("CPU", 0.0))
            if not node.get("Alive") or node_cpus <= 0:
                continue
            cpus = min(self.num_cpus_per_actor, node_cpus)
            count = min(self.actors_per_node, int(node_cpus // cpus + 1e-9))
            if count < self.actors_per_node:
                warnings.warn(f"node {node['NodeID'][:12]} has {node_cpus:g} CPUs: {count} reward actor(s) "
                              f"of {cpus:g} CPUs instead of {self.actors_per_node}", RuntimeWarning,
                              stacklevel=3)
            plan += [(node["NodeID"], cpus)] * count
        return plan

    def _start_actor(self, node_id: str, cpus: float) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        workers = max(1, int(cpus))
        handle = _remote_actor_class().options(
            num_cpus=cpus, num_gpus=0, max_restarts=0, max_task_retries=0,
            max_concurrency=workers * self.inflight_per_worker + 4,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(self._actor_config(workers))
        with self._lock:
            self._starting[handle.ready.remote()] = _Starting(handle, node_id, cpus,
                                                              time.monotonic() + self.start_timeout_s)

    def _actor_config(self, workers: int) -> dict:
        values = dataclasses.asdict(dataclasses.replace(self.config, workers=workers))
        values["preimport"] = list(values["preimport"])
        return values

    _last_start_error = "timed out waiting for CPUs on the nodes"

    def _poll_starting(self, wait_s: float = 0.0) -> None:
        """Move actors whose ``ready()`` answered into the pool; drop those that failed or timed out."""
        import ray

        with self._lock:
            refs = list(self._starting)
        if not refs:
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=wait_s)
        now = time.monotonic()
        for ref in refs:
            with self._lock:
                start = self._starting.get(ref)
            if start is None:
                continue
            info = None
            if ref in ready:
                try:
                    info = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - actor creation failed: say why, go on without it
                    self._last_start_error = _last_line(exc)
                    warnings.warn(f"reward actor on node {start.node_id[:12]} failed to start: "
                                  f"{self._last_start_error}", RuntimeWarning, stacklevel=2)
            elif now < start.deadline:
                continue
            else:
                warnings.warn(f"reward actor on node {start.node_id[:12]} got no {start.cpus:g} CPUs "
                              f"within {self.start_timeout_s:g} s; going on without it", RuntimeWarning,
                              stacklevel=2)
            with self._lock:
                if self._starting.pop(ref, None) is None:  # another thread got there first
                    continue
                if info is not None and not self._closed:
                    self._serial += 1
                    actor = PoolActor(self._serial, start.handle, info["node_id"], info["pid"],
                                      info["workers"], info["features"])
                    self._actors[actor.index] = actor
                    self._inflight[actor.index] = 0
                    self._slot_freed.notify_all()
                    continue
            _kill(start.handle)

    def _actor_failed(self, actor: PoolActor) -> None:
        """Forget a dead actor (once) and start a replacement on its node if that node is still alive."""
        import ray

        with self._lock:
            if self._actors.pop(actor.index, None) is None or self._closed:
                return
            self._inflight.pop(actor.index, None)
            self.stats["actor_deaths"] += 1  # under the lock already
        _kill(actor.handle)  # an unavailable actor must not come back and run chunks twice
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        cpus = next((c for _n, c in self._plan_for(actor.node_id)), None) if actor.node_id in alive else None
        if cpus is not None:
            self._count(actors_replaced=1)
            self._start_actor(actor.node_id, cpus)

    def _plan_for(self, node_id: str) -> list[tuple[str, float]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return [p for p in self._plan() if p[0] == node_id]

    # ----------------------------------------------------------------------------------------- dispatch
    def _count(self, **increments: int) -> None:
        with self._lock:
            self.stats.update(increments)

    def _acquire(self) -> PoolActor | None:
        """The least-loaded actor (in-flight chunks per worker) with a free slot, its slot taken."""
        with self._lock:
            free = [a for a in self._actors.values()
                    if self._inflight[a.index] < a.workers * self.inflight_per_worker]
            if not free:
                return None
            best = min(free, key=lambda a: (self._inflight[a.index] / a.workers, a.index))
            self._inflight[best.index] += 1
            return best

    def _release(self, actor: PoolActor) -> None:
        with self._lock:
            if actor.index in self._inflight:
                self._inflight[actor.index] -= 1
            self._slot_freed.notify_all()

    def _chunks(self, n: int) -> list[_Chunk]:
        workers = max(1, self.total_workers)
        size = max(1, min(self.chunk_size, math.ceil(n / (4 * workers))))
        return [_Chunk(list(range(i, min(i + size, n)))) for i in range(0, n, size)]

    def _run_chunks(self, items: list[tuple[str, tuple[str, ...]]]) -> list[dict]:
        import ray
        from ray.exceptions import ObjectLostError, RayActorError

        done: list[dict | None] = [None] * len(items)
        pending = deque(self._chunks(len(items)))
        running: dict[Any, tuple[_Chunk, PoolActor]] = {}
        self._count(chunks=len(pending))
        try:
            while pending or running:
                if self._closed:
                    raise RuntimeError("RayRewardPool was closed during a batch")
                self._poll_starting()
                while pending:
                    actor = self._acquire()
                    if actor is None:
                        break
                    chunk = pending.popleft()
                    ref = actor.handle.score.remote([items[i][0] for i in chunk.items],
                                                    [list(items[i][1]) for i in chunk.items])
                    running[ref] = (chunk, actor)
                if not running:
                    with self._lock:
                        if not self._actors and not self._starting:
                            raise RewardPoolError("no live reward actors left (all died and none could be "
                                                  f"replaced); {len(pending)} chunk(s) unscored")
                        self._slot_freed.wait(timeout=0.2)
                    continue
                finished, _ = ray.wait(list(running), num_returns=1, timeout=0.2 if pending else None)
                for ref in finished:
                    chunk, actor = running.pop(ref)
                    self._release(actor)
                    try:
                        answers = ray.get(ref)
                    except (RayActorError, ObjectLostError) as exc:
                        if isinstance(exc, RayActorError):
                            self._actor_failed(actor)
                        chunk.attempts += 1
                        if chunk.attempts > self.max_retries:
                            raise RewardPoolError(
                                f"a chunk of {len(chunk.items)} program(s) was lost {chunk.attempts} times "
                                f"(max_retries={self.max_retries}); last: {type(exc).__name__}: "
                                f"{_last_line(exc)}") from exc
                        self._count(chunk_retries=1)
                        pending.appendleft(chunk)
                        continue
                    if len(answers) != len(chunk.items):
                        raise RewardPoolError(f"actor {actor.index} returned {len(answers)} results for "
                                              f"{len(chunk.items)} programs")
                    for i, answer in zip(chunk.items, answers):
                        done[i] = answer
                    self._count(executed=len(answers))
        finally:
            for _chunk, actor in running.values():
                self._release(actor)
        return done  # type: ignore[return-value]


def _kill(handle: Any) -> None:
    import ray

    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


def _last_line(exc: BaseException) -> str:
    """The useful end of a Ray error (its text is a remote traceback whose last line is the cause)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _wait_dead(handles: list, limit: float) -> None:
    """Probe killed actors until each call fails with ``RayActorError`` (or ``limit``, monotonic, passes)."""
    import ray
    from ray.exceptions import RayActorError

    alive = list(handles)
    while alive and time.monotonic() < limit:
        probes = {h.ready.remote(): h for h in alive}
        finished, _ = ray.wait(list(probes), num_returns=len(probes),
                               timeout=max(0.0, limit - time.monotonic()))
        alive = []
        for ref, handle in probes.items():
            if ref not in finished:
                alive.append(handle)
                continue
            try:
                ray.get(ref)
            except RayActorError:
                continue
            except Exception:  # noqa: BLE001 - any other failure: the actor cannot serve anyway
                continue
            alive.append(handle)
        if alive:
            time.sleep(0.05)


