"""Local run directories: a new run never reuses a run's files; --resume finds the newest checkpoint."""
from __future__ import annotations

import pytest

from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.local.rundir import last_checkpoint, new_run_dir, resume_run_dir


def test_new_run_dir_default_and_explicit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = new_run_dir("qs")
    assert made.parent.name == "runs" and made.is_dir()
    assert made.name.startswith("qs-") and len(made.name) == len("qs-20260101-120000")
    assert new_run_dir("qs", tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "metrics.jsonl").write_text("")
    with pytest.raises(AcecoderError, match="already holds a run: continue it with --resume"):
        new_run_dir("qs", tmp_path / "used")


def test_last_checkpoint_is_the_highest_step(tmp_path):
    assert last_checkpoint(tmp_path) is None
    for name in ("checkpoint-9", "checkpoint-10", "checkpoint-x"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-99").write_text("a file, not a checkpoint")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-10"


def test_resume_picks_the_newest_run_of_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ("qs-20260101-120000", "qs-20260102-120000", "qs-other-20260103-120000", "qsx-20260104-120000")
    for name in names:  # the last two are other configs' runs
        (tmp_path / "runs" / name / "checkpoint-5").mkdir(parents=True)
    run_dir, checkpoint = resume_run_dir("qs")
    assert run_dir.name == "qs-20260102-120000" and checkpoint == run_dir / "checkpoint-5"
    explicit = tmp_path / "runs" / "qs-20260101-120000"
    assert resume_run_dir("qs", explicit) == (explicit, explicit / "checkpoint-5")


def test_resume_errors_name_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AcecoderError, match="no earlier run of 'qs'.*--output-dir"):
        resume_run_dir("qs")
    (tmp_path / "bare").mkdir()
    with pytest.raises(AcecoderError, match="holds no checkpoint-<step> directory"):
        resume_run_dir("qs", tmp_path / "bare")
