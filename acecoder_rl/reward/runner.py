"""Running one program's tests on a sandbox worker, with exact pass rates under timeouts and crashes.

As in AceCoder: the program is ``exec``'d once, then each test runs in turn in the same namespace. A test
that times out or kills its process counts 0, and the remaining tests run in a fresh child that re-runs the
program first (state from before is lost, as in the reference harness), so one bad test never zeroes the
others. The per-program cap bounds the total; tests it cuts off are ``not_run``.
"""
from __future__ import annotations

import signal
import time

from acecoder_rl.reward.asserts import PARENT_BUILTINS, TEST_MODULES, compile_test, test_names
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.results import ProgramOutcome, ProgramStatus, TestStatus
from acecoder_rl.reward.sandbox import protocol
from acecoder_rl.reward.sandbox.worker import ChildHandle, SandboxWorker
from acecoder_rl.reward.verdict import ChildDied, ProbeTimeout, TestEvaluator

_CHECKER_NAMES = PARENT_BUILTINS | TEST_MODULES


def _is_opaque(reply: object) -> bool:
    value = reply.get("v") if isinstance(reply, dict) else None
    return isinstance(value, list) and bool(value) and value[0] == "o"


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


class ProgramRun:
    """State of one program on one worker."""

    def __init__(self, worker: SandboxWorker, config: RewardConfig, code: str, tests: list[str]) -> None:
        self.worker = worker
        self.cfg = config
        self.code = code
        self.heavy = worker.wants_heavy(code)
        self.tests = tests
        self.names = sorted(set().union(*(test_names(t) for t in tests)) & _CHECKER_NAMES) if tests else []
        self._guard = frozenset(self.names) & PARENT_BUILTINS  # names whose redefinition changes the plans
        n = len(tests)
        self.status = [TestStatus.NOT_RUN] * n
        self.errors: list[str | None] = [None] * n
        self.program_status = ProgramStatus.OK
        self.program_error: str | None = None
        self.fallbacks = 0
        self.code_run = code
        self.memory = False
        self.bound: frozenset[str] = frozenset()
        self.died_during: int | None = None  # test index the child died in (-1: while loading)
        self.malformed = False

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
            try:
                i = self._run_in(child, i, cap)
            finally:
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
        if self.memory:
            self._note(ProgramStatus.MEMORY, "MemoryError")
        if time.monotonic() >= cap:
            self._not_run_from(0, "program time cap reached")
        return ProgramOutcome(self.program_status, self.status, self.errors, self.code_run, self.program_error,
                              self.fallbacks, time.monotonic() - started)

    def _not_run_from(self, start: int, reason: str) -> None:
        for j in range(start, len(self.tests)):
            if self.status[j] is TestStatus.NOT_RUN and self.errors[j] is None:
                self.errors[j] = reason

    def _load(self, child: ChildHandle, cap: float, then: list[str]) -> bool:
        """Run the program's top level in ``child``; False (with the reason recorded) when it cannot run.

        ``then``: probes the child evaluates right after a successful load, as one batch (saving a round
        trip), unless the program binds one of ``unless_bound`` (then the plans they came from are wrong)."""
        deadline = min(time.monotonic() + self.cfg.timeout_per_test, cap)
        message = {"op": "load", "code": self.code, "salvage": self.cfg.salvage_code, "names": self.names,
                   "then": then, "unless_bound": sorted(self._guard)}
        try:
            reply = child.request(message, deadline)
        except protocol.ChannelTimeout:
            error = f"running the program took over {self.cfg.timeout_per_test:g} s"
            self._not_run_from(0, error)
            self._note(ProgramStatus.TIMEOUT, error)
            return False
        except (protocol.ChannelClosed, protocol.ProtocolError) as exc:
            self.died_during = -1
            self.malformed |= isinstance(exc, protocol.ProtocolError)
            return False
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            kind = reply.get("kind") if isinstance(reply, dict) else None
            error = str(reply.get("error", "error"))[: self.cfg.error_chars] if isinstance(reply, dict) else "error"
            status = {"syntax": ProgramStatus.SYNTAX_ERROR, "memory": ProgramStatus.MEMORY}.get(
                kind, ProgramStatus.RUNTIME_ERROR)
            self._not_run_from(0, error)
            self._note(status, error)
            return False
        bound = reply.get("bound")
        self.bound = frozenset(n for n in bound if isinstance(n, str)) if isinstance(bound, list) else frozenset()
        if self.cfg.salvage_code and isinstance(reply.get("code"), str):
            self.code_run = reply["code"]
        return True

    def _run_in(self, child: ChildHandle, start: int, cap: float) -> int:
        """Run tests from ``start`` in ``child``; return the index of the next test to run."""
        # Plans as they are when the program redefines none of the builtins the tests use (almost always):
        # the first run of eager tests is sent with the program itself.
        plans = [compile_test(t) for t in self.tests]
        first = self._eager_run(plans, start)
        if not self._load(child, cap, [plans[k].probes[0].source for k in first]):
            return len(self.tests)
        queued: list[int] = first  # tests whose probe answers are on their way (one batch request)
        shadowed = self.bound & PARENT_BUILTINS
        if shadowed:  # the child did not run the batch (see child.Harness.serve)
            plans = [compile_test(t, frozenset(shadowed & test_names(t))) for t in self.tests]
            queued = []
        deadline = [0.0]
        evaluator = TestEvaluator(lambda message: self._ask(child, message, deadline[0]), self.cfg.error_chars)
        i = start
        while i < len(self.tests):
            now = time.monotonic()
            if now >= cap:
                return len(self.tests)
            deadline[0] = min(now + self.cfg.timeout_per_test, cap)
            evaluator.fallback = False
            try:
                if not queued:
                    queued = self._request_batch(child, plans, i)
                prefetched = None
                if queued:
                    queued.pop(0)
                    prefetched = self._ask(child, None, deadline[0])
                    if _is_opaque(prefetched):
                        queued = []  # the child stopped the batch here (see child.Harness.batch)
                status, error = evaluator.run(plans[i], self.bound, prefetched)
            except ProbeTimeout:
                self.status[i], self.errors[i] = TestStatus.TIMEOUT, f"timed out after {self.cfg.timeout_per_test:g} s"
                self._note(ProgramStatus.TIMEOUT, f"test {i} timed out")
                return i + 1
            except ChildDied as exc:
                self.died_during = i
                self.malformed |= exc.malformed
                return i + 1
            self.status[i], self.errors[i] = status, error
            self.fallbacks += evaluator.fallback
            self.memory |= evaluator.memory
            i += 1
            if status is not TestStatus.PASS and self.cfg.stop_on_first_failure:
                self._not_run_from(i, "stopped at the first failure (binary mode)")
                return len(self.tests)
        return i

    def _eager_run(self, plans: list, i: int) -> list[int]:
        """The run of eager tests starting at ``i``, when it is worth a batch (2 or more tests)."""
        j = i
        while j < len(plans) and plans[j].eager and not (self.cfg.stop_on_first_failure and j > i):
            j += 1
        return list(range(i, j)) if j - i >= 2 else []

    def _request_batch(self, child: ChildHandle, plans: list, i: int) -> list[int]:
        """Ask for the probes of the run of eager tests starting at ``i`` in one request."""
        run = self._eager_run(plans, i)
        if run:
            try:
                protocol.send(child.sock, {"op": "batch", "probes": [plans[k].probes[0].source for k in run]})
            except OSError:
                raise ChildDied() from None
        return run

    @staticmethod
    def _ask(child: ChildHandle, message: dict | None, deadline: float) -> object:
        """One answer from the child (sending ``message`` first unless it is None: a batched answer)."""
        try:
            return child.request(message, deadline) if message is not None else child.reader.recv(deadline)
        except protocol.ChannelTimeout:
            raise ProbeTimeout() from None
        except protocol.ChannelClosed:
            raise ChildDied() from None
        except protocol.ProtocolError:
            raise ChildDied(malformed=True) from None
