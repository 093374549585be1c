"""`acecoder-rl report` on synthetic runs of both backends: exact table values, valid PNGs, clear errors."""

import json
import math

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.errors import AcecoderError
from acecoder_rl.report import build_report, load_runs
from acecoder_rl.reward.results import ProgramStatus

ALPHA_REWARD = [0.1, 0.3, 0.2, 0.5, 0.4, 0.6, 0.55, 0.7, 0.65, 0.8, 0.75, 0.7]
STATUSES = [status.value for status in ProgramStatus]


def alpha_rows():
    rows = []
    for step, reward in enumerate(ALPHA_REWARD, 1):
        row = {
            "step": step,
            "reward_mean": reward,
            "reward_std": 0.25,
            "pass_rate_mean": reward / 2,
            "all_pass_rate": reward / 4,
            "kl": 0.001 * step,
            "response_length_mean": 400 - 10 * step,
            "learning_rate": 1e-6,
            "elapsed_s": 30.0 * step,
            "some_new_key": "ignored",
        }
        row.update({f"status_{s}": 0.0 for s in STATUSES})
        row.update(status_ok=0.75, status_syntax_error=0.125, status_timeout=0.125)
        rows.append(row)
    return rows


# OpenRLHF 0.11 tags (TensorboardLogger.log_train: "train/" + each key of the PPO step's status dict).
def openrlhf_scalars(rewards, pass_rates):
    steps = range(1, len(rewards) + 1)
    return {
        # (TensorBoard stores float32: the values here are exact in it, except where compared approximately)
        "train/reward": list(zip(steps, rewards)),
        "train/pass_rate": list(zip(steps, pass_rates)),
        "train/all_passed": [(s, 0.25) for s in steps],
        "train/kl": [(s, 0.002 * s) for s in steps],
        "train/response_length": [(s, 512.0) for s in steps],
        "train/status_ok": [(s, 0.5) for s in steps],
        "train/status_runtime_error": [(s, 0.5) for s in steps],
        "train/actor_lr": [(s, 5e-7) for s in steps],
        "train/rollout/reward_mean": [(s, 99.0) for s in steps],  # train/reward is preferred
        "train/rollout/reward_std": [(s, 0.5) for s in steps],
        "train/rollout/response_length_mean": [(s, 1.0) for s in steps],
        "train/policy_loss": [(s, -0.1) for s in steps],
        "train/timing/generation": [(s, 12.0) for s in steps],
        "eval/eval_pass1": [(s, 0.9) for s in steps],
    }


def is_png(path):
    import matplotlib.image

    image = matplotlib.image.imread(path)
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.ndim == 3 and min(image.shape[:2]) > 200


def test_sweep_of_local_and_openrlhf_runs(tmp_path, local_run, openrlhf_run):
    alpha = local_run("alpha", alpha_rows())
    # beta: a local run that logged little (missing keys, nulls, NaN) and re-logged step 2 after a resume.
    beta = local_run(
        "beta",
        [
            {"step": 1, "reward_mean": 0.2},
            {"step": 2, "reward_mean": 0.9, "kl": None},
            "",
            {"step": 3, "reward_mean": 0.4, "pass_rate_mean": float("nan")},
            {"step": 2, "reward_mean": 0.3},
        ],
    )
    tensorboard = openrlhf_run(
        "tb", "ppo_run", openrlhf_scalars([0.0, 0.5, 1.0, 0.75], [0.0, 0.25, 0.5, 0.5])
    )
    out = tmp_path / "report"
    assert main(["report", str(alpha), str(beta), str(tensorboard), "-o", str(out), "--last", "3"]) == 0

    report = json.loads((out / "report.json").read_text())
    runs = {run["name"]: run for run in report["runs"]}
    assert list(runs) == ["alpha", "beta", "tb"] and report["last_k"] == 3

    a = runs["alpha"]
    assert (a["backend"], a["last_step"], a["logged_steps"]) == ("local", 12, 12)
    assert a["source"] == str(alpha / "metrics.jsonl")
    reward = a["metrics"]["reward"]
    assert (reward["final"], reward["final_step"], reward["best"], reward["best_step"], reward["points"]) == (
        0.7,
        12,
        0.8,
        10,
        12,
    )
    assert reward["last_k_mean"] == pytest.approx(0.75)
    passed = a["metrics"]["pass_rate"]
    assert (passed["final"], passed["best"], passed["best_step"]) == (0.35, 0.4, 10)
    assert a["metrics"]["kl"]["best"] == 0.001 and a["metrics"]["kl"]["best_step"] == 1  # lower is better
    assert a["metrics"]["status_ok"]["final"] == 0.75 and a["not_logged"] == []

    b = runs["beta"]
    assert (b["last_step"], b["logged_steps"]) == (3, 3)
    assert b["metrics"]["reward"] == {
        "final": 0.4,
        "final_step": 3,
        "best": 0.4,
        "best_step": 3,
        "last_k_mean": pytest.approx(0.3),
        "points": 3,
    }  # step 2 = 0.3, the later line
    assert "pass_rate" in b["not_logged"] and "kl" in b["not_logged"] and list(b["metrics"]) == ["reward"]

    t = runs["tb"]
    assert (t["backend"], t["last_step"], t["source"]) == ("openrlhf", 4, str(tensorboard / "ppo_run"))
    assert t["metrics"]["reward"] == {
        "final": 0.75,
        "final_step": 4,
        "best": 1.0,
        "best_step": 3,
        "last_k_mean": 0.75,
        "points": 4,
    }
    assert t["metrics"]["pass_rate"]["final"] == 0.5 and t["metrics"]["pass_rate"]["best_step"] == 3
    assert t["metrics"]["reward_std"]["final"] == 0.5 and t["metrics"]["learning_rate"][
        "final"
    ] == pytest.approx(5e-7)
    assert (
        t["metrics"]["response_length"]["final"] == 512.0 and t["metrics"]["all_pass_rate"]["final"] == 0.25
    )
    assert t["metrics"]["kl"]["final"] == pytest.approx(0.008)
    assert {m for m in t["metrics"] if m.startswith("status_")} == {"status_ok", "status_runtime_error"}

    md = (out / "report.md").read_text()
    assert "| alpha | local | 12 | 0.7000 | 0.8000 (10) | 0.7500 | 0.3500 | 0.4000 (10) | 0.3750 |" in md
    assert "| beta | local | 3 | 0.4000 | 0.4000 (3) | 0.3000 | n/a | n/a | n/a |" in md
    assert "| tb | openrlhf | 4 | 0.7500 | 1.0000 (3) | 0.7500 | 0.5000 | 0.5000 (3) | 0.4167 |" in md
    assert "![all runs](comparison.png)" in md
    for name in ("comparison.png", "run_alpha.png", "run_beta.png", "run_tb.png"):
        assert f"({name})" in md and is_png(out / name)
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.png",
        "report.json",
        "report.md",
        "run_alpha.png",
        "run_beta.png",
        "run_tb.png",
    ]


