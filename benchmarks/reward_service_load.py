"""Load and fault test of the HTTP reward service (a script that prints a report; not a pytest test).

Starts ``acecoder-rl serve`` (verdict cache off unless ``--cache``, so every program really runs), then N
concurrent clients send mixed batches drawn from the shared workload for a fixed duration and check every
answer against its ground truth (``expected_test_results``). Half the clients are trainer plug-ins
(``RewardServiceClient`` on ``/v1/score``: retries 5 times, 1 s apart or after ``Retry-After``), half behave
like OpenRLHF 0.11's own client on ``/get_reward`` (a fresh connection per try, 5 tries 1 s apart, 180 s
timeout; one sample per request, sometimes a small batch as older releases sent).

Modes (combinable):
  --kill-workers     SIGKILL one sandbox worker of the server every --kill-interval s, from outside: by default
                     the server's direct children running zygote.py (bubblewrap, or the zygote itself without
                     it); --kill-target zygote kills the warm fork server inside the sandbox instead
  --restart-service  stop the server (--restart-signal TERM: graceful; KILL: crash) and start a new one on the
                     same port, --restarts times, evenly spaced, while the clients keep going

Reported: requests, programs, wrong answers and lost requests (both must be 0), p50/p99/max latency,
server-side figures from /metrics (worker restarts, sandbox-error retries, 503s), leftover processes.

    python benchmarks/reward_service_load.py [--clients 64] [--duration 30] [--workers N] [--kill-workers]
        [--restart-service] [--workload ../shared/bench/workload.jsonl]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "helpers"))  # procs: the tests' /proc helpers

import procs

from acecoder_rl.service.client import RewardServiceClient
from acecoder_rl.service.process import ServiceProcess

DEFAULT_WORKLOAD = REPO.parent / "shared" / "bench" / "workload.jsonl"
PROMPT = ("<|im_start|>system\nYou are a careful Python programmer.<|im_end|>\n<|im_start|>user\n"
          "Solve task {id}.<|im_end|>\n<|im_start|>assistant\n")


class Tally:
    def __init__(self) -> None:
        self.requests = Counter()
        self.programs = 0
        self.wrong: list[str] = []
        self.lost: list[str] = []
        self.latency: list[float] = []
        self.latency_by_kind: dict[str, list[float]] = {"v1": [], "openrlhf": []}
        self.openrlhf_retries = 0
        self.last_answer = time.monotonic()

    def answered(self, kind: str, took: float, programs: int) -> None:
        self.latency.append(took)
        self.latency_by_kind[kind].append(took)
        self.requests[kind] += 1
        self.programs += programs
        self.last_answer = time.monotonic()


def expected_reward(row: dict) -> float:
    expected = row["expected_test_results"]
    return sum(expected) / len(expected)


async def trainer_client(client: RewardServiceClient, rows: list[dict], rng: random.Random, until: float,
                         max_batch: int, tally: Tally) -> None:
    while time.monotonic() < until:
        batch = rng.sample(rows, rng.randint(1, max_batch))
        started = time.monotonic()
        try:
            results = await client.ascore([r["completion"] for r in batch], [r["test_cases"] for r in batch])
        except Exception as exc:  # noqa: BLE001 - counted as lost
            tally.lost.append(f"v1: {type(exc).__name__}: {exc}"[:300])
            continue
        tally.answered("v1", time.monotonic() - started, len(batch))
        for row, res in zip(batch, results):
            if res.test_results != row["expected_test_results"]:
                tally.wrong.append(f"{row['id']}: got {res.test_results} ({res.status.value}: {res.error}) "
                                   f"expected {row['expected_test_results']}")


async def openrlhf_client(url: str, rows: list[dict], rng: random.Random, until: float, max_batch: int,
                          token: str | None, tally: Tally) -> None:
    """OpenRLHF 0.11's _post_request: a new session per try, raise_for_status, 5 tries, sleep 1 s."""
    target = f"{url()}/get_reward" + (f"?token={token}" if token else "")
    while time.monotonic() < until:
        batch = [rng.choice(rows)] if rng.random() < 0.5 else rng.sample(rows, rng.randint(1, max_batch))
        prompts = [PROMPT.format(id=r["id"]) for r in batch]
        labels = [r["test_cases"] if rng.random() < 0.5 else json.dumps(r["test_cases"]) for r in batch]
        payload = {"query": [p + r["completion"] + "<|im_end|>" for p, r in zip(prompts, batch)],
                   "prompts": prompts, "labels": labels}
        started = time.monotonic()
        answer, last = None, ""
        for attempt in range(5):
            try:
                async with httpx.AsyncClient(timeout=180) as http:
                    response = await http.post(target, json=payload)
                    response.raise_for_status()
                    answer = response.json()
                    break
            except Exception as exc:  # noqa: BLE001 - OpenRLHF catches everything and retries
                last = f"{type(exc).__name__}: {exc}"
                tally.openrlhf_retries += attempt < 4
            await asyncio.sleep(1)
        if answer is None:
            tally.lost.append(f"openrlhf: 5 tries failed, last: {last}"[:300])
            continue
        tally.answered("openrlhf", time.monotonic() - started, len(batch))
        for i, row in enumerate(batch):
            got = answer["rewards"][i] if i < len(answer.get("rewards", [])) else None
            if got != expected_reward(row):
                tally.wrong.append(f"{row['id']}: reward {got} expected {expected_reward(row)}")


