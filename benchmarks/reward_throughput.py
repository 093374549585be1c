"""Reward-engine throughput, side by side on the same cores in one run (not a test: machines are noisy).

Measures on the standard workload (``shared/bench/workload.jsonl``; the 32 ``timeout`` items separately):
  engine-cli    ``acecoder-rl reward score`` in a subprocess, engine start-up included
  engine-api    ``RewardEngine.score`` (cache off), after start-up
  floor         unsafe in-process ``exec``, one process per core (no isolation at all)
  naive         one fresh ``python3 -I`` subprocess per program, one per core (safe, slow)
plus per-test agreement with the ground truth, the share of CPU time the host stole during each
measurement (on a shared VM, one reason absolute figures move between runs), engine start time, the
timeout items' wall time against the ideal (their per-test limits scheduled on all workers), and parent
memory across a large batch.

    python benchmarks/reward_throughput.py [--workload PATH] [--big 10000] [--skip-naive] \
        [--against CHECKOUT [--rounds 3]]

``--against`` runs the CLI measurement also with another checkout of the project (e.g. a ``git worktree``
of the commit before a change), alternating rounds with this one on the same cores, and prints the ratio of
the two (median rounds): the one comparison of two versions that noisy shared machines allow.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKLOAD = REPO.parent / "shared" / "bench" / "workload.jsonl"


def _makespan(durations: list[float], workers: int) -> float:
    """Wall time of running whole programs (each on one worker, longest first) on ``workers`` workers:
    the best a pool can do when a program cannot be split (32 equal programs on 3 workers: 11 rounds)."""
    loads = [0.0] * workers
    for d in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += d
    return max(loads)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------- reference harnesses
def _extract(completion: str) -> str:
    from acecoder_rl.reward.extract import extract_code

    return extract_code(completion)


def _alarm(signum, frame):
    raise TimeoutError


def _floor_one(item: tuple[str, list[str]]) -> list[int]:
    """Unsafe: exec in this very process with a SIGALRM per test (what a harness without isolation does)."""
    code, tests = item
    signal.signal(signal.SIGALRM, _alarm)
    g: dict = {}
    out = []
    try:
        signal.alarm(4)
        exec(code, g)
        signal.alarm(0)
    except BaseException:
        signal.alarm(0)
        return [0] * len(tests)
    for t in tests:
        try:
            signal.alarm(4)
            exec(t, g)
            out.append(1)
        except BaseException:
            out.append(0)
        finally:
            signal.alarm(0)
    return out


_NAIVE_CHILD = r"""
import json, signal, sys
def alarm(*a): raise TimeoutError
signal.signal(signal.SIGALRM, alarm)
item = json.loads(sys.stdin.read())
g = {}
res = []
try:
    signal.alarm(4); exec(item["code"], g); signal.alarm(0); ok = True
except BaseException:
    signal.alarm(0); ok = False
for t in item["tests"]:
    if not ok:
        res.append(0); continue
    try:
        signal.alarm(4); exec(t, g); res.append(1)
    except BaseException:
        res.append(0)
    finally:
        signal.alarm(0)
sys.__stdout__.write("\n@@RESULT@@" + json.dumps(res))
"""


def _naive_one(item: tuple[str, list[str]]) -> list[int]:
    code, tests = item
    with tempfile.TemporaryDirectory() as cwd:
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", _NAIVE_CHILD], input=json.dumps({"code": code, "tests": tests}),
                                  capture_output=True, text=True, cwd=cwd, timeout=4 * len(tests) + 6,
                                  start_new_session=True)
            marker = proc.stdout.rfind("@@RESULT@@")
            return json.loads(proc.stdout[marker + 10:]) if marker >= 0 else [0] * len(tests)
        except subprocess.TimeoutExpired:
            return [0] * len(tests)


def _quiet() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def _pool_run(fn, items: list, workers: int) -> tuple[float, list[list[int]]]:
    with mp.get_context("fork").Pool(workers, initializer=_quiet) as pool:
        started = time.perf_counter()
        results = pool.map(fn, items, chunksize=1)
        return time.perf_counter() - started, results


# ------------------------------------------------------------------------------------------------ helpers
def _agreement(rows: list[dict], results: list[list[int]]) -> str:
    total = sum(len(r["expected_test_results"]) for r in rows)
    agree = sum(a == b for r, res in zip(rows, results) for a, b in zip(r["expected_test_results"], res))
    exact = sum(r["expected_test_results"] == res for r, res in zip(rows, results))
    return f"{agree / total:.4f} per test, {exact}/{len(rows)} programs exact"


def _cpu_ticks() -> tuple[int, int]:
    """(all CPU time, time stolen by the hypervisor) in ticks since boot; (0, 0) where /proc/stat is absent."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


class _Steal:
    """Share of the machine's CPU time the host took away during a measurement: on a shared VM this is
    what makes absolute figures move between runs (the ratios measured side by side move much less)."""

    def __enter__(self) -> "_Steal":
        self.start = _cpu_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        end = _cpu_ticks()
        total, steal = end[0] - self.start[0], end[1] - self.start[1]
        self.text = f"{100 * steal / total:.0f}%" if total > 0 else "n/a"


def _line(name: str, seconds: float, rows: list[dict], results: list[list[int]], steal: _Steal) -> None:
    n, asserts = len(rows), sum(len(r["test_cases"]) for r in rows)
    print(f"| {name:<12} | {seconds:8.2f} | {n / seconds:9.1f} | {asserts / seconds:9.0f} | {steal.text:>5} | "
          f"{_agreement(rows, results)} |", flush=True)


