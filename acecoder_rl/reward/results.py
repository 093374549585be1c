"""The closed set of verdicts and the result record every path to the reward returns.

Kept apart on purpose (style note: "a crashed child is not a timeout, a sandbox fault is not wrong code"):
per-test verdicts say what happened to one assert, the program status says what happened to the program as
a whole, and ``SANDBOX_ERROR`` marks our own infrastructure failing, never the policy's code.

The per-sample metrics every trainer reports (:data:`SAMPLE_METRICS`, :func:`sample_metrics`) are defined
here too, next to the result they are computed from: the reward service's ``extra_logs``, the OpenRLHF, TRL
and verl plug-ins, the local backend's ``metrics.jsonl`` and ``acecoder-rl report`` all use these names.
"""
from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field, fields


class TestStatus(str, enum.Enum):
    """Verdict of one test."""

    __test__ = False  # not a pytest test class

    PASS = "pass"  # the assert held
    FAIL = "fail"  # the assert evaluated to a false value
    ERROR = "error"  # evaluating it raised (in the program or in the check), or the child died during it
    TIMEOUT = "timeout"  # it ran past the per-test limit and was killed
    NOT_RUN = "not_run"  # never reached (program failed to load, binary mode stopped early, program cap)


class ProgramStatus(str, enum.Enum):
    """What happened to the program as a whole."""

    OK = "ok"  # it loaded and every test got a verdict of its own (pass, fail or error)
    NO_CODE = "no_code"  # nothing that looks like code in the completion
    SYNTAX_ERROR = "syntax_error"  # the extracted code does not compile
    RUNTIME_ERROR = "runtime_error"  # running the program's top level raised (SystemExit included)
    TIMEOUT = "timeout"  # loading it, or at least one test, ran past its limit
    CRASHED = "crashed"  # the process died (segfault, os._exit, killed itself) while loading or testing
    MEMORY = "memory"  # it ran out of its memory limit
    SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed; not the program's fault
    TOO_LARGE = "too_large"  # the completion is longer than RewardConfig.max_completion_chars: not scanned
    INVALID_TESTS = "invalid_tests"  # the row's tests are past a documented limit (see RewardConfig): all refused


@dataclass
class ProgramOutcome:
    """Verdicts of one program on its tests: what the sandbox established, before any reward shaping."""

    status: ProgramStatus
    test_status: list[TestStatus]
    test_errors: list[str | None]
    code: str
    error: str | None = None
    fallback_tests: int = 0  # tests whose comparison had to run inside the child (logged, see verdict.py)
    duration_s: float = 0.0

    @property
    def test_results(self) -> list[int]:
        return [1 if s is TestStatus.PASS else 0 for s in self.test_status]

    @property
    def pass_rate(self) -> float:
        return sum(self.test_results) / len(self.test_status) if self.test_status else 0.0


@dataclass
class RewardResult:
    """One scored completion. ``score`` is in [0, 1]; ``reward`` is the shaped number the trainer uses."""

    reward: float
    score: float
    pass_rate: float
    test_results: list[int]
    test_status: list[TestStatus]
    test_errors: list[str | None]
    status: ProgramStatus
    code: str
    error: str | None = None
    fallback_tests: int = 0
    duration_s: float = 0.0
    cached: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def all_passed(self) -> bool:
        return bool(self.test_results) and all(self.test_results)

    def to_dict(self) -> dict:
        """JSON-ready dict (enums as their string values), sharing nothing mutable with the result.

        Built field by field: ``dataclasses.asdict`` deep-copies recursively and cost the CLI more than
        writing the line itself."""
        out = {name: getattr(self, name) for name in _RESULT_FIELDS}
        out["status"] = self.status.value
        out["test_status"] = [s.value for s in self.test_status]
        out["test_results"] = list(self.test_results)
        out["test_errors"] = list(self.test_errors)
        if self.extra:
            out["extra"] = copy.deepcopy(self.extra)
        else:
            del out["extra"]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "RewardResult":
        """Inverse of :meth:`to_dict` (for results that crossed a process or network boundary).

        Unknown keys are an error, so a client and a server of different versions fail loudly."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RewardResult field(s): {', '.join(unknown)}")
        values = dict(data)
        values["status"] = ProgramStatus(values["status"])
        values["test_status"] = [TestStatus(s) for s in values["test_status"]]
        return cls(**values)


_RESULT_FIELDS = tuple(f.name for f in fields(RewardResult))


def status_metric(status: ProgramStatus) -> str:
    """The per-sample metric that is 1 for a sample whose program ended with ``status``, else 0: its mean
    over a training step is the fraction of the step's samples with that status."""
    return f"status_{status.value}"


STATUS_METRICS: tuple[str, ...] = tuple(status_metric(status) for status in ProgramStatus)
"""``status_ok``, ``status_no_code``, ...: one per :class:`ProgramStatus`, in its order."""

SAMPLE_METRICS: tuple[str, ...] = (
    "pass_rate", "all_passed", "code_found", "reward_latency_s", "program_s", *STATUS_METRICS, "reward_error",
)
"""The numbers every path to the reward reports for each sample, under these exact names and in this order,
so that a run's metrics do not change when its reward moves between a plug-in and the service: their mean
over a step is the step's pass rate, all-pass fraction, fraction with code found, reward latency, program
time, status fractions and fraction of samples that could not be scored (``reward_error``)."""


def metrics_of(result: RewardResult | None, latency_s: float) -> dict[str, float]:
    """One sample's :data:`SAMPLE_METRICS`. ``None`` is a sample that could not be scored: 0 everywhere but
    its latency and ``reward_error`` (1)."""
    sample = dict.fromkeys(SAMPLE_METRICS, 0.0)
    if result is None:
        sample["reward_error"] = 1.0
    else:
        sample["pass_rate"] = float(result.pass_rate)
        sample["all_passed"] = 1.0 if result.all_passed else 0.0
        sample["code_found"] = 0.0 if result.status is ProgramStatus.NO_CODE else 1.0
        sample["program_s"] = round(float(result.duration_s), 6)
        sample[status_metric(result.status)] = 1.0
    sample["reward_latency_s"] = round(float(latency_s), 6)
    return sample