class Faults:
    """The background fault injector (worker kills) and the service restarts."""

    def __init__(self, args: argparse.Namespace, server_args: list[str]) -> None:
        self.args = args
        self.server_args = server_args
        self.server = ServiceProcess(server_args)
        self.servers = [self.server]
        self.server.wait_ready()
        self.port = self.server.port
        self.url = self.server.url
        self.kills = 0
        self.kill_misses = 0
        self.restarts: list[dict] = []
        self.metrics_before_restart: list[dict] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def current_url(self) -> str:
        return self.url

    def killer(self) -> None:
        while not self._stop.wait(self.args.kill_interval):
            with self._lock:
                server = self.server
                targets = (procs.zygotes(server.pid) if self.args.kill_target == "zygote"
                           else procs.sandbox_roots(server.pid))
            if not targets:
                self.kill_misses += 1
                continue
            try:
                os.kill(targets[self.kills % len(targets)], signal.SIGKILL)
                self.kills += 1
            except ProcessLookupError:
                self.kill_misses += 1

    def restarter(self, started: float) -> None:
        n = self.args.restarts
        for k in range(n):
            at = started + self.args.duration * (k + 1) / (n + 1)
            if self._stop.wait(max(0.0, at - time.monotonic())):
                return
            sig = signal.SIGKILL if self.args.restart_signal == "KILL" else signal.SIGTERM
            t0 = time.monotonic()
            with self._lock:
                old = self.server
            self.metrics_before_restart.append(scrape(old.url))
            sandbox_pids = procs.descendants(old.pid)
            rc = old.stop(sig, timeout=120)
            t_down = time.monotonic()
            leftovers = live_processes(sandbox_pids)
            new = ServiceProcess(self.server_args, port=self.port)
            new.wait_ready()
            with self._lock:
                self.server = new
                self.servers.append(new)
            self.restarts.append({"signal": self.args.restart_signal, "exit": rc, "drain_s": t_down - t0,
                                  "start_s": time.monotonic() - t_down, "leftovers": leftovers})

    def stop(self) -> None:
        self._stop.set()


def server_problems(servers: list[ServiceProcess]) -> list[str]:
    """Error lines and tracebacks from the servers' logs (a dead engine thread prints one there)."""
    out = []
    for server in servers:
        lines = list(server.lines)
        for i, line in enumerate(lines):
            if line.startswith(("ERROR", "Traceback", "Exception in thread")) or "Error:" in line:
                out.append(f"[server {server.pid}] " + " | ".join(lines[i : i + 1] if not line.startswith(
                    ("Traceback", "Exception in thread")) else lines[i : i + 40]))
    return out


