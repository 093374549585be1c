"""metrics.jsonl lines from TRL's log dicts, a resumed run's file, and the reward curve's summary and PNG."""
from __future__ import annotations

import json

from acecoder_rl.reward.results import ProgramStatus
from acecoder_rl.train.local.curve import curve_summary, plot_reward_curve
from acecoder_rl.train.local.metrics import KEYS, is_training_log, keep_until, metrics_line, read_metrics

STATUSES = tuple(s.value for s in ProgramStatus)  # every status the engine has, in its order


def trl_logs(reward: float, **extra) -> dict:
    """A log dict as GRPOTrainer writes it with TRLReward (the keys metrics_line reads, plus noise)."""
    logs = {"loss": 0.01, "grad_norm": 1.0, "learning_rate": 1e-3, "completions/mean_length": 2.5,
            "rewards/acecoder_reward/mean": reward, "rewards/acecoder_reward/std": 0.25, "reward": reward,
            "acecoder/pass_rate": 0.6, "acecoder/all_passed": 0.5, "acecoder/code_found": 1.0,
            "acecoder/reward_error": 0.0, "kl": 0.02, "entropy": 1.1, "epoch": 1.0}
    logs.update({f"acecoder/status_{s}": 1.0 if s == "ok" else 0.0 for s in STATUSES})
    logs.update(extra)
    return logs


def test_schema_keys_in_order():
    assert KEYS[:7] == ("step", "reward_mean", "reward_std", "pass_rate_mean", "all_pass_rate", "kl",
                        "response_length_mean")
    n = 7 + len(STATUSES)
    assert KEYS[7:n] == tuple(f"status_{s}" for s in STATUSES)
    assert KEYS[n:] == ("reward_error", "learning_rate", "elapsed_s")


def test_line_from_trl_logs():
    line = metrics_line(7, trl_logs(0.5), 12.34567)
    assert list(line) == list(KEYS)
    assert (line["step"], line["reward_mean"], line["reward_std"]) == (7, 0.5, 0.25)
    assert line["pass_rate_mean"] == 0.6
    assert (line["all_pass_rate"], line["kl"], line["response_length_mean"]) == (0.5, 0.02, 2.5)
    assert (line["status_ok"], line["status_timeout"], line["learning_rate"], line["elapsed_s"]) == (
        1.0, 0.0, 1e-3, 12.346)
    no_reference = trl_logs(0.5)
    del no_reference["kl"]
    assert metrics_line(1, no_reference, 0.0)["kl"] is None


def test_only_training_logs_count():
    assert is_training_log(trl_logs(0.1))
    assert not is_training_log({"train_runtime": 3.0, "train_loss": 0.1, "epoch": 2.0})


def test_resume_drops_lines_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "elapsed_s": s * 1.5}) + "\n" for s in range(1, 8)))
    assert keep_until(path, 5) == 7.5
    assert [line["step"] for line in read_metrics(path)] == [1, 2, 3, 4, 5]
    assert keep_until(path, 0) == 0.0 and read_metrics(path) == []
    assert read_metrics(tmp_path / "missing.jsonl") == []


def curve(rewards: list[float]) -> list[dict]:
    return [metrics_line(i + 1, trl_logs(r), float(i)) for i, r in enumerate(rewards)]


def test_summary_compares_both_ends():
    text = curve_summary(curve([0.0] * 10 + [0.5] * 20 + [1.0] * 10))
    assert text == ("reward curve: first 10 logged steps mean 0.000 -> last 10 mean 1.000 (+1.000) "
                    "over 40 steps")
    assert "first 1 logged steps mean 0.200 -> last 1 mean 0.400 (+0.200) over 3 steps" in curve_summary(
        curve([0.2, 0.3, 0.4]))
    assert curve_summary([]) == "reward curve: no training step was logged"


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "reward_curve.png"
    plot_reward_curve(curve([0.1, 0.5, 0.9]), path, "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
