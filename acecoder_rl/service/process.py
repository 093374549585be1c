"""Run ``acecoder-rl serve`` as a child process (tests, benchmarks, launch scripts).

>>> with ServiceProcess(["--workers", "2"]) as server:          # doctest: +SKIP
...     server.wait_ready()
...     RewardServiceClient(server.url).score(...)
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TextIO

import httpx

_LISTENING = re.compile(r"listening on (http://\S+)")
TOKEN_ENV = "ACECODER_REWARD_TOKEN"
"""The token a service requires, given to ``serve`` in its environment (never on its command line)."""


class ServiceProcess:
    """``python -m acecoder_rl serve --port 0 ARGS`` (or the given port); its last log lines are kept, and
    with ``log_path`` every line is also appended to that file (created with its directory), under a line
    that says when and how the service was started."""

    def __init__(self, args: list[str] = (), *, port: int = 0, env: dict | None = None,
                 start_timeout: float = 60.0, log_path: Path | None = None) -> None:
        argv = [sys.executable, "-m", "acecoder_rl", "serve", "--port", str(port), *args]
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
        self._listening = threading.Event()
        self.url: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(start_timeout) or self.url is None:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"reward service did not start listening: {self.log()[-2000:]}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        try:
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                if self._log_file is not None:
                    self._log_file.write(line)
                m = _LISTENING.search(line)
                if m and self.url is None:
                    self.url = m.group(1).rstrip(";,)")
                    self._listening.set()
        finally:
            if self._log_file is not None:
                self._log_file.close()
            self._listening.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        assert self.url is not None
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

    def descendants(self) -> list[int]:
        """Pids of every live process below the server (from /proc)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read().decode(errors="replace")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

    def sandbox_roots(self) -> list[int]:
        """The server's direct children that run a sandbox worker (bubblewrap, or the zygote itself)."""
        return [pid for pid in self.descendants() if _ppid(pid) == self.pid and "zygote.py" in _cmdline(pid)]

    def zygotes(self) -> list[int]:
        """The warm fork servers themselves: Python processes running zygote.py whose parent is not one
        (the programs they fork share their command line)."""
        def is_zygote(pid: int) -> bool:
            cmd = _cmdline(pid)
            return "zygote.py" in cmd and not cmd.startswith("bwrap")

        return [pid for pid in self.descendants() if is_zygote(pid) and not is_zygote(_ppid(pid))]

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


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().decode(errors="replace").rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1
