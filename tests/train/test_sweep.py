"""Ablation grids: expansion, naming, exclusion, self-contained run files, and refused combinations."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from acecoder_rl.cli.app import main
from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import load_run_config
from acecoder_rl.train.sweep import expand_grid

REPO = Path(__file__).resolve().parents[2]
BASE = {"name": "base", "model": {"pretrain": "m"}, "data": {"path": "out/train.jsonl"},
        "algorithm": {"samples_per_prompt": 8, "rollout_batch_size": 16, "train_batch_size": 64,
                      "micro_train_batch_size": 8, "micro_rollout_batch_size": 4},
        "resources": {"nodes": 1, "gpus_per_node": 8}}


def write_grid(tmp_path: Path, **grid) -> Path:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    path = tmp_path / "grids" / "g.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"base": "../base.yaml", "name": "g", **grid}, sort_keys=False))
    return path


AXES = {"est": {"values": {"rloo": {"algorithm": {"name": "rloo"}},
                           "grpo": {"algorithm": {"name": "grpo", "kl_as_loss": True, "kl_estimator": "k3"}}}},
        "kl": {"key": "algorithm.kl_coef", "values": [0.0, 0.01]}}


def test_product_in_axis_order_with_names(tmp_path):
    runs = expand_grid(write_grid(tmp_path, axes=AXES, exclude=[{"est": "grpo", "kl": "kl0.0"}]))
    assert [r.name for r in runs] == ["g-rloo-kl0.0", "g-rloo-kl0.01", "g-grpo-kl0.01"]
    grpo = runs[-1].config
    assert (grpo.algorithm.name, grpo.algorithm.kl_coef, grpo.algorithm.kl_as_loss) == ("grpo", 0.01, True)
    assert runs[0].choices == {"est": "rloo", "kl": "kl0.0"}


def test_impossible_combination_names_run_and_key(tmp_path):
    path = write_grid(tmp_path, axes={"est": {"values": {"rloo": {"algorithm": {"name": "rloo"}}}},
                                      "n": {"key": "algorithm.samples_per_prompt", "values": [8, 1]}})
    with pytest.raises(AcecoderError) as info:
        expand_grid(path)
    message = str(info.value)
    assert message.startswith(f"{path}: run g-rloo-n1 (est=rloo, n=n1): ")
    assert "algorithm.samples_per_prompt" in message and f"key set in {path}" in message


@pytest.mark.parametrize("grid, fragment", [
    ({"axes": {"kl": {"values": [0.1]}}}, "needs 'key'"),
    ({"axes": {}}, "at least one axis"),
    ({"axes": AXES, "exclude": [{"estimator": "rloo"}]}, "unknown axis 'estimator'"),
    ({"axes": AXES, "exclude": [{"est": "ppo"}]}, "has no value 'ppo'"),
    ({"axes": AXES, "sweep": 1}, "sweep"),
])
def test_bad_grids(tmp_path, grid, fragment):
    with pytest.raises(AcecoderError, match=fragment):
        expand_grid(write_grid(tmp_path, **grid))


def test_sweep_writes_self_contained_configs(tmp_path, capsys):
    grid = write_grid(tmp_path, axes=AXES, overrides={"checkpoints": {"save_steps": 5}},
                      exclude=[{"est": "grpo", "kl": "kl0.0"}])
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "-o", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / f"g-{name}.yaml") for name in ("rloo-kl0.0", "rloo-kl0.01", "grpo-kl0.01")]
    written = out / "g-grpo-kl0.01.yaml"
    assert "extends" not in yaml.safe_load(written.read_text())
    cfg = load_run_config(written)
    assert (cfg.name, cfg.algorithm.name, cfg.checkpoints.save_steps) == ("g-grpo-kl0.01", "grpo", 5)


def test_sweep_dry_run_and_usage(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    grid = write_grid(tmp_path, axes={"kl": AXES["kl"]})
    assert main(["sweep", str(grid), "-o", str(tmp_path / "o"), "--dry-run", "--address", "http://h:8265"]) == 0
    out = capsys.readouterr().out
    assert out.count("# run g-kl") == 2 and out.count("openrlhf.cli.train_ppo_ray") == 2
    assert main(["sweep", str(grid), "--dry-run", "--launch"]) == 2


@pytest.mark.parametrize("grid", sorted((REPO / "configs" / "ablations").glob("*.yaml")), ids=lambda p: p.stem)
def test_repository_grids_expand(grid):
    runs = expand_grid(grid)
    assert len({r.name for r in runs}) == len(runs) > 1
