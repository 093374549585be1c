"""Typed configuration of the reward engine, validated when built."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Literal, get_args

RewardMode = Literal["pass_rate", "binary"]
Isolation = Literal["auto", "bwrap", "process"]


@dataclass(frozen=True)
class RewardConfig:
    """How programs are run and how verdicts become rewards.

    Defaults follow AceCoder's harness: 4 s per test, 4 GiB of address space, the pass rate as the reward,
    code taken as-is (no salvaging of broken code, which is how AceCode-87K's recorded pass rates were made).
    """

    mode: RewardMode = "pass_rate"
    """``pass_rate``: passed/total (AceCoder's scripts' default); ``binary``: 1 only when every test passes."""
    all_pass_bonus: float = 0.0
    """Added to the reward when every test passes (AceCoder's later runs used +0.5)."""
    format_penalty: float = 0.0
    """Subtracted from the reward when the completion holds no code at all."""
    stop_on_first_failure: bool = False
    """Binary mode only: stop a program at its first failing test (the rest are ``not_run``)."""
    salvage_code: bool = False
    """Keep the longest syntactically valid run of lines of broken code (AceCoder's RL server, evalplus
    ``code_extract``). Off by default: it disagrees with AceCode-87K's recorded pass rates."""
    workers: int | None = None
    """Sandbox worker processes; ``None`` = 1.5 per CPU core: each worker alternates between the parent, its
    zygote and a program, so a few more workers than cores keep every core busy (measured on 2 cores, three
    alternating rounds through the API: 273-292 programs/s with 2 workers, 315-333 with 3, 294-370 with 4)."""
    timeout_per_test: float = 4.0
    """Wall-clock seconds per test (and for running the program's top level)."""
    timeout_per_program: float = 60.0
    """Cap on one program's total wall-clock time; tests not reached by then are ``not_run``."""
    memory_mb: int = 4096
    """Address-space limit per program (RLIMIT_AS)."""
    max_processes: int = 64
    """Processes + threads per program (RLIMIT_NPROC; applies when the engine runs as root)."""
    file_size_mb: int = 16
    """Largest file a program may write in its scratch directory."""
    max_open_files: int = 256
    isolation: Isolation = "auto"
    """``bwrap``: require bubblewrap namespaces; ``process``: rlimits + seccomp only; ``auto``: bwrap when it
    works here, else ``process`` with a warning naming what is missing."""
    seccomp: bool = True
    cache_size: int = 16384
    """Verdicts remembered across calls for identical (code, tests) pairs; 0 disables the cache."""
    error_chars: int = 200
    """Cap on each error text."""
    max_completion_chars: int = 1_000_000
    """Longest completion the engine reads; a longer one is ``too_large`` without being scanned (every scan
    of a completion on the host is linear in its length, and this bounds it)."""
    max_tests: int = 4096
    """Most tests in one row; a row with more is refused whole (``invalid_tests``), never scored in part."""
    max_test_chars: int = 100_000
    """Longest test source; a row holding a longer one is refused whole (``invalid_tests``)."""
    max_test_depth: int = 100
    """Deepest syntax-tree nesting of a test (CPython itself refuses ~200 nested brackets); a row holding a
    deeper test is refused whole (``invalid_tests``)."""
    judge_memory_mb: int = 1024
    """Address-space limit of the judge, the sandboxed process that runs a program's tests and makes the
    verdicts; a check that needs more fails (``check too expensive``)."""
    strict: bool = True
    """Refuse verdicts that only the program's own code can give (``==`` between two objects of classes the
    program defines, truthiness of such an object): those tests fail as unverifiable instead. On by default:
    such tests are 0 of the shared workload's 7,819 asserts (both settings agree with the ground truth on
    every test), while off, a program whose class has an always-true ``__eq__`` passes them. Turn it off for
    datasets whose tests compare objects of classes the program defines."""
    python: str | None = None
    """Interpreter that runs the sandbox; None: the one running the engine (on every node of a cluster)."""
    preimport: tuple[str, ...] = ("pytest",)
    """Extra modules imported once by each worker's heavy zygote, like the large stdlib modules there: a
    program importing one of them is forked from that zygote and pays nothing for the import (the rest are
    forked from a lean zygote, which keeps each fork cheap)."""

    def __post_init__(self) -> None:
        _check_literal(self, "mode", RewardMode)
        _check_literal(self, "isolation", Isolation)
        for name in ("timeout_per_test", "timeout_per_program"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RewardConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("memory_mb", "max_processes", "file_size_mb", "max_open_files", "error_chars",
                     "max_completion_chars", "max_tests", "max_test_chars", "max_test_depth", "judge_memory_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"RewardConfig.{name} must be a positive integer, got {value!r}")
        for name in ("memory_mb", "judge_memory_mb"):
            if getattr(self, name) < 64:
                raise ValueError(f"RewardConfig.{name}={getattr(self, name)} is too small for Python (use >= 64)")
        if self.workers is not None and (not isinstance(self.workers, int) or not 1 <= self.workers <= 256):
            raise ValueError(f"RewardConfig.workers must be between 1 and 256, got {self.workers!r}")
        if self.cache_size < 0:
            raise ValueError(f"RewardConfig.cache_size must be >= 0, got {self.cache_size!r}")
        if self.stop_on_first_failure and self.mode != "binary":
            raise ValueError("RewardConfig.stop_on_first_failure only makes sense with mode='binary': "
                             "in pass_rate mode every test counts")
        if self.format_penalty < 0 or self.all_pass_bonus < 0:
            raise ValueError("RewardConfig.format_penalty and all_pass_bonus must be >= 0")
        object.__setattr__(self, "preimport", tuple(self.preimport))

    @property
    def n_workers(self) -> int:
        return self.workers or max(2, round(1.5 * (os.cpu_count() or 1)))

    @classmethod
    def from_dict(cls, values: dict) -> "RewardConfig":
        """Build from a mapping (YAML, JSON); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown reward config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


def _check_literal(cfg: RewardConfig, name: str, literal: object) -> None:
    allowed = get_args(literal)
    if getattr(cfg, name) not in allowed:
        raise ValueError(f"RewardConfig.{name} must be one of {allowed}, got {getattr(cfg, name)!r}")
