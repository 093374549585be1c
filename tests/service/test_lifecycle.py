"""Start-up and failure paths of the service, in process (ASGI transport, the app's lifespan, a real engine)."""
import asyncio
import contextlib
import threading

import httpx
import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward import RewardConfig, RewardEngine, RewardScorer, ServedScorer
from acecoder_rl.service import RewardServiceClient, ServiceConfig, create_app, response_from_query


@contextlib.asynccontextmanager
async def running(app):
    """The app with its lifespan entered, and an HTTP client talking to it in process."""
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as http:
        yield http


async def wait_for(http, status: str, timeout: float = 30.0) -> dict:
    for _ in range(int(timeout / 0.05)):
        body = (await http.get("/health")).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"health never became {status!r}: {body}")


BODY = {"completions": ["def f(x):\n    return x\n"], "test_cases": [["assert f(1) == 1", "assert f(1) == 2"]]}


def test_starting_then_ready_then_closed():
    release = threading.Event()
    engines = []

    def factory():
        release.wait(30)
        engines.append(RewardEngine(RewardConfig(workers=1)))
        return engines[-1]

    app = create_app(RewardConfig(workers=1), ServiceConfig(), engine_factory=factory)

    async def scenario():
        async with running(app) as http:
            starting = await http.get("/health")
            assert starting.status_code == 503 and starting.json()["status"] == "starting"
            refused = await http.post("/v1/score", json=BODY)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert "starting" in refused.json()["error"]
            release.set()
            await wait_for(http, "ok")
            ok = await http.post("/v1/score", json=BODY)
            assert ok.status_code == 200 and ok.json()["results"][0]["test_results"] == [1, 0]

    asyncio.run(scenario())
    assert app.state.service.phase == "stopped"
    with pytest.raises(RuntimeError, match="closed"):  # the lifespan shutdown closed the engine
        engines[0].score(["x = 1"], [["assert x == 1"]])


def test_engine_that_cannot_start_is_reported():
    def factory():
        raise AcecoderError("reward sandbox failed to start: no luck")

    app = create_app(RewardConfig(workers=1), ServiceConfig(), engine_factory=factory)

    async def scenario():
        async with running(app) as http:
            body = await wait_for(http, "failed")
            assert "no luck" in body["error"]
            assert (await http.post("/v1/score", json=BODY)).status_code == 503

    asyncio.run(scenario())


def test_serve_raises_when_the_sandbox_cannot_start(monkeypatch):
    import acecoder_rl.reward.engine as engine_module
    from acecoder_rl.service.server import serve

    def broken(config):
        raise AcecoderError("reward sandbox failed to start: simulated")

    monkeypatch.setattr(engine_module, "RewardEngine", broken)
    with pytest.raises(AcecoderError, match="simulated"):
        serve(RewardConfig(workers=1), ServiceConfig(port=0, log_level="warning"))


def test_cli_usage_errors_exit_2(capsys):
    assert main(["serve", "--max-pending", "10", "--max-batch", "20"]) == 2
    assert "max_batch (20) cannot exceed max_pending (10)" in capsys.readouterr().err
    assert main(["serve", "--token", " "]) == 2


def test_public_api():
    client = RewardServiceClient("127.0.0.1:1")
    assert isinstance(client, RewardScorer)
    assert not isinstance(client, ServedScorer)  # a client has no workers of its own to serve with
    client.close()
    with RewardEngine(RewardConfig(workers=1)) as engine:
        assert isinstance(engine, ServedScorer)
        assert engine.features["isolation"] in ("bwrap", "process") and engine.stats.get("executed", 0) == 0
    assert response_from_query("p" + "x = 1", "p") == "x = 1"


class _StuckEngine:
    """Stands in for an engine whose worker threads died: its programs never finish."""

    stats = {"executed": 0}
    worker_restarts = 0
    features = {"isolation": "none"}

    async def ascore(self, completions, test_cases):
        await asyncio.Event().wait()

    def close(self) -> None:
        pass


def test_stalled_engine_turns_health_red():
    app = create_app(RewardConfig(workers=1), ServiceConfig(stall_after_s=0.5), engine_factory=_StuckEngine)

    async def scenario():
        async with running(app) as http:
            await wait_for(http, "ok")
            hung = asyncio.create_task(http.post("/v1/score", json=BODY))
            body = await wait_for(http, "stalled", timeout=10)
            assert body["pending_programs"] == 1
            assert (await http.get("/health")).status_code == 503
            refused = await http.post("/v1/score", json=BODY)
            assert refused.status_code == 503 and "stalled" in refused.json()["error"]
            hung.cancel()
            await asyncio.gather(hung, return_exceptions=True)

    asyncio.run(scenario())
