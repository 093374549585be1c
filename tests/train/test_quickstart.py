"""The quickstart, end to end: `acecoder-rl train configs/quickstart.yaml` learns (reward from about 1/12 to
near 1) with every reward from the sandboxed engine, writes its run files, and --resume continues it.

The task set is checked through the real engine first: each task's tests are passed in full by exactly one
program of the shared pool, its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from acecoder_rl.data.quickstart import CANDIDATES, TASKS, load_quickstart
from acecoder_rl.train.local.metrics import KEYS

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
STEPS = 100  # algorithm.episodes in the config: one step per pass over the 12 tasks


def test_each_task_is_solved_by_exactly_its_own_candidate():
    from acecoder_rl.reward import RewardConfig, RewardEngine

    with RewardEngine(RewardConfig(mode="binary", workers=2)) as engine:
        for task in TASKS:
            results = engine.score(list(CANDIDATES), [list(task.tests)] * len(CANDIDATES))
            winners = [program for program, result in zip(CANDIDATES, results) if result.reward == 1.0]
            assert winners == [task.solution], task.id
            assert all(r.status.value == "ok" for r in results), task.id


def test_the_pool_is_one_program_per_task_and_rows_are_valid_acecode(hf_offline):
    from acecoder_rl.data import validate_rows

    assert len(TASKS) == len(set(CANDIDATES)) == 12
    assert len({task.question for task in TASKS}) == len(TASKS)
    valid, report = validate_rows(load_quickstart(), on_error="fail")
    assert len(valid) == len(TASKS) and not report.skipped


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "acecoder_rl", "train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=540, check=False)


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, float]:
    cwd = tmp_path_factory.mktemp("quickstart")
    started = time.monotonic()
    proc = train(str(QUICKSTART), "--output-dir", "run", cwd=cwd)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd / "run", proc, elapsed


def mean_reward(lines: list[dict]) -> float:
    return sum(line["reward_mean"] for line in lines) / len(lines)


@pytest.mark.slow
def test_quickstart_learns(quickstart_run):
    run_dir, proc, elapsed = quickstart_run
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, STEPS + 1))
    first, last = mean_reward(lines[:10]), mean_reward(lines[-10:])
    assert first < 0.25, first  # a random choice among 12 programs: about 1/12
    assert last > 0.85, last
    assert all(line["reward_error"] == 0.0 for line in lines)  # every sample got the engine's verdict
    # Statuses partition the samples; nearly all are programs that ran (a stray word token is a NameError).
    assert all(abs(sum(line[k] for k in KEYS if k.startswith("status_")) - 1) < 1e-6 for line in lines)
    assert sum(line["status_ok"] for line in lines) / len(lines) > 0.95
    assert "reward curve: first 10 logged steps mean" in proc.stdout and f"over {STEPS} steps" in proc.stdout
    print(f"quickstart: {elapsed:.0f} s, reward first 10 steps {first:.3f} -> last 10 {last:.3f}")


@pytest.mark.slow
def test_quickstart_writes_its_run_files(quickstart_run):
    run_dir, _, _ = quickstart_run
    line = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert list(line) == list(KEYS)
    assert line["kl"] is not None and line["response_length_mean"] == 1.0
    assert (run_dir / "reward_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / f"checkpoint-{STEPS}" / "trainer_state.json").is_file()
    assert {"model.safetensors", "tokenizer.json"} <= {p.name for p in (run_dir / "model").iterdir()}


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(quickstart_run, tmp_path):
    run_dir, _, _ = quickstart_run
    longer = tmp_path / "longer.yaml"  # the same run with 10 more passes over the tasks
    longer.write_text(yaml.safe_dump({"extends": str(QUICKSTART), "algorithm": {"episodes": STEPS + 10}}))
    proc = train(str(longer), "--output-dir", str(run_dir), "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming {run_dir} from checkpoint-{STEPS}" in proc.stdout
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, STEPS + 11))
    assert mean_reward(lines[-10:]) > 0.85  # the trained policy went on; a restart would score about 1/12
    assert lines[STEPS]["elapsed_s"] > lines[STEPS - 1]["elapsed_s"]  # the clock continues too
    assert (run_dir / f"checkpoint-{STEPS + 10}").is_dir()
