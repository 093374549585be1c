"""Read a file of ready-made completions (``--completions``) and match it to the benchmark's problems.

One JSON object per line and per problem: ``id`` (HumanEval's ``task_id`` is accepted too) and either
``completion`` (a string: one sample) or ``completions`` (a list of strings: n samples). Every problem must
have the same number of samples, so that pass@k means the same thing for all of them.

A completion is scored as a whole program, exactly as the reward engine scores a policy's answer (code is
taken from a fenced block when there is one). HumanEval-style completions that hold only a function body
must have the prompt put in front of them first.

Strict by default: an unknown id, an id given twice, or a benchmark problem with no line is an error naming
the file and line (or the missing ids). ``allow_partial`` evaluates only the problems the file covers.
"""

from __future__ import annotations

from pathlib import Path

from acecoder_rl.errors import AcecoderError
from acecoder_rl.jsonl import read_objects

_SHOWN_IDS = 5


def read_completions(
    path: Path, known_ids: list[str], *, allow_partial: bool = False
) -> dict[str, list[str]]:
    """Problem id -> its completions, for the ids in ``known_ids`` that the file covers (file order)."""
    known = set(known_ids)
    found: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    samples: int | None = None
    for lineno, row in read_objects(path):
        where = f"{path}:{lineno}"
        problem_id, completions = _parse_row(row, where)
        if problem_id not in known:
            raise AcecoderError(f"{where}: id {problem_id!r} is not a problem of this benchmark")
        if problem_id in found:
            raise AcecoderError(
                f"{where}: id {problem_id!r} already given on line {first_line[problem_id]}"
            )
        if samples is None:
            samples = len(completions)
        elif len(completions) != samples:
            raise AcecoderError(
                f"{where}: {len(completions)} completion(s) for {problem_id!r}, but earlier "
                f"lines have {samples}; every problem needs the same number"
            )
        found[problem_id] = completions
        first_line[problem_id] = lineno
    if not found:
        raise AcecoderError(f"{path}: no completions in the file")
    missing = [problem_id for problem_id in known_ids if problem_id not in found]
    if missing and not allow_partial:
        shown = ", ".join(missing[:_SHOWN_IDS]) + (", ..." if len(missing) > _SHOWN_IDS else "")
        raise AcecoderError(
            f"{path}: no completions for {len(missing)} of {len(known_ids)} problems ({shown}); "
            "pass --allow-partial to evaluate only the problems the file covers"
        )
    return found


def _parse_row(row: dict, where: str) -> tuple[str, list[str]]:
    ids = [row[key] for key in ("id", "task_id") if key in row]
    if not ids:
        raise AcecoderError(f"{where}: no 'id' (or 'task_id') field")
    if not all(isinstance(value, str) for value in ids):
        raise AcecoderError(f"{where}: field 'id' must be a string")
    if len(set(ids)) > 1:
        raise AcecoderError(f"{where}: 'id' {ids[0]!r} and 'task_id' {ids[1]!r} disagree")
    problem_id = ids[0]
    if ("completion" in row) == ("completions" in row):
        raise AcecoderError(
            f"{where}: give exactly one of 'completion' (a string) and 'completions' (a list)"
        )
    if "completion" in row:
        if not isinstance(row["completion"], str):
            raise AcecoderError(f"{where}: field 'completion' must be a string")
        return problem_id, [row["completion"]]
    completions = row["completions"]
    if (
        not isinstance(completions, list)
        or not completions
        or not all(isinstance(c, str) for c in completions)
    ):
        raise AcecoderError(f"{where}: field 'completions' must be a non-empty list of strings")
    return problem_id, completions
