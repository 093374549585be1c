"""How a launcher and its `acecoder-rl serve` child hand over the URL: a file written whole once the socket
listens (`--url-file`), never a log line to match."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.service.process import ServiceProcess, write_url_file


def test_serve_writes_the_url_it_listens_on_whole_once_listening(tmp_path):
    url_file = tmp_path / "url"
    proc = subprocess.Popen([sys.executable, "-m", "acecoder_rl", "serve", "--port", "0", "--workers", "1",
                             "--log-level", "warning", "--url-file", str(url_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "serve never wrote its URL"
            time.sleep(0.05)
        text = url_file.read_text()
        url = text.strip()
        assert text == url + "\n" and url.startswith("http://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
        assert [p.name for p in tmp_path.iterdir()] == ["url"]  # renamed into place: no temporary file left
        # It listens from the moment the file exists: /health answers (503 while the engine starts).
        assert httpx.get(f"{url}/health", timeout=10).status_code in (200, 503)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_url_file_needs_a_directory_to_be_written_in(tmp_path, capsys):
    assert main(["serve", "--url-file", str(tmp_path / "missing" / "url")]) == 2
    assert "--url-file" in capsys.readouterr().err


def test_write_url_file_replaces_an_older_url(tmp_path):
    path = tmp_path / "url"
    write_url_file(path, "http://127.0.0.1:1")
    write_url_file(path, "http://127.0.0.1:2")
    assert path.read_text() == "http://127.0.0.1:2\n" and [p.name for p in tmp_path.iterdir()] == ["url"]


def test_a_service_that_cannot_listen_fails_at_once_with_its_reason():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="did not start listening.*cannot listen on 127.0.0.1"):
            ServiceProcess(["--workers", "1"], port=taken.getsockname()[1], start_timeout=60)
        assert time.monotonic() - started < 30  # the child's exit ends the wait, not the timeout


def test_the_url_is_the_servers_own(tmp_path):
    log = tmp_path / "service.log"
    with ServiceProcess(["--workers", "1", "--log-level", "warning"], log_path=log) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.wait_ready()["status"] == "ok"
    assert log.read_text().startswith("--- ") and f"listening on {server.url}" in log.read_text()
