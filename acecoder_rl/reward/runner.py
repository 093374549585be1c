"""Running one program's tests on a sandbox worker, with exact pass rates under timeouts and crashes.

As in AceCoder: the program is ``exec``'d once, then each test runs in turn in the same namespace. The
engine's process only follows: it hands the program's child to a fresh judge (``sandbox/judge.py``, its own
sandboxed process) and reads the judge's verdict stream, each verdict due within the per-test limit. A
test that times out or kills its process counts 0, and the remaining tests run in a fresh child and judge
that re-run the program first (state from before is lost, as in the reference harness), so one bad test
never zeroes the others. A judge whose verdict is late is stuck in an expensive check: it is killed, that
test fails (``check too expensive``), and the next test goes on with a fresh pair. The per-program cap
bounds the total; tests it cuts off are ``not_run``.

Every frame of the judge is checked field by field (the judge runs hostile test code): a frame that is not
exactly one of judge.py's shapes ends the judge like a crash, never a verdict.
"""

from __future__ import annotations

import signal
import time

from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward import labels
from acecoder_rl.reward.labels import PytestTests, Tests
from acecoder_rl.reward.results import ProgramOutcome, ProgramStatus, TestStatus
from acecoder_rl.reward.sandbox import protocol
from acecoder_rl.reward.sandbox.worker import JudgeHandle, SandboxWorker

# Time a judge may take beyond the per-test limit to deliver a verdict (it reports the child's timeouts
# itself, at the limit; this covers scheduling on a loaded machine).
JUDGE_GRACE_S = 1.0
_VERDICTS = {
    "pass": TestStatus.PASS,
    "fail": TestStatus.FAIL,
    "error": TestStatus.ERROR,
    "timeout": TestStatus.TIMEOUT,
}
_LOAD_FAILURES = {
    "syntax_error": ProgramStatus.SYNTAX_ERROR,
    "runtime_error": ProgramStatus.RUNTIME_ERROR,
    "memory": ProgramStatus.MEMORY,
    "timeout": ProgramStatus.TIMEOUT,
}


class _JudgeBroke(Exception):
    """The judge's stream ended in a way no honest judge ends it (garbage, or it died)."""


def _describe_end(end: dict) -> tuple[ProgramStatus, str]:
    sig = end.get("signal")
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGXCPU:
            return ProgramStatus.TIMEOUT, "killed: CPU time limit"
        if sig == signal.SIGKILL:  # not by us (we only kill after the fact): itself, or the OOM killer
            return ProgramStatus.CRASHED, "process killed by SIGKILL"
        return ProgramStatus.CRASHED, f"process died: {name}"
    code = end.get("exit")
    return ProgramStatus.CRASHED, f"process exited with code {code}" if code is not None else "process died"


def invalid_outcome(tests: Tests, reason: str, code: str = "") -> ProgramOutcome:
    """The outcome for a row whose tests are refused whole (``invalid_tests``)."""
    error = f"tests refused: {reason}"
    return ProgramOutcome(
        ProgramStatus.INVALID_TESTS, [TestStatus.NOT_RUN] * len(tests), [error] * len(tests), code, error
    )


