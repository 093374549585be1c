"""A host that is not loopback needs a token or an explicit --insecure: the real `acecoder-rl serve`."""
import subprocess
import sys

import httpx
import pytest

from acecoder_rl.errors import UsageError
from acecoder_rl.reward import RewardConfig
from acecoder_rl.service.app import ServiceConfig, is_loopback
from acecoder_rl.service.process import ServiceProcess
from acecoder_rl.service.server import serve

TOKEN_ENV = "ACECODER_REWARD_TOKEN"
BODY = {"completions": ["def g(): return 1"], "test_cases": [["assert g() == 1"]]}


@pytest.fixture(autouse=True)
def _no_token_exported(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)


def _score(port: int, **kw) -> httpx.Response:
    # The wildcard binds every interface; loopback is one of them.
    return httpx.post(f"http://127.0.0.1:{port}/v1/score", json=BODY, timeout=60, **kw)


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("::ffff:10.0.0.5", False), ("head-1", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5"])
def test_non_loopback_without_token_is_refused(host):
    proc = subprocess.run([sys.executable, "-m", "acecoder_rl", "serve", "--host", host, "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"acecoder-rl: error: refusing to listen on {host} without a token")
    assert "--token" in line and f"${TOKEN_ENV}" in line and "--insecure" in line


def test_python_entry_point_refuses_before_binding():
    with pytest.raises(UsageError, match=r"refusing to listen on 0\.0\.0\.0 without a token.*"
                                         r"ServiceConfig\.token.*insecure=True"):
        serve(RewardConfig(workers=1), ServiceConfig(host="0.0.0.0", port=0))


def test_non_loopback_with_token_from_the_environment_starts():
    args = ["--host", "0.0.0.0", "--workers", "1"]
    with ServiceProcess(args, env={TOKEN_ENV: "t0ken"}) as server:
        server.wait_ready()
        assert _score(server.port).status_code == 401
        authorized = _score(server.port, headers={"Authorization": "Bearer t0ken"})
        assert authorized.json()["results"][0]["reward"] == 1
        assert "token required" in server.log() and "without a token" not in server.log()


def test_non_loopback_with_insecure_starts_and_warns():
    with ServiceProcess(["--host", "0.0.0.0", "--insecure", "--workers", "1"]) as server:
        server.wait_ready()
        assert _score(server.port).json()["results"][0]["reward"] == 1
        assert f"WARNING:  listening on 0.0.0.0 port {server.port} without a token (insecure)" in server.log()


def test_loopback_default_needs_neither():
    with ServiceProcess(["--workers", "1"]) as server:
        server.wait_ready()
        assert server.url.startswith("http://127.0.0.1:")
        assert _score(server.port).json()["results"][0]["reward"] == 1
        assert "without a token" not in server.log()
