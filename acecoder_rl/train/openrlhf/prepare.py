"""``data.prepare``: the ``acecoder-rl data prepare`` command that writes a run's data file.

An OpenRLHF run reads a prepared file (``data.path``) that the launcher ships with the job; while it is
missing, a dry run and a failed launch say how to write it instead of only that it is missing.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acecoder_rl.train.config import DataSection


def prepare_command(data: DataSection) -> str:
    """The command that writes ``data.path``: ``data.prepare`` when its ``-o`` is the path's directory, else
    a template (a recipe for another file, as after ``--dataset``, is no help)."""
    from acecoder_rl.data.prepare import JSONL_NAME, PARQUET_NAME  # here: it loads the dataset readers

    path = Path(data.path)
    if path.name not in (JSONL_NAME, PARQUET_NAME):
        return f"acecoder-rl data prepare --dataset SOURCE ... -o DIR, and make data.path DIR/{JSONL_NAME}"
    out = data.prepare and prepare_out_dir(data.prepare)
    if out and os.path.normpath(out) == os.path.normpath(path.parent):
        return f"acecoder-rl data prepare {data.prepare}"
    return f"acecoder-rl data prepare --dataset SOURCE ... -o {shlex.quote(str(path.parent))}"


def prepare_out_dir(options: str) -> str:
    """The ``-o``/``--out`` directory of ``acecoder-rl data prepare`` options; ValueError when there is not
    exactly one (or the options do not split like a shell's words)."""
    words = shlex.split(options)
    found = [value for option, value in zip(words, words[1:] + [""]) if option in ("-o", "--out")]
    found += [word.split("=", 1)[1] for word in words if word.startswith("--out=")]
    if len(found) != 1 or not found[0]:
        raise ValueError("name the output directory once, with -o DIR")
    return found[0]
