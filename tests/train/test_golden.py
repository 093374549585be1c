"""Each file under configs/ pinned to the exact OpenRLHF command(s) it produces (tests/train/golden/).

Regenerate after an intended change, then review the diff like code:

    ACECODER_UPDATE_GOLDEN=1 python3 -m pytest -q tests/train/test_golden.py -p no:cacheprovider
"""
from __future__ import annotations

import os

from acecoder_rl.train.openrlhf.command import format_command

UPDATE = os.environ.get("ACECODER_UPDATE_GOLDEN") == "1"
REGENERATE = "ACECODER_UPDATE_GOLDEN=1 python3 -m pytest -q tests/train/test_golden.py"


def render(case) -> str:
    """The golden text: per run its name, command (one flag per line) and the environment it adds."""
    parts = [f"# {case.path.relative_to(case.path.parents[1]).as_posix()}: launched from /workspace as a Ray job"]
    for run in case.runs:
        parts.append(f"\n# run: {run.name}")
        parts.append(format_command(run.argv))
        parts.extend(f"# env {key}={value}" for key, value in sorted(run.env_vars.items()))
    return "\n".join(parts) + "\n"


def test_command_matches_golden(config_case):
    text = render(config_case)
    if UPDATE:
        config_case.golden.write_text(text, encoding="utf-8")
    assert config_case.golden.is_file(), f"no golden file for {config_case.path}: {REGENERATE}"
    expected = config_case.golden.read_text(encoding="utf-8")
    assert text == expected, f"{config_case.path} changed its OpenRLHF command; if intended: {REGENERATE}"


def test_every_golden_file_has_a_config(planned_cases, golden_dir):
    stale = sorted(p.name for p in golden_dir.glob("*.txt") if p.stem not in planned_cases)
    assert not stale, f"golden files without a config under configs/ (delete them): {stale}"
