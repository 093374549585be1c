"""The reward service for real: `acecoder-rl serve` in a child process, a real engine, HTTP on loopback."""
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import procs
import pytest
from prometheus_client.parser import text_string_to_metric_families

from acecoder_rl.reward import RewardConfig, RewardEngine, RewardResult
from acecoder_rl.service.client import RewardServiceClient, RewardServiceError
from acecoder_rl.service.process import ServiceProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workload_small.jsonl"
PROMPT = "<|im_start|>system\nYou write Python.<|im_end|>\n<|im_start|>user\n{task}<|im_end|>\n<|im_start|>assistant\n"
TOKEN = "s3cret-token"
VOLATILE = ("duration_s", "cached")  # timing-dependent fields; everything else must be identical


def _rows():
    rows = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["kind"] != "timeout"]


ROWS = _rows()
SAMPLE = ROWS[::5][:40]


def _stable(result: RewardResult) -> dict:
    return {k: v for k, v in result.to_dict().items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def server():
    # No verdict cache, so that repeated programs run again (the worker-kill test needs that).
    with ServiceProcess(["--workers", "2", "--cache-size", "0", "--log-level", "warning"]) as proc:
        proc.wait_ready()
        yield proc


@pytest.fixture(scope="module")
def local_results():
    with RewardEngine(RewardConfig(workers=2)) as engine:
        return engine.score([r["completion"] for r in SAMPLE], [r["test_cases"] for r in SAMPLE])


@pytest.fixture(scope="module")
def limited():
    """Token required, tiny queue, tiny bodies: for the 401 / 413 / 503 paths."""
    args = ["--workers", "1", "--max-pending", "3", "--max-batch", "3", "--max-request-mb", "0.01",
            "--retry-after", "1", "--log-level", "warning"]
    with ServiceProcess(args, env={"ACECODER_REWARD_TOKEN": TOKEN}) as proc:  # the token from the environment
        proc.wait_ready()
        yield proc


def _post(url: str, body, **kw) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(url, content=content, headers={"Content-Type": "application/json", **kw.pop("headers", {})},
                      timeout=60, **kw)


# ------------------------------------------------------------------------------------------ correctness
def test_round_trip_identical_to_local_engine(server, local_results):
    health = server.wait_ready()
    assert health["status"] == "ok" and health["workers"] == 2
    with RewardServiceClient(server.url, max_batch=16) as client:  # 3 chunks, sent concurrently
        remote = client.score([r["completion"] for r in SAMPLE], [r["test_cases"] for r in SAMPLE])
        remote_async = asyncio.run(client.ascore([r["completion"] for r in SAMPLE], [r["test_cases"] for r in SAMPLE]))
    assert [_stable(r) for r in remote] == [_stable(r) for r in local_results]
    assert [_stable(r) for r in remote_async] == [_stable(r) for r in local_results]
    assert [r.test_results for r in remote] == [row["expected_test_results"] for row in SAMPLE]


def test_tests_objects_round_trip_identical_to_local_engine(server):
    """stdin/stdout and function-call tests objects through the client, as objects and as JSON strings."""
    stdin = {"inputs": ["1\n", "3\n"], "outputs": ["2", "6"]}
    call = {"inputs": [[[1, 2], 3]], "outputs": [[[4, 5]]], "fn_name": "addAll"}
    programs = ["print(int(input()) * 2)", "print(int(input()) * 3)",
                "def addAll(xs, k):\n    return [x + k for x in xs]"]
    tests = [stdin, json.dumps(stdin), call]
    with RewardEngine(RewardConfig(workers=1)) as engine:
        local = engine.score(programs, tests)
    with RewardServiceClient(server.url) as client:
        remote = client.score(programs, tests)
    assert [_stable(r) for r in remote] == [_stable(r) for r in local]
    assert [r.test_results for r in remote] == [[1, 1], [0, 0], [1]]


def test_openrlhf_shaped_requests(server, local_results):
    prompts = [PROMPT.format(task=f"Task {i}: make the tests pass.") for i in range(len(SAMPLE))]
    queries = [p + r["completion"] + "<|im_end|>" for p, r in zip(prompts, SAMPLE)]
    labels = [r["test_cases"] if i % 2 else json.dumps(r["test_cases"]) for i, r in enumerate(SAMPLE)]
    resp = _post(f"{server.url}/get_reward", {"query": queries, "prompts": prompts, "labels": labels})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rewards"] == [r.reward for r in local_results]
    assert body["scores"] == [r.score for r in local_results]
    logs = body["extra_logs"]
    assert all(isinstance(v, list) and len(v) == len(SAMPLE) for v in logs.values())
    assert logs["pass_rate"] == [r.pass_rate for r in local_results]
    # OpenRLHF 0.11: one sample per request; with more URLs than samples the other servers get empty arrays.
    one = _post(f"{server.url}/get_reward", {"query": queries[:1], "prompts": prompts[:1], "labels": labels[:1]})
    assert one.json()["rewards"] == [local_results[0].reward]
    empty = _post(f"{server.url}/get_reward", {"query": [], "prompts": [], "labels": []})
    assert empty.status_code == 200 and empty.json()["rewards"] == []


@pytest.mark.parametrize("path, body, status, words", [
    ("/v1/score", b"{not json", 400, "not valid JSON"),
    ("/v1/score", b"", 400, "empty"),
    ("/v1/score", [1, 2], 400, "JSON object"),
    ("/v1/score", {"completions": ["x"]}, 400, "missing field 'test_cases'"),
    ("/v1/score", {"completions": ["x", "y"], "test_cases": [["assert 1"]]}, 400, "same length"),
    ("/v1/score", {"completions": ["x"], "test_cases": [[]]}, 400, "test_cases[0]"),
    ("/get_reward", {"query": ["q"], "prompts": ["p"]}, 400, "missing field 'labels'"),
    ("/get_reward", {"query": "q", "prompts": ["p"], "labels": [["assert 1"]]}, 400, "must be an array"),
    ("/get_reward", {"query": ["q"], "prompts": ["p", "p"], "labels": [["assert 1"]]}, 400, "same length"),
])
def test_bad_requests_get_400_naming_the_problem(server, path, body, status, words):
    resp = _post(server.url + path, body)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/json")
    assert words in resp.json()["error"], resp.json()


def test_get_reward_scores_the_batch_and_marks_malformed_samples(server):
    """One malformed label must not cost the batch (OpenRLHF would retry it, then give every sample no
    reward): its sample gets 0 and reward_error 1, the reason is in ``errors``, the others are scored."""
    before = _scrape(server.url)
    prompt = PROMPT.format(task="Write f.")
    good = prompt + "def f():\n    return 1<|im_end|>"
    body = {"query": [good, good, 7, good], "prompts": [prompt] * 4,
            "labels": [["assert f() == 1"], ["assert 1", 7], ["assert f() == 1"], "[1, 2]"]}
    resp = _post(f"{server.url}/get_reward", body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["rewards"] == [1.0, 0.0, 0.0, 0.0] and answer["scores"] == [1.0, 0.0, 0.0, 0.0]
    assert answer["extra_logs"]["reward_error"] == [0.0, 1.0, 1.0, 1.0]
    assert answer["errors"][0] is None
    assert [e.split(" ")[0] for e in answer["errors"][1:]] == ["labels[1][1]", "query[2]", "labels[3][0]"]
    after = _scrape(server.url)
    key = ("acecoder_reward_unscored_samples_total", ())
    assert after[key] - before.get(key, 0) == 3


def test_other_errors_are_json(server):
    assert httpx.get(f"{server.url}/v1/score").status_code == 405
    missing = httpx.get(f"{server.url}/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]
    with pytest.raises(ValueError, match="test_cases"):
        RewardServiceClient(server.url).score(["x"], [[]])


def test_lone_surrogate_survives_the_round_trip(server):
    completion = "def f():\n    return '\ud800'\n"
    with RewardServiceClient(server.url) as client:
        [result] = client.score([completion], [["assert len(f()) == 1", "assert f() == 'x'"]])
    # Python cannot compile it (the engine says syntax_error); what matters here is that the answer, which
    # echoes the code and an error message holding the surrogate, is still valid JSON and intact.
    assert result.status.value == "syntax_error" and result.test_results == [0, 0]
    assert result.code == completion.strip("\n") and "surrogates not allowed" in result.error


def test_metrics_are_prometheus_text_and_count_requests(server):
    before = _scrape(server.url)
    _post(f"{server.url}/v1/score", {"completions": ["def g(): return 1"], "test_cases": [["assert g() == 1"]]})
    _post(f"{server.url}/v1/score", b"nope")
    after = _scrape(server.url)
    key_ok = ("acecoder_reward_requests_total", (("code", "200"), ("endpoint", "/v1/score")))
    key_bad = ("acecoder_reward_requests_total", (("code", "400"), ("endpoint", "/v1/score")))
    assert after[key_ok] - before.get(key_ok, 0) == 1 and after[key_bad] - before.get(key_bad, 0) == 1
    assert after[("acecoder_reward_program_status_total", (("status", "ok"),))] >= 1
    assert after[("acecoder_reward_request_duration_seconds_count", (("endpoint", "/v1/score"),))] >= 2
    for name in ("acecoder_reward_pending_programs", "acecoder_reward_inflight_requests",
                 "acecoder_reward_worker_restarts_total", "acecoder_reward_ready", "acecoder_reward_programs_total"):
        assert any(k[0] == name for k in after), name


def _scrape(url: str, **kw) -> dict:
    resp = httpx.get(f"{url}/metrics", **kw)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_port_in_use_is_a_one_line_error(server):
    proc = subprocess.run([sys.executable, "-m", "acecoder_rl", "serve", "--port", str(server.port)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("acecoder-rl: error: cannot listen on 127.0.0.1:")


# ---------------------------------------------------------------------------------- limits and auth
def test_token_required(limited):
    body = {"completions": ["def f(): return 1"], "test_cases": [["assert f() == 1"]]}
    assert _post(f"{limited.url}/v1/score", body).status_code == 401
    assert _post(f"{limited.url}/v1/score", body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert _post(f"{limited.url}/get_reward", {"query": [], "labels": []}).status_code == 401
    assert httpx.get(f"{limited.url}/metrics").status_code == 401
    assert httpx.get(f"{limited.url}/health").status_code == 200  # probes need no token
    ok = _post(f"{limited.url}/v1/score", body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["results"][0]["test_results"] == [1]
    # OpenRLHF's own client cannot set headers: the token may ride in the URL.
    assert _post(f"{limited.url}/get_reward?token={TOKEN}",
                 {"query": ["def f(): return 1"], "labels": [["assert f() == 1"]]}).json()["rewards"] == [1.0]
    with pytest.raises(RewardServiceError, match="unauthorized"):
        RewardServiceClient(limited.url, token="wrong").score(["x"], [["assert 1"]])


def test_oversized_requests_get_413(limited):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = {"completions": ["x" * 20_000], "test_cases": [["assert 1"]]}  # limit is 0.01 MB
    resp = _post(f"{limited.url}/v1/score", big, headers=auth)
    assert resp.status_code == 413 and "limit" in resp.json()["error"]
    many = {"completions": ["x = 1"] * 4, "test_cases": [["assert x == 1"]] * 4}  # --max-batch 3
    resp = _post(f"{limited.url}/v1/score", many, headers=auth)
    assert resp.status_code == 413 and "max-batch" in resp.json()["error"]


def test_backpressure_503_then_client_retry_succeeds(limited):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # 6 distinct slow programs at once on one worker with --max-pending 3: at most 3 are admitted.
    slow = [f"import time\ndef f():\n    time.sleep(0.4)\n    return {i}\n" for i in range(6)]

    async def raw():
        async with httpx.AsyncClient(timeout=60) as http:
            return await asyncio.gather(*(http.post(f"{limited.url}/v1/score", headers=auth, json={
                "completions": [code], "test_cases": [[f"assert f() == {i}"]]}) for i, code in enumerate(slow)))

    answers = asyncio.run(raw())
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 3 and codes.count(503) == 3, codes
    refused = next(r for r in answers if r.status_code == 503)
    assert refused.headers["Retry-After"] == "1" and "overloaded" in refused.json()["error"]
    # The same burst through the client: the refused ones wait Retry-After and get in.
    tests = [[f"assert f() == {i}"] for i in range(6)]
    slow2 = [code.replace("0.4", "0.3") for code in slow]

    async def through_client():
        async with RewardServiceClient(limited.url, token=TOKEN, retries=10) as client:
            return await asyncio.gather(*(client.ascore([c], [t]) for c, t in zip(slow2, tests)))

    results = asyncio.run(through_client())
    assert [r[0].test_results for r in results] == [[1]] * 6
    metrics = _scrape(limited.url, headers=auth)
    assert metrics[("acecoder_reward_rejected_requests_total", (("reason", "overloaded"),))] >= 3
    assert metrics[("acecoder_reward_pending_programs", ())] == 0


# ------------------------------------------------------------------------------------ graceful shutdown
def test_sigterm_finishes_the_inflight_request_then_exits_0():
    proc = ServiceProcess(["--workers", "1", "--log-level", "info"])
    try:
        proc.wait_ready()
        slow = "import time\ndef f(x):\n    time.sleep(1.5)\n    return x * 2\n"
        box = {}

        def call():
            try:
                with RewardServiceClient(proc.url, retries=0) as client:
                    box["result"] = client.score([slow], [["assert f(2) == 4", "assert f(3) == 7"]])[0]
            except Exception as exc:  # noqa: BLE001 - reported below
                box["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{proc.url}/health").json()["inflight_requests"] == 0:
            assert time.monotonic() < deadline, "request never arrived"
            time.sleep(0.05)
        sandbox = procs.descendants(proc.pid)
        assert sandbox, "no sandbox processes found under the server"
        staged = [arg for pid in procs.sandbox_roots(proc.pid) for arg in procs.cmdline_args(pid)
                  if "acecoder-sandbox-" in arg]
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.HTTPError):  # no longer accepting (connection refused or 503)
            httpx.get(f"{proc.url}/health", timeout=2).raise_for_status()
        caller.join(30)
        assert "error" not in box, box.get("error")
        assert box["result"].test_results == [1, 0] and box["result"].status.value == "ok"
        assert proc.proc.wait(30) == 0, proc.log()
        time.sleep(0.2)
        alive = [pid for pid in sandbox if not procs.is_zombie(pid)]
        assert alive == [], f"sandbox processes outlived the server: {alive}"
        assert staged and not any(os.path.exists(p) for p in staged)
        assert "Finished server process" in proc.log()
    finally:
        if proc.proc.poll() is None:
            proc.stop(signal.SIGKILL)


# ----------------------------------------------------------------------------------------- fault injection
def test_killing_sandbox_workers_loses_and_corrupts_nothing(server):
    """8 clients x 8 s of mixed batches while a sandbox worker is SIGKILLed every second."""
    restarts_before = httpx.get(f"{server.url}/health").json()["worker_restarts"]
    stop = threading.Event()
    kills = []

    def killer():
        while not stop.wait(1.0):
            roots = procs.sandbox_roots(server.pid)
            if roots:
                victim = roots[len(kills) % len(roots)]
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)
                except ProcessLookupError:
                    pass

    counts = {"requests": 0, "programs": 0, "wrong": [], "lost": []}

    async def client_loop(client: RewardServiceClient, seed: int, until: float):
        rng = random.Random(seed)
        while time.monotonic() < until:
            batch = rng.sample(ROWS, rng.randint(1, 6))
            try:
                results = await client.ascore([r["completion"] for r in batch], [r["test_cases"] for r in batch])
            except Exception as exc:  # noqa: BLE001 - a lost request
                counts["lost"].append(repr(exc))
                continue
            counts["requests"] += 1
            counts["programs"] += len(batch)
            for row, res in zip(batch, results):
                if res.test_results != row["expected_test_results"]:
                    counts["wrong"].append((row["id"], res.status.value, res.error))

    async def run_all():
        until = time.monotonic() + 8.0
        async with RewardServiceClient(server.url, retries=5, backoff=1.0) as client:
            await asyncio.gather(*(client_loop(client, seed, until) for seed in range(8)))

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        asyncio.run(run_all())
    finally:
        stop.set()
        thread.join()
    assert counts["lost"] == [] and counts["wrong"] == [], counts
    assert len(kills) >= 5 and counts["requests"] > 20
    assert httpx.get(f"{server.url}/health").json()["worker_restarts"] > restarts_before