class ProgramRun:
    """State of one program on one worker."""

    def __init__(
        self, worker: SandboxWorker, config: RewardConfig, code: str, tests: Tests, row_key: str
    ) -> None:
        self.worker = worker
        self.cfg = config
        self.code = code
        self.heavy = worker.wants_heavy(code)
        self.tests = tests
        self.row_key = row_key
        n = len(tests)
        self.status = [TestStatus.NOT_RUN] * n
        self.errors: list[str | None] = [None] * n
        self.program_status = ProgramStatus.OK
        self.program_error: str | None = None
        self.fallbacks = 0
        self.code_run = code
        self.memory = False
        self.died_during: int | None = None  # test index the child died in (-1: while loading)
        self.malformed = False
        self.refused: str | None = None

    def _note(self, status: ProgramStatus, error: str | None) -> None:
        """Record the first notable event for the program as a whole."""
        if self.program_status is ProgramStatus.OK:
            self.program_status = status
            self.program_error = error

    def run(self) -> ProgramOutcome:
        started = time.monotonic()
        cap = started + self.cfg.timeout_per_program
        i = 0
        while i < len(self.tests) and time.monotonic() < cap:
            child = self.worker.spawn(self.heavy)
            self.died_during = None
            self.malformed = False
            judge: JudgeHandle | str | None = None
            try:
                judge = self.worker.judge(child, self._request(i, cap))
                if isinstance(judge, str):
                    self.refused = judge
                    break
                i = self._follow(judge, i, cap)
            finally:
                if isinstance(judge, JudgeHandle):
                    self.worker.finish_judge(judge)
                end = self.worker.finish(child)
            if self.died_during is not None:
                status, error = _describe_end(end)
                if self.malformed:  # we killed it after it wrote garbage: its exit status says nothing
                    status, error = ProgramStatus.CRASHED, "the program's process sent a malformed answer"
                if self.died_during < 0:  # while loading: nothing can run
                    self._not_run_from(0, error)
                else:
                    self.status[self.died_during], self.errors[self.died_during] = TestStatus.ERROR, error
                self._note(status, error)
        if self.refused is not None:
            return invalid_outcome(self.tests, self.refused, self.code)
        if self.memory:
            self._note(ProgramStatus.MEMORY, "MemoryError")
        if time.monotonic() >= cap:
            self._not_run_from(0, "program time cap reached")
        return ProgramOutcome(
            self.program_status,
            self.status,
            self.errors,
            self.code_run,
            self.program_error,
            self.fallbacks,
            time.monotonic() - started,
        )

    def _request(self, start: int, cap: float) -> dict:
        cfg = self.cfg
        return {
            "op": "judge",
            "key": self.row_key,
            "tests": labels.wire(self.tests),
            "module": self.tests.module if isinstance(self.tests, PytestTests) else None,
            "code": self.code,
            "start": start,
            "timeout": cfg.timeout_per_test,
            "cap_s": max(0.0, cap - time.monotonic()),
            "stop_first": cfg.stop_on_first_failure,
            "salvage": cfg.salvage_code,
            "strict": cfg.strict,
            "error_cap": cfg.error_chars,
            "max_depth": cfg.max_test_depth,
        }

    def _not_run_from(self, start: int, reason: str) -> None:
        for j in range(start, len(self.tests)):
            if self.status[j] is TestStatus.NOT_RUN and self.errors[j] is None:
                self.errors[j] = reason

    def _follow(self, judge: JudgeHandle, start: int, cap: float) -> int:
        """Read the judge's verdicts from test ``start``; return the index of the next test to run."""
        n = len(self.tests)
        limit = self.cfg.timeout_per_test
        i = start
        loaded = False
        while True:
            deadline = min(time.monotonic() + limit, cap) + JUDGE_GRACE_S
            try:
                frame = judge.next(deadline)
                kind = frame.get("k") if isinstance(frame, dict) else None
                if kind == "load" and not loaded:
                    if not self._loaded(frame):
                        return n
                    loaded = True
                elif kind == "t" and loaded and frame.get("i") == i:
                    status = self._verdict(frame, i)
                    i += 1
                    if status is TestStatus.TIMEOUT:
                        return i
                elif kind == "died" and frame.get("i") == (i if loaded else -1):
                    self.died_during = frame["i"]
                    self.malformed = frame.get("malformed") is True
                    return n if not loaded else i + 1
                elif kind == "end" and loaded:
                    return self._ended(i)
                else:
                    raise _JudgeBroke()
            except protocol.ChannelTimeout:
                if time.monotonic() >= cap:
                    return n
                if not loaded:  # the judge only waits for the child while it loads
                    error = f"running the program took over {limit:g} s"
                    self._not_run_from(0, error)
                    self._note(ProgramStatus.TIMEOUT, error)
                    return n
                self._expensive(i, f"check too expensive: no verdict within {limit:g} s")
                return i + 1
            except (protocol.ChannelClosed, protocol.ProtocolError, _JudgeBroke):
                if not loaded:
                    self.died_during = -1
                    return n
                self._expensive(i, "check too expensive: the judge died")
                return i + 1

    def _loaded(self, frame: dict) -> bool:
        if frame.get("ok") is True:
            if self.cfg.salvage_code and isinstance(frame.get("code"), str):
                self.code_run = frame["code"]
            return True
        status = _LOAD_FAILURES.get(frame.get("status"), ProgramStatus.RUNTIME_ERROR)
        error = str(frame.get("error", "error"))[: self.cfg.error_chars]
        self._not_run_from(0, error)
        self._note(status, error)
        return False

    def _verdict(self, frame: dict, i: int) -> TestStatus:
        status = _VERDICTS.get(frame.get("s"))
        if status is None:
            raise _JudgeBroke()
        error = frame.get("e")
        if status is TestStatus.TIMEOUT:
            error = f"timed out after {self.cfg.timeout_per_test:g} s"
            self._note(ProgramStatus.TIMEOUT, f"test {i} timed out")
        self.status[i] = status
        self.errors[i] = error[: self.cfg.error_chars] if isinstance(error, str) else None
        self.fallbacks += frame.get("fb") == 1
        self.memory |= frame.get("mem") == 1
        return status

    def _ended(self, i: int) -> int:
        """The judge stopped before the last test: binary mode's first failure, or the program's cap."""
        if i < len(self.tests):
            if self.cfg.stop_on_first_failure and i > 0 and self.status[i - 1] is not TestStatus.PASS:
                self._not_run_from(i, "stopped at the first failure (binary mode)")
            else:
                self._not_run_from(i, "program time cap reached")
        return len(self.tests)

    def _expensive(self, i: int, error: str) -> None:
        self.status[i], self.errors[i] = TestStatus.ERROR, error[: self.cfg.error_chars]