def _cli_run(checkout: Path, src: Path, workers: int) -> tuple[float, list[list[int]], _Steal]:
    """``acecoder-rl reward score`` of ``checkout``'s package on ``src``: wall seconds, results, steal."""
    out = src.with_suffix(".out.jsonl")
    env = dict(os.environ, PYTHONPATH=str(checkout))
    with _Steal() as steal:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "acecoder_rl", "reward", "score", str(src), "-o", str(out),
                        "--workers", str(workers)], check=True, stdout=subprocess.DEVNULL, env=env, cwd=checkout)
        seconds = time.perf_counter() - started
    return seconds, [json.loads(line)["test_results"] for line in out.open()], steal


def _compare(other: Path, rounds: int, src: Path, rows: list[dict], workers: int) -> None:
    """Alternating CLI rounds of ``other`` and this checkout; the ratio of their medians."""
    times: dict[str, list[float]] = {"this": [], "other": []}
    for k in range(rounds):
        for name, checkout in (("other", other), ("this", REPO)) if k % 2 == 0 else (("this", REPO), ("other", other)):
            seconds, results, steal = _cli_run(checkout, src, workers)
            times[name].append(seconds)
            _line(f"cli-{name}", seconds, rows, results, steal)
    this, other_s = sorted(times["this"])[rounds // 2], sorted(times["other"])[rounds // 2]
    print(f"\nthis checkout / {other}: {other_s / this:.3f}x the throughput (median of {rounds} alternating "
          f"rounds: {len(rows) / this:.1f} vs {len(rows) / other_s:.1f} programs/s)\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", type=Path, default=DEFAULT_WORKLOAD)
    ap.add_argument("--workers", type=int, default=None, help="engine workers [default: the engine's own]")
    ap.add_argument("--big", type=int, default=10_000, help="programs in the memory-flatness batch (0: skip)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-timeouts", action="store_true")
    ap.add_argument("--against", type=Path, default=None, help="another checkout to compare the CLI with")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per checkout with --against")
    args = ap.parse_args()

    from acecoder_rl.reward import RewardConfig, RewardEngine

    rows = [json.loads(line) for line in args.workload.open()]
    normal = [r for r in rows if r["kind"] != "timeout"]
    hanging = [r for r in rows if r["kind"] == "timeout"]
    items = [(_extract(r["completion"]), r["test_cases"]) for r in normal]
    cores = os.cpu_count() or 1
    engine_workers = RewardConfig(workers=args.workers).n_workers
    print(f"workload {args.workload} : {len(normal)} programs / {sum(len(r['test_cases']) for r in normal)} asserts "
          f"(+{len(hanging)} timeout items); engine: {engine_workers} workers; floor and naive: one process "
          f"per core; {cores} cores\n")
    print("| harness      |   wall s | programs/s | asserts/s | steal | agreement with ground truth |")
    print("|---|---:|---:|---:|---:|---|")

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in normal))
        if args.against:
            _compare(args.against, args.rounds, src, normal, engine_workers)
        cli_s, cli_results, steal = _cli_run(REPO, src, engine_workers)
    _line("engine-cli", cli_s, normal, cli_results, steal)

    with RewardEngine(RewardConfig(workers=engine_workers, cache_size=0)) as engine:
        start_s = engine.start_seconds
        with _Steal() as steal:
            started = time.perf_counter()
            api = engine.score([r["completion"] for r in normal], [r["test_cases"] for r in normal])
            api_s = time.perf_counter() - started
        _line("engine-api", api_s, normal, [r.test_results for r in api], steal)
        fallbacks = engine.stats["fallback_tests"]

        with _Steal() as steal:
            floor_s, floor_results = _pool_run(_floor_one, items, cores)
        _line("floor", floor_s, normal, floor_results, steal)
        if not args.skip_naive:
            with _Steal() as steal:
                naive_s, naive_results = _pool_run(_naive_one, items, cores)
            _line("naive", naive_s, normal, naive_results, steal)
            print(f"\nengine-cli / naive = {naive_s / cli_s:.1f}x; engine-api / naive = {naive_s / api_s:.1f}x")
        print(f"engine-cli / floor = {cli_s / floor_s:.2f}x the floor's time; engine start {start_s:.2f} s; "
              f"tests checked inside the child (fallback): {fallbacks}")

        if not args.skip_timeouts and hanging:
            started = time.perf_counter()
            res = engine.score([r["completion"] for r in hanging], [r["test_cases"] for r in hanging])
            hang_s = time.perf_counter() - started
            ideal = _makespan([len(r["test_cases"]) * 4.0 for r in hanging], engine_workers)
            print(f"timeout items: {len(hanging)} programs in {hang_s:.1f} s (ideal: their per-test limits "
                  f"scheduled on {engine_workers} workers = {ideal:.1f} s); "
                  f"{_agreement(hanging, [r.test_results for r in res])}")

    if args.big:
        reps = -(-args.big // len(normal))
        # Every program unique (a comment on its first test changes the key, not the verdict), so that the
        # engine runs all of them instead of answering repeats from its in-flight deduplication.
        batch = [dict(r, test_cases=[f"{r['test_cases'][0]}  # copy {k}", *r["test_cases"][1:]])
                 for k, r in enumerate((normal * reps)[: args.big])]
        with RewardEngine(RewardConfig(workers=engine_workers, cache_size=0)) as engine:
            engine.score([batch[0]["completion"]], [batch[0]["test_cases"]])
            rss0 = _rss_mb()
            started = time.perf_counter()
            big = engine.score([r["completion"] for r in batch], [r["test_cases"] for r in batch])
            big_s = time.perf_counter() - started
            rss1 = _rss_mb()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{args.big} distinct programs in one batch: {args.big / big_s:.1f} programs/s; parent RSS "
              f"{rss0:.0f} -> {rss1:.0f} MB (peak {peak:.0f} MB); {_agreement(batch, [r.test_results for r in big])}")


if __name__ == "__main__":
    main()
