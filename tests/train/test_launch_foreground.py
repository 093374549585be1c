"""`acecoder-rl train` without a Ray address: plan, dry run, and real foreground runs of a stand-in trainer."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from acecoder_rl.cli.app import main
from acecoder_rl.train.openrlhf import reward_service
from acecoder_rl.train.config import RunConfig, load_run_config
from acecoder_rl.train.openrlhf.launch import default_plugin, plan_run, resolve_address
from acecoder_rl.train.openrlhf.command import TRAINER_MODULE_ENV

REPO = Path(__file__).resolve().parents[2]
FAKE_TRAINER = REPO / "tests" / "launch" / "fake_openrlhf_trainer.py"
PROMPT = "<|im_start|>user\nWrite add(a, b).<|im_end|>\n<|im_start|>assistant\n"
SAMPLE = {"query": PROMPT + "```python\ndef add(a, b):\n    return a + b\n```<|im_end|>", "prompt": PROMPT,
          "label": ["assert add(1, 2) == 3", "assert add(2, 2) == 5"]}


@pytest.fixture
def run_dir(tmp_path, monkeypatch) -> Path:
    """A launch directory with a prepared data file, a reward plug-in, and the stand-in trainer selected."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.jsonl").write_text('{"id": "x", "context_messages": [], "test_cases": []}\n')
    (tmp_path / "plugin.py").write_text("def reward_func(queries, prompts, labels):\n    return {}\n")
    modules = tmp_path / "modules"
    modules.mkdir()
    shutil.copy(FAKE_TRAINER, modules / "fake_openrlhf_trainer.py")
    # This checkout's package, not an installed one, in the started service and the trainer's plug-in.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(modules), str(REPO)]))
    monkeypatch.setenv(TRAINER_MODULE_ENV, "fake_openrlhf_trainer")
    monkeypatch.setenv("FAKE_TRAINER_REPORT", str(tmp_path / "report.json"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(run_dir: Path, **changes) -> Path:
    data = {"name": "fg", "model": {"pretrain": "m"}, "data": {"path": "out/train.jsonl"},
            "reward": {"plugin": "plugin.py", "engine": {"mode": "binary"}},
            "algorithm": {"rollout_batch_size": 16, "train_batch_size": 32, "micro_train_batch_size": 4,
                          "micro_rollout_batch_size": 4},
            "resources": {"nodes": 1, "gpus_per_node": 8}}
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    path = run_dir / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_address_precedence(monkeypatch):
    cfg = RunConfig.model_validate({"name": "a", "model": {"pretrain": "m"}, "data": {"path": "d.jsonl"},
                                    "cluster": {"address": "http://from-config:8265"}})
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None, cfg) == "http://from-config:8265"
    monkeypatch.setenv("RAY_ADDRESS", "http://from-env:8265")
    assert resolve_address(None, cfg) == "http://from-env:8265"
    assert resolve_address("http://from-flag:8265", cfg) == "http://from-flag:8265"


def test_cluster_plan_ships_plugin_data_and_package(run_dir):
    cfg = load_run_config(write_config(run_dir))
    plan = plan_run(cfg, address="http://head:8265")
    assert plan.upload == {"openrlhf_reward.py": run_dir / "plugin.py", "data/train.jsonl": run_dir / "out" / "train.jsonl"}
    assert [p.name for p in plan.py_modules] == ["acecoder_rl"]
    assert plan.argv[plan.argv.index("--data.prompt_dataset") + 1] == "data/train.jsonl"
    assert plan.env_vars == {"ACECODER_REWARD_CONFIG": '{"mode":"binary"}'}


def test_default_plugin_is_the_source_trees(run_dir):
    cfg = load_run_config(write_config(run_dir, reward={"plugin": None}))
    plan = plan_run(cfg, address=None)
    assert plan.local_files["reward.plugin"] == REPO / "reward_fns" / "openrlhf_reward.py" == default_plugin()


def test_dry_run_prints_command_and_runtime_env_without_secrets(run_dir, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-value")
    config = write_config(run_dir, logging={"wandb": {"project": "p"}})
    assert main(["train", str(config), "--dry-run", "--address", "http://head:8265"]) == 0
    out = capsys.readouterr().out
    assert "python3 -m fake_openrlhf_trainer" in out and "--data.prompt_dataset data/train.jsonl" in out
    runtime_env = json.loads(out[out.index("# runtime env:") + len("# runtime env:"):])
    assert runtime_env["working_dir"]["openrlhf_reward.py"] == str(run_dir / "plugin.py")
    assert runtime_env["env_vars_from_your_environment"] == ["WANDB_API_KEY"]
    assert "secret-key-value" not in out
    assert not (run_dir / "report.json").exists()  # nothing ran


def test_paper_dry_run_says_how_to_write_the_missing_data_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no out/ here
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["train", str(REPO / "configs/paper/reinforce_pp_coder7b_base.yaml"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"# data.path {tmp_path / 'out/acecode87k-hard-r1/train.jsonl'} does not exist yet; write it with: "
        "acecoder-rl data prepare --dataset TIGER-Lab/AceCode-87K --subset hard --system-prompt r1 "
        "-o out/acecode87k-hard-r1"
    )
    assert lines[2].endswith("-m openrlhf.cli.train_ppo_ray \\")  # the command follows, as before
    # A recipe for another file is not shown: a data.path of one's own gets a template.
    config = str(REPO / "configs/paper/reinforce_pp_coder7b_base.yaml")
    assert main(["train", config, "--dry-run", "--dataset", "mine/train.jsonl"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(
        "write it with: acecoder-rl data prepare --dataset SOURCE ... -o mine"
    )


def test_data_prepare_must_name_its_output_directory(run_dir, capsys):
    config = write_config(run_dir, data={"prepare": "--dataset sample"})
    assert main(["train", str(config), "--dry-run"]) == 1
    assert "data.prepare: '--dataset sample': name the output directory once, with -o DIR" in \
        capsys.readouterr().err


def test_run_without_its_data_file_says_how_to_write_it(run_dir, capsys):
    config = write_config(run_dir, data={"path": "gone/train.jsonl", "prepare": "--dataset sample -o gone"})
    assert main(["train", str(config)]) == 1
    assert capsys.readouterr().err == (
        f"acecoder-rl: error: data.path: {run_dir / 'gone/train.jsonl'} not found "
        "(write it with: acecoder-rl data prepare --dataset sample -o gone)\n"
    )


def test_foreground_run_gets_the_planned_command_and_files(run_dir, capsys):
    config = write_config(run_dir)
    assert main(["train", str(config), "--resume"]) == 0
    assert f"--resume, but no checkpoint in {run_dir / 'runs' / 'fg' / 'ckpt'}" in capsys.readouterr().err
    report = json.loads((run_dir / "report.json").read_text())
    plan = plan_run(load_run_config(config), address=None, resume=True)
    assert report["argv"] == plan.argv[3:]
    assert "--ckpt.load_enable" in report["argv"]
    assert report["--data.prompt_dataset"] == {**report["--data.prompt_dataset"], "exists": True,
                                               "path": str(run_dir / "out" / "train.jsonl")}
    assert report["--reward.remote_url"]["path"] == str(run_dir / "plugin.py")
    assert report["env"] == {"ACECODER_REWARD_CONFIG": '{"mode":"binary"}'}
    assert report["argv"][report["argv"].index("--ckpt.path") + 1] == str(run_dir / "runs" / "fg" / "ckpt")


def test_failed_trainer_is_a_one_line_error(run_dir, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_TRAINER_EXIT", "3")
    assert main(["train", str(write_config(run_dir))]) == 1
    assert "trainer exited with status 3" in capsys.readouterr().err


@pytest.mark.parametrize("changes, message", [
    ({"data": {"path": "out/missing.jsonl"}}, "data.path: {run_dir}/out/missing.jsonl not found (write it with"),
    ({"reward": {"plugin": "nope.py"}}, "reward.plugin: {run_dir}/nope.py not found"),
    ({"logging": {"wandb": {"project": "p"}}}, "logging.wandb is set: export WANDB_API_KEY"),
])
def test_missing_inputs_stop_before_anything_starts(run_dir, capsys, changes, message):
    assert main(["train", str(write_config(run_dir, **changes))]) == 1
    assert message.format(run_dir=run_dir) in capsys.readouterr().err
    assert not (run_dir / "report.json").exists()


def test_reward_service_runs_for_the_length_of_the_run(run_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(run_dir, reward={"where": "service", "engine": {"mode": "binary", "timeout_per_test": 2},
                                           "service": {"start": {"host": "127.0.0.1", "port": port, "workers": 1}}})
    assert main(["train", str(config)]) == 0
    report = json.loads((run_dir / "report.json").read_text())
    assert report["env"] == {"ACECODER_REWARD_URL": f"http://127.0.0.1:{port}"}
    assert report["reward_health"] == 200  # up while the trainer ran
    with socket.socket() as s:  # and gone after it
        assert s.connect_ex(("127.0.0.1", port)) != 0
    log = (run_dir / "runs" / "fg" / "reward_service.log").read_text()  # its log is in the run's directory
    assert log.startswith("--- ") and f"listening on http://127.0.0.1:{port}" in log


def test_reward_service_beyond_loopback_gets_a_token_made_for_the_run(run_dir, monkeypatch, capsys):
    # `serve` refuses 0.0.0.0 without a token (and the run never passes --insecure): with none exported, the
    # run makes one for the service and the trainer, whose plug-in scores with it.
    monkeypatch.delenv("ACECODER_REWARD_TOKEN", raising=False)
    monkeypatch.setenv("FAKE_TRAINER_SAMPLE", json.dumps(SAMPLE))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = {"host": "0.0.0.0", "advertise_host": "127.0.0.1", "port": port, "workers": 1}
    reward = {"where": "service", "plugin": None, "engine": {"mode": "pass_rate"},
              "service": {"start": start}}
    config = write_config(run_dir, reward=reward)
    assert main(["train", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# with a token made for the run ($ACECODER_REWARD_TOKEN is not set)" in out
    assert f"# its log: {run_dir / 'runs' / 'fg' / 'reward_service.log'}; if it dies, the run is stopped" in out
    assert main(["train", str(config)]) == 0
    report = json.loads((run_dir / "report.json").read_text())
    token = report["env"].pop("ACECODER_REWARD_TOKEN")
    assert len(token) >= 32 and report["env"] == {"ACECODER_REWARD_URL": f"http://127.0.0.1:{port}"}
    assert report["reward_health"] == 200 and report["rewards"] == [0.5]
    assert report["acecoder_rl"] == str(REPO / "acecoder_rl" / "__init__.py")
    # A token the shell exports is the one both get; none is made.
    monkeypatch.setenv("ACECODER_REWARD_TOKEN", "exported-token")
    assert not plan_run(load_run_config(config), address=None).makes_token


def test_reward_service_that_cannot_start_stops_the_run(run_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(run_dir, reward={"where": "service", "service": {
            "start": {"host": "127.0.0.1", "port": port, "workers": 1, "startup_timeout_s": 60}}})
        assert main(["train", str(config)]) == 1
    assert "reward service (acecoder-rl serve --host 127.0.0.1 --workers 1 --mode binary) did not become healthy" \
        in capsys.readouterr().err
    assert not (run_dir / "report.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_config(run_dir: Path, port: int) -> Path:
    start = {"host": "127.0.0.1", "port": port, "workers": 1}
    return write_config(run_dir, reward={"where": "service", "engine": {"mode": "binary"},
                                         "service": {"start": start}})


def _terminate_the_service_once_the_trainer_runs(run_dir: Path) -> threading.Thread:
    """In the background: once the stand-in trainer has written its report (the service answered it),
    SIGTERM the `acecoder-rl serve` that the launcher (this process) started."""
    def kill() -> None:
        deadline = time.monotonic() + 120
        while not (run_dir / "report.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        for entry in os.listdir("/proc"):
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == os.getpid() and "acecoder_rl serve" in cmdline:
                os.kill(int(entry), signal.SIGTERM)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_reward_service_that_dies_stops_the_run_with_its_last_log_lines(run_dir, monkeypatch, capsys):
    monkeypatch.setattr(reward_service, "HEALTH_POLL_S", 0.2)
    monkeypatch.setenv("FAKE_TRAINER_SLEEP", "300")  # a long run: only the dead service can end it early
    killer = _terminate_the_service_once_the_trainer_runs(run_dir)
    started = time.monotonic()
    assert main(["train", str(_service_config(run_dir, _free_port()))]) == 1
    assert time.monotonic() - started < 120  # the trainer was stopped, not waited for
    killer.join()
    err = capsys.readouterr().err
    log_path = run_dir / "runs" / "fg" / "reward_service.log"
    assert "acecoder-rl: the reward service's last " in err and f"log lines ({log_path}):" in err
    assert "received SIGTERM" in err  # a line of the service's own log
    last = err.strip().splitlines()[-1]
    assert last.startswith("acecoder-rl: error: the reward service died during the run (it exited with "
                           "status 0), so the trainer was stopped; its last log line: ")
    assert last.endswith(f"(log: {log_path})")
    assert "received SIGTERM" in log_path.read_text()


def test_reward_service_that_dies_stops_the_ray_job(run_dir, monkeypatch, capsys):
    """The same through the Ray Jobs path, with a stand-in for the dashboard's client that runs no job
    (tests/launch/test_ray_cluster.py submits to a real cluster)."""
    import ray.job_submission

    class Client:
        stopped = threading.Event()
        calls: list[str] = []

        def __init__(self, address: str) -> None:
            pass

        def submit_job(self, entrypoint: str, runtime_env: dict, submission_id: str) -> str:
            (run_dir / "report.json").write_text("{}")  # "the job is running"
            return submission_id

        async def tail_job_logs(self, job_id: str):
            while not self.stopped.is_set():
                await asyncio.sleep(0.05)
            yield "job stopped\n"

        def stop_job(self, job_id: str) -> bool:
            self.calls.append(f"stop {job_id}")
            self.stopped.set()
            return True

        def get_job_status(self, job_id: str):
            return ray.job_submission.JobStatus.STOPPED

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", Client)
    monkeypatch.setattr(reward_service, "HEALTH_POLL_S", 0.2)
    killer = _terminate_the_service_once_the_trainer_runs(run_dir)
    assert main(["train", str(_service_config(run_dir, _free_port())), "--address", "http://head:8265"]) == 1
    killer.join()
    assert len(Client.calls) == 1 and Client.calls[0].startswith("stop fg-")
    err = capsys.readouterr().err
    assert "received SIGTERM" in err
    assert "acecoder-rl: error: the reward service died during the run (it exited with status 0)" in err


def test_a_service_whose_health_fails_is_declared_dead_after_unhealthy_after_s(monkeypatch):
    """A live process that stops answering /health 200 (stalled, wedged) counts as dead too, but only
    after ``unhealthy_after_s`` of failures in a row."""
    from acecoder_rl.train.config import ServiceStart
    from acecoder_rl.train.openrlhf.reward_service import StartedService

    monkeypatch.setattr(reward_service, "HEALTH_POLL_S", 0.05)
    service = StartedService(ServiceStart(unhealthy_after_s=0.5), {}, "http://unused")
    alive = SimpleNamespace(proc=SimpleNamespace(poll=lambda: None), url=f"http://127.0.0.1:{_free_port()}")
    stops = []
    started = time.monotonic()
    service._watch(alive, lambda: stops.append(time.monotonic() - started))
    assert len(stops) == 1 and 0.5 <= stops[0] < 5
    assert service.death.startswith("its /health has not answered 200 for 0.5 s (ConnectError")


def test_serve_args_carry_the_engine_settings():
    from acecoder_rl.train.config import ServiceStart
    from acecoder_rl.train.openrlhf.reward_service import advertised_url, serve_args

    start = ServiceStart(host="0.0.0.0", port=5001, workers=8)
    engine = {"mode": "binary", "all_pass_bonus": 0.5, "salvage_code": False, "timeout_per_test": 2.0}
    assert serve_args(start, engine) == ["--host", "0.0.0.0", "--workers", "8", "--all-pass-bonus", "0.5",
                                         "--mode", "binary", "--no-salvage", "--timeout-per-test", "2.0"]
    assert advertised_url(start, "head-1") == "http://head-1:5001"
    assert advertised_url(ServiceStart(host="10.0.0.5"), "head-1") == "http://10.0.0.5:5000"
    assert advertised_url(ServiceStart(advertise_host="rm.internal"), "head-1") == "http://rm.internal:5000"


def test_unreachable_cluster_is_a_one_line_error(run_dir, capsys):
    assert main(["train", str(write_config(run_dir)), "--address", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("acecoder-rl: error: cannot reach the Ray dashboard at http://127.0.0.1:1") and err.count("\n") == 1
