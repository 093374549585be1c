"""backend: local in run configs and on the command line: its section is strict, OpenRLHF's path rules are
not its business (OpenRLHF's keys are refused: test_backend_keys.py), and the CLI's overrides and options
reach it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from acecoder_rl.cli.app import main
from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import load_run_config

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart.yaml"


def write(tmp_path: Path, data: dict, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def extending(tmp_path: Path, **changes) -> Path:
    return write(tmp_path, {"extends": str(QUICKSTART), **changes})


def load_error(path: Path) -> str:
    with pytest.raises(AcecoderError) as info:
        load_run_config(path)
    return str(info.value)


def test_quickstart_config():
    cfg = load_run_config(QUICKSTART)
    assert (cfg.backend, cfg.model.pretrain) == ("local", "builtin:tiny-llama")
    assert cfg.data.path == "builtin:quickstart"
    assert (cfg.algorithm.name, cfg.reward.engine, cfg.local.device) == ("grpo", {"mode": "binary"}, "auto")


def test_local_section_rejects_unknown_keys(tmp_path):
    message = load_error(extending(tmp_path, local={"devise": "cpu"}))
    assert "local.devise: unknown key; known keys here: device, gradient_checkpointing" in message


def test_local_device_is_checked(tmp_path):
    assert "local.device" in load_error(extending(tmp_path, local={"device": "tpu"}))


def test_openrlhf_path_rules_do_not_apply_to_local(tmp_path):
    # Refused for OpenRLHF (a dataset name is not a file it can ship); the local backend loads it by name.
    cfg = load_run_config(extending(tmp_path, data={"path": "sample"}))
    assert cfg.data.path == "sample"


def test_dry_run_prints_the_trl_settings(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(QUICKSTART), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# quickstart: backend local, model builtin:tiny-llama, data builtin:quickstart")
    assert "trl.GRPOTrainer with trl.GRPOConfig(" in out and "    num_generations=16," in out
    assert not (tmp_path / "runs").exists()  # a dry run starts nothing


def test_model_and_dataset_override_the_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = ["--model", "org/some-model", "--dataset", "sample"]
    assert main(["train", str(QUICKSTART), "--dry-run", *overrides]) == 0
    assert "model org/some-model, data sample," in capsys.readouterr().out
    assert main(["train", str(QUICKSTART), "--dry-run", "--model", "builtin:huge"]) == 1
    err = capsys.readouterr().err
    assert "(key set in --model): model.pretrain: unknown built-in model 'builtin:huge'" in err


def test_backend_specific_options_are_usage_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(QUICKSTART), "--address", "http://head:8265"]) == 2
    assert "--address is for backend: openrlhf" in capsys.readouterr().err
    paper = REPO / "configs" / "paper" / "reinforce_pp_coder7b_base.yaml"
    assert main(["train", str(paper), "--dry-run", "--output-dir", "x"]) == 2
    assert "--output-dir is for backend: local" in capsys.readouterr().err


def test_resume_needs_an_earlier_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(QUICKSTART), "--resume"]) == 1
    assert "--resume: no earlier run of 'quickstart' in runs/" in capsys.readouterr().err
