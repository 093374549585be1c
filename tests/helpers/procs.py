"""Process-tree inspection from ``/proc`` for tests and benchmarks: what a server started below it, which of
those are sandbox workers, and whether any outlived it.

Importable as ``procs`` (``pythonpath`` in pyproject.toml puts ``tests/helpers`` on the path of the test
session; a benchmark script inserts it itself). Linux only, like the sandbox.
"""
from __future__ import annotations

import os
from pathlib import Path


def ppid(pid: int) -> int:
    """The parent of ``pid``; -1 when it is gone or unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def cmdline_args(pid: int) -> list[str]:
    """The argv of ``pid`` (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def cmdline(pid: int) -> str:
    """The command line of ``pid`` as one string ("" when it is gone)."""
    return " ".join(cmdline_args(pid)).strip()


def is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie, or gone altogether)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def descendants(root: int) -> list[int]:
    """Pids of every live process below ``root``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            children.setdefault(ppid(int(entry)), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def sandbox_roots(server: int) -> list[int]:
    """The server's direct children that run a sandbox worker (bubblewrap, or the zygote itself)."""
    return [pid for pid in descendants(server) if ppid(pid) == server and "zygote.py" in cmdline(pid)]


def zygotes(server: int) -> list[int]:
    """The warm fork servers below ``server``: Python processes running zygote.py whose parent is not one
    (the programs they fork share their command line)."""

    def is_zygote(pid: int) -> bool:
        command = cmdline(pid)
        return "zygote.py" in command and not command.startswith("bwrap")

    return [pid for pid in descendants(server) if is_zygote(pid) and not is_zygote(ppid(pid))]
