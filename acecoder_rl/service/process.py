"""Run ``acecoder-rl serve`` as a child process: the reward service a training run starts for itself
(:mod:`acecoder_rl.train.openrlhf.reward_service`), and the tests' and benchmarks' servers.

>>> with ServiceProcess(["--workers", "2"]) as server:          # doctest: +SKIP
...     server.wait_ready()
...     RewardServiceClient(server.url).score(...)

What the launcher and its ``serve`` child hand each other: the token in the environment (:data:`TOKEN_ENV`,
never on a command line), and the URL the child listens on through a file (``serve --url-file PATH``,
written by :func:`write_url_file` once the socket listens), so ``--port 0`` works without reading the
child's log, whose wording is for people.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import TextIO

import httpx

TOKEN_ENV = "ACECODER_REWARD_TOKEN"
"""The token a service requires, given to ``serve`` in its environment (never on its command line)."""
_URL_POLL_S = 0.05


def write_url_file(path: Path, url: str) -> None:
    """Write ``url`` to ``path`` atomically (a reader sees no file, or the whole URL): a temporary file in the
    same directory, renamed over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(url + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class ServiceProcess:
    """``python -m acecoder_rl serve --port 0 ARGS`` (or the given port), up to the moment it listens
    (:attr:`url` is then set; :meth:`wait_ready` waits for its engine too). Its last log lines are kept, and
    with ``log_path`` every line is also appended to that file (created with its directory), under a line
    that says when and how the service was started."""

    def __init__(self, args: list[str] = (), *, port: int = 0, env: dict | None = None,
                 start_timeout: float = 60.0, log_path: Path | None = None) -> None:
        url_dir = Path(tempfile.mkdtemp(prefix="acecoder-serve-"))
        url_file = url_dir / "url"
        argv = [sys.executable, "-m", "acecoder_rl", "serve", "--port", str(port),
                "--url-file", str(url_file), *args]
        self.lines: deque[str] = deque(maxlen=2000)
        self._log_file: TextIO | None = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        if log_path is not None:  # before the reader starts: the header comes first
            self._log_file = log_path.open("a", encoding="utf-8", errors="replace", buffering=1)
            self._log_file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} acecoder-rl serve --port {port} "
                                 f"{' '.join(args)}\n")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.url: str = self._wait_for_url(url_file, start_timeout)
        finally:
            shutil.rmtree(url_dir, ignore_errors=True)

    def _wait_for_url(self, url_file: Path, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not url_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"reward service did not start listening: {self.log()[-2000:]}")
            time.sleep(_URL_POLL_S)
        return url_file.read_text(encoding="utf-8").strip()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        try:
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                if self._log_file is not None:
                    self._log_file.write(line)
        finally:
            if self._log_file is not None:
                self._log_file.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 60.0) -> dict:
        """Poll ``/health`` until 200; return its body."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"reward service exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                r = httpx.get(f"{self.url}/health", timeout=5.0)
                if r.status_code == 200:
                    return r.json()
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"reward service not ready after {timeout} s ({last}): {self.log()[-2000:]}")

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit status (SIGKILL after ``timeout``)."""
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._reader.join(timeout=5)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()