def stall_watchdog(tally: Tally, faults: "Faults", limit: float) -> None:
    """No answer at all for ``limit`` s: report where it hangs and give up (a hang must not last forever)."""
    while True:
        time.sleep(1.0)
        idle = time.monotonic() - tally.last_answer
        if idle > limit:
            server = faults.server
            try:
                health = httpx.get(f"{server.url}/health", timeout=5).text
            except httpx.HTTPError as exc:
                health = repr(exc)
            print(f"\nSTALLED: no answer for {idle:.0f} s after {sum(tally.requests.values())} requests; "
                  f"server health: {health}")
            print("server log tail:\n  " + "\n  ".join(list(server.lines)[-40:]))
            for line in server_problems(faults.servers):
                print("  SERVER:", line[:2000])
            print("RESULT: FAIL (stalled)")
            sys.stdout.flush()
            for s in faults.servers:
                if s.proc.poll() is None:
                    s.proc.kill()
            os._exit(2)


def _boot_ticks() -> int:
    """Now, in the clock ticks since boot that /proc/<pid>/stat gives start times in."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def stray_sandboxes(since_ticks: int) -> list[int]:
    """Live sandbox processes started since ``since_ticks`` that no server has below it any more: what a
    worker kill can strand (reparented to PID 1, so a server's descendants do not show them)."""
    stray = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[19]) >= since_ticks and b"acecoder-sandbox" in cmdline:
            stray.append(int(entry))
    return stray