def test_one_tensorboard_dir_with_several_runs_and_the_fallback_tag(tmp_path, openrlhf_run):
    openrlhf_run("tb", "grpo", {"train/rollout/reward_mean": [(1, 0.5), (2, 0.25)]})  # no train/reward
    tensorboard = openrlhf_run("tb", "ppo", openrlhf_scalars([0.5], [0.5]))
    runs = load_runs([tensorboard])
    assert [run.name for run in runs] == ["tb/grpo", "tb/ppo"]
    assert runs[0].series["reward"].values == [0.5, 0.25] and list(runs[0].series) == ["reward"]
    report = build_report([tensorboard], tmp_path / "out", last_k=10)
    assert [run["plot"] for run in report["runs"]] == ["run_tb_grpo.png", "run_tb_ppo.png"]
    assert report["comparison_plot"] == "comparison.png" and is_png(tmp_path / "out" / "comparison.png")


def test_every_program_status_is_read_and_drawn(tmp_path, local_run):
    share = 1 / len(STATUSES)
    run = local_run("every", [{"step": step, **{f"status_{s}": share for s in STATUSES}} for step in (1, 2)])
    [loaded] = load_runs([run])
    assert {f"status_{s}" for s in STATUSES} <= set(loaded.series)
    assert main(["report", str(run), "-o", str(tmp_path / "out")]) == 0  # a colour for each status
    assert is_png(tmp_path / "out" / "run_every.png")


def test_one_run_defaults_to_a_report_folder_inside_it(local_run, capsys):
    run = local_run("solo", alpha_rows()[:3])
    assert main(["report", str(run)]) == 0
    assert is_png(run / "report" / "run_solo.png") and not (run / "report" / "comparison.png").exists()
    assert "solo: 3 steps, final reward 0.2000, final pass rate 0.1000" in capsys.readouterr().out


def test_runs_with_the_same_name_are_told_apart(tmp_path, local_run):
    first = local_run("a/run", alpha_rows()[:2])
    second = local_run("b/run", alpha_rows()[:4])
    report = build_report([first, second], tmp_path / "out")
    assert [run["name"] for run in report["runs"]] == [str(first), str(second)]
    assert len({run["plot"] for run in report["runs"]}) == 2


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"step": 1, "reward_mean": 0.5}', "{broken"], "metrics.jsonl:2: not valid JSON"),
        ([{"reward_mean": 0.5}], "metrics.jsonl:1: field 'step' must be an integer"),
        ([{"step": 1, "reward_mean": "high"}], "metrics.jsonl:1: field 'reward_mean' must be a number"),
        (["[1]"], "metrics.jsonl:1: expected a JSON object"),
        ([{"step": 1, "loss": 0.1}], "metrics.jsonl: no logged metrics"),
    ],
)
def test_bad_metrics_files_name_file_and_line(local_run, rows, message):
    run = local_run("bad", rows)
    with pytest.raises(AcecoderError, match=message.replace("[", r"\[")):
        load_runs([run])


def test_bad_run_dirs_are_one_line_errors_naming_the_path(tmp_path, local_run, openrlhf_run, capsys):
    good = local_run("good", alpha_rows()[:2])
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    not_ppo = openrlhf_run("sft", "run", {"train/gpt_loss": [(1, 2.0)]})
    cases = [
        ([str(tmp_path / "missing")], f"run directory {tmp_path / 'missing'} does not exist"),
        ([str(tmp_path / "file.txt")], f"{tmp_path / 'file.txt'} is not a directory"),
        (
            [str(tmp_path / "empty")],
            f"{tmp_path / 'empty'}: no metrics.jsonl (local backend) and no TensorBoard",
        ),
        ([str(good), str(good)], f"run directory {good} is given twice"),
        ([str(not_ppo)], f"{not_ppo / 'run'}: the event files hold none of OpenRLHF's PPO training scalars"),
    ]
    for argv, message in cases:
        assert main(["report", *argv, "-o", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert main(["report"]) == 2


def test_non_finite_and_missing_values_are_gaps(local_run):
    run = local_run("gaps", [{"step": 1, "kl": math.inf, "reward_mean": 1}, {"step": 5, "kl": 0.5}])
    [loaded] = load_runs([run])
    assert loaded.series["kl"].steps == [5] and loaded.series["reward"].steps == [1]
    assert (loaded.last_step, loaded.logged_steps) == (5, 2)
