"""The quickstart task set: twelve tiny tasks in the AceCode-87K row format that a 2-layer model learns by RL
in about a minute on a CPU, every reward coming from the real sandboxed engine.

Why it looks like this: the README's main job has to show RL *learning* (not just motion) on a fresh 2-core
machine within minutes. A randomly initialised model cannot learn Python in that time, so each task is a
choice. All twelve tasks share one pool of twelve candidate programs, one per task
(``def f(x): return x + 1``, ``def f(x): return x * 2``, ...); the built-in model (``builtin:tiny-llama``,
:mod:`acecoder_rl.train.local.builtin_model`) has one vocabulary token per candidate, so a one-token answer is
a whole program. Each task's tests are passed in full by exactly one candidate of the pool (the tests decide,
not the wording: several distractors pass some of a task's tests, which a pass-rate reward credits). An
untrained policy picks at random (binary reward about 1/12); a policy that learned which prompt wants which
program scores 1.

Rows carry the AceCode-87K fields (``id``, ``source``, ``question``, ``test_cases``, an empty ``inferences``,
``context_messages``), so they take the same path through loading, validation and the reward as real data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Dataset

SOURCE = "quickstart"


@dataclass(frozen=True)
class QuickstartTask:
    """One task: the prompt, the expression of its one correct candidate, and its asserts."""

    id: str
    question: str
    expression: str
    tests: tuple[str, ...]

    @property
    def solution(self) -> str:
        return candidate_program(self.expression)


def candidate_program(expression: str) -> str:
    """The program text of a candidate (ends with a newline, so two candidates in a row are still Python)."""
    return f"def f(x): return {expression}\n"


def _task(id_: str, wording: str, expression: str, *tests: str) -> QuickstartTask:
    question = f"Write a Python function f(x) that returns {wording}."
    return QuickstartTask(id=f"quickstart-{id_}", question=question, expression=expression,
                          tests=tuple(f"assert {t}" for t in tests))


TASKS: tuple[QuickstartTask, ...] = (
    _task("add_one", "x plus one", "x + 1", "f(0) == 1", "f(4) == 5", "f(-3) == -2"),
    _task("add_two", "x plus two", "x + 2", "f(0) == 2", "f(5) == 7", "f(-2) == 0"),
    _task("minus_one", "x minus one", "x - 1", "f(0) == -1", "f(10) == 9", "f(-1) == -2"),
    _task("ten_minus", "ten minus x", "10 - x", "f(3) == 7", "f(10) == 0", "f(-1) == 11"),
    _task("double", "x doubled", "x * 2", "f(3) == 6", "f(0) == 0", "f(-2) == -4"),
    _task("triple", "three times x", "x * 3", "f(2) == 6", "f(-1) == -3", "f(0) == 0"),
    _task("square", "the square of x", "x * x", "f(3) == 9", "f(-4) == 16", "f(1) == 1"),
    _task("cube", "the cube of x", "x ** 3", "f(2) == 8", "f(-2) == -8", "f(3) == 27"),
    _task("negate", "minus x", "-x", "f(5) == -5", "f(-2) == 2", "f(0) == 0"),
    _task("absolute", "the absolute value of x", "abs(x)", "f(-7) == 7", "f(3) == 3", "f(0) == 0"),
    _task("halve", "half of x rounded down", "x // 2", "f(7) == 3", "f(8) == 4", "f(-3) == -2"),
    _task("mod_three", "the remainder of x divided by three", "x % 3", "f(7) == 1", "f(9) == 0", "f(5) == 2"),
)

CANDIDATES: tuple[str, ...] = tuple(task.solution for task in TASKS)
"""The shared answer pool: every task chooses among these programs."""


def quickstart_rows() -> list[dict]:
    """The tasks as AceCode-87K rows (a user message holding the question; no recorded inferences)."""
    return [
        {
            "id": task.id,
            "source": SOURCE,
            "question": task.question,
            "test_cases": list(task.tests),
            "inferences": [],
            "context_messages": [{"content": task.question, "role": "user"}],
        }
        for task in TASKS
    ]


def load_quickstart() -> Dataset:
    """The quickstart rows as a ``datasets.Dataset`` with the AceCode-87K features."""
    import datasets

    from acecoder_rl.data.schema import acecode_features

    return datasets.Dataset.from_list(quickstart_rows(), features=acecode_features())