def live_processes(pids: list[int], wait: float = 3.0) -> list[int]:
    """Those of ``pids`` still running after up to ``wait`` s (zombies waiting for init to reap them do
    not count: the inner bubblewrap of a sandbox is reparented to PID 1 when the server exits)."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def scrape(url: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            label = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{label}}}" if label else s.name] = s.value
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", type=Path, default=DEFAULT_WORKLOAD)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=None, help="sandbox workers [default: CPU cores]")
    ap.add_argument("--max-batch", type=int, default=8, help="programs per request: 1..this")
    ap.add_argument("--cache", action="store_true", help="keep the verdict cache on (repeats become cache hits)")
    ap.add_argument("--include-timeouts", action="store_true", help="also draw the `timeout` items (4 s per test)")
    ap.add_argument("--kill-workers", action="store_true")
    ap.add_argument("--kill-target", choices=["sandbox", "zygote"], default="sandbox")
    ap.add_argument("--kill-interval", type=float, default=1.0)
    ap.add_argument("--restart-service", action="store_true")
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--restart-signal", choices=["TERM", "KILL"], default="TERM")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stall-timeout", type=float, default=120.0,
                    help="abort (FAIL) when no request at all is answered for this long")
    args = ap.parse_args()

    rows = [json.loads(line) for line in args.workload.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if args.include_timeouts or r["kind"] != "timeout"]
    server_args = ["--log-level", "warning", "--max-batch", str(max(args.max_batch, 1))]
    if args.workers:
        server_args += ["--workers", str(args.workers)]
    if not args.cache:
        server_args += ["--cache-size", "0"]
    mode = " + ".join([m for m, on in (("kill-workers", args.kill_workers), ("restart-service", args.restart_service))
                       if on] or ["steady"])
    print(f"reward service load test: {mode}; {args.clients} clients x {args.duration:g} s; {len(rows)} programs "
          f"from {args.workload.name}; batches of 1-{args.max_batch}; cache {'on' if args.cache else 'off'}")

    started_ticks = _boot_ticks()
    faults = Faults(args, server_args)
    print(f"server {faults.url} pid {faults.server.pid} ready; workers {faults.server.wait_ready()['workers']}")
    tally = Tally()
    started = time.monotonic()
    until = started + args.duration
    threads = []
    if args.kill_workers:
        threads.append(threading.Thread(target=faults.killer, daemon=True))
    if args.restart_service:
        threads.append(threading.Thread(target=faults.restarter, args=(started,), daemon=True))
    for t in threads:
        t.start()
    threading.Thread(target=stall_watchdog, args=(tally, faults, args.stall_timeout), daemon=True).start()

    async def run_clients() -> None:
        async with RewardServiceClient(faults.url, retries=5, backoff=1.0) as client:
            jobs = []
            for i in range(args.clients):
                rng = random.Random(args.seed * 1000 + i)
                if i % 2 == 0:
                    jobs.append(trainer_client(client, rows, rng, until, args.max_batch, tally))
                else:
                    jobs.append(openrlhf_client(faults.current_url, rows, rng, until, args.max_batch, None, tally))
            await asyncio.gather(*jobs)

    try:
        asyncio.run(run_clients())
    finally:
        faults.stop()
        for t in threads:
            t.join(timeout=180)
    wall = time.monotonic() - started
    final = faults.server
    metrics = scrape(final.url)
    health = httpx.get(f"{final.url}/health", timeout=10).json()
    sandbox_pids = procs.descendants(final.pid)
    rc = final.stop(signal.SIGTERM, timeout=120)
    leftovers = live_processes(sandbox_pids)
    leftovers += [p for p in stray_sandboxes(started_ticks) if p not in leftovers]

    total = sum(tally.requests.values())
    print()
    print(f"{'wall':<34}{wall:10.1f} s")
    print(f"{'requests answered':<34}{total:10d}   (/v1/score {tally.requests['v1']}, "
          f"/get_reward {tally.requests['openrlhf']})")
    print(f"{'programs checked':<34}{tally.programs:10d}   ({tally.programs / wall:.1f} programs/s)")
    print(f"{'wrong answers':<34}{len(tally.wrong):10d}")
    print(f"{'lost requests':<34}{len(tally.lost):10d}")
    for kind, values in (("all", tally.latency), *tally.latency_by_kind.items()):
        if values:
            print(f"{'latency ' + kind:<34}p50 {pct(values, 0.5):6.3f} s   p99 {pct(values, 0.99):6.3f} s   "
                  f"max {max(values):6.3f} s")
    print(f"{'OpenRLHF-style client retries':<34}{tally.openrlhf_retries:10d}")
    if args.kill_workers:
        print(f"{'workers killed (' + args.kill_target + ')':<34}{faults.kills:10d}   "
              f"({faults.kill_misses} ticks found none alive)")
    for i, r in enumerate(faults.restarts):
        print(f"{'restart ' + str(i + 1):<34}SIG{r['signal']} -> exit {r['exit']}, drained in {r['drain_s']:.2f} s, "
              f"new server ready in {r['start_s']:.2f} s, leftover processes {len(r['leftovers'])}")
    server_figures = [metrics, *faults.metrics_before_restart]

    def total_of(prefix: str) -> float:
        return sum(v for m in server_figures for k, v in m.items() if k.startswith(prefix))

    print(f"{'server: worker restarts':<34}{total_of('acecoder_reward_worker_restarts_total'):10.0f}")
    print(f"{'server: sandbox-error re-scores':<34}{total_of('acecoder_reward_sandbox_error_retries_total'):10.0f}")
    print(f"{'server: programs executed':<34}{total_of('acecoder_reward_engine_executed_total'):10.0f}")
    refused = sum(total_of(f"acecoder_reward_requests_total{{code=503,endpoint={e}}}") for e in ("/v1/score", "/get_reward"))
    print(f"{'server: 503 answers (scoring)':<34}{refused:10.0f}")
    statuses = Counter()
    for m in server_figures:
        for k, v in m.items():
            if k.startswith("acecoder_reward_program_status_total{status=") and v:
                statuses[k.split("=", 1)[1].rstrip("}")] += int(v)
    print(f"{'server: program statuses':<34}{dict(statuses)}")
    print(f"{'final server':<34}health {health['status']}, SIGTERM -> exit {rc}, leftover processes {len(leftovers)}")
    problems = server_problems(faults.servers)
    print(f"{'server log errors':<34}{len(problems):10d}")
    for line in problems[:5]:
        print("  SERVER:", line[:1500])
    for label, items in (("WRONG", tally.wrong), ("LOST", tally.lost)):
        for line in items[:10]:
            print(f"  {label}: {line}")
    ok = not tally.wrong and not tally.lost and rc == 0 and not leftovers and total > 0
    print("RESULT:", "PASS (0 wrong, 0 lost)" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
