"""A real two-node Ray cluster on this machine, started by launch/ray_head.sh and launch/ray_worker.sh, and runs
submitted to it by `acecoder-rl train --address` exactly as on a GPU cluster.

Only the trainer differs: ``ACECODER_OPENRLHF_MODULE`` selects ``fake_openrlhf_trainer`` (this directory),
put on the nodes' ``PYTHONPATH`` when Ray starts, which records the arguments, working directory and files
it got, and scores one sample with the shipped reward plug-in (reward_fns/openrlhf_reward.py) the way
OpenRLHF would. Each node gets 1 CPU and its own ports, so the cluster can coexist with other Ray instances on the
machine. Tear-down ends exactly the processes the two scripts started: each script runs in a new session,
Ray's daemons stay in that process group, and the group is signalled by its id (``ray stop --force``
would stop every Ray instance on the machine, including ones this test did not start).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from acecoder_rl.cli.app import main
from acecoder_rl.train.config import load_run_config
from acecoder_rl.train.openrlhf.launch import plan_run
from acecoder_rl.train.openrlhf.command import TRAINER_MODULE_ENV

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 120
# One rollout sample as OpenRLHF hands it to the reward: chat-templated prompt + response, and the row's tests.
PROMPT = "<|im_start|>user\nWrite add(a, b).<|im_end|>\n<|im_start|>assistant\n"
SAMPLE = {"query": PROMPT + "```python\ndef add(a, b):\n    return a + b\n```<|im_end|>", "prompt": PROMPT,
          "label": ["assert add(1, 2) == 3", "assert add(2, 2) == 5"]}

pytestmark = [pytest.mark.slow,  # Ray's own job SDK warns about its aiohttp call; not ours to fix
              pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def stop_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(pgid):
            return


def alive_nodes(dashboard: str) -> int:
    from ray.util.state import list_nodes

    try:
        return sum(node.state == "ALIVE" for node in list_nodes(address=dashboard))
    except Exception:  # noqa: BLE001 - whatever the state API raises before the dashboard answers
        return 0


def start_node(script: str, args: list[str], env: dict, groups: list[int]) -> None:
    """Run a launch script in a new session; its Ray daemons stay in the process group it leads."""
    proc = subprocess.Popen(["bash", str(LAUNCH / script), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    groups.append(proc.pid)  # session leader: its pid is the group id (`exec ray start` keeps the pid)
    out, _ = proc.communicate(timeout=START_TIMEOUT_S)
    assert proc.returncode == 0, f"{script} failed:\n{out[-3000:]}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(dashboard URL, path of the fake trainer's report)."""
    work = tmp_path_factory.mktemp("ray-cluster")
    modules = work / "modules"
    modules.mkdir()
    shutil.copy(HERE / "fake_openrlhf_trainer.py", modules / "fake_openrlhf_trainer.py")
    # Ray puts Unix sockets under its temp dir: keep the path short (the socket path limit is 107 bytes).
    temp_dir = tempfile.mkdtemp(prefix="acr", dir="/tmp")
    gcs, dash, head_agent, worker_agent, client = free_ports(5)
    env = {**os.environ, "RAY_PORT": str(gcs), "RAY_DASHBOARD_PORT": str(dash), "RAY_NODE_IP": "127.0.0.1",
           "RAY_NUM_CPUS": "1", "RAY_NUM_GPUS": "0", "PYTHONPATH": str(modules),
           "FAKE_TRAINER_REPORT": str(work / "report.json"), "FAKE_TRAINER_SAMPLE": json.dumps(SAMPLE),
           "RAY_USAGE_STATS_ENABLED": "0"}
    # `ray` in the scripts and `python3` in the job's entrypoint: the installation running these tests.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RAY_ADDRESS", None)
    groups: list[int] = []
    try:
        start_node("ray_head.sh", [f"--temp-dir={temp_dir}", f"--dashboard-agent-listen-port={head_agent}",
                                   f"--ray-client-server-port={client}"], env, groups)
        start_node("ray_worker.sh", [f"127.0.0.1:{gcs}", f"--dashboard-agent-listen-port={worker_agent}"], env, groups)
        dashboard = f"http://127.0.0.1:{dash}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while alive_nodes(dashboard) < 2:
            assert time.monotonic() < deadline, "the worker never joined the head"
            time.sleep(1)
        yield dashboard, work / "report.json"
    finally:
        for pgid in groups:
            stop_group(pgid)
        shutil.rmtree(temp_dir, ignore_errors=True)


def write_run(tmp_path: Path, **changes) -> Path:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "train.jsonl").write_text(
        '{"id": "a", "context_messages": [{"role": "user", "content": "add"}], "test_cases": ["assert 1"]}\n')
    data = {"name": "ray-job", "model": {"pretrain": "Qwen/Qwen2.5-Coder-1.5B-Instruct"},
            "data": {"path": "out/train.jsonl"},
            "reward": {"engine": {"mode": "pass_rate", "workers": 1}},  # the default plug-in
            "algorithm": {"rollout_batch_size": 8, "train_batch_size": 16, "micro_train_batch_size": 4,
                          "micro_rollout_batch_size": 4},
            "resources": {"nodes": 1, "gpus_per_node": 4},
            "checkpoints": {"save_path": "ckpt/{name}"}}
    data.update(changes)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_job_gets_the_exact_command_and_files(cluster, tmp_path, monkeypatch, capsys):
    dashboard, report_path = cluster
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TRAINER_MODULE_ENV, "fake_openrlhf_trainer")
    config = write_run(tmp_path)
    assert main(["train", str(config), "--address", dashboard]) == 0
    assert "fake trainer: report written" in capsys.readouterr().out  # the job's log streamed here
    report = json.loads(report_path.read_text())
    plan = plan_run(load_run_config(config), address=dashboard)
    assert report["argv"] == plan.argv[3:]
    # The trainer runs in the uploaded working directory, where the command's relative names are the files.
    cwd = Path(report["cwd"])
    assert cwd != tmp_path and "runtime_resources" in str(cwd)
    assert report["--data.prompt_dataset"]["path"] == "data/train.jsonl"
    assert report["--data.prompt_dataset"]["sha256"] == sha256(tmp_path / "out" / "train.jsonl")
    assert report["--reward.remote_url"]["path"] == "openrlhf_reward.py"
    assert report["--reward.remote_url"]["sha256"] == sha256(REPO / "reward_fns" / "openrlhf_reward.py")
    # acecoder_rl came with the job (py_modules), not from the source tree.
    assert "runtime_resources" in report["acecoder_rl"] and not report["acecoder_rl"].startswith(str(REPO))
    assert report["env"] == {"ACECODER_REWARD_CONFIG": '{"mode":"pass_rate","workers":1}'}
    # The shipped plug-in, importing the shipped package, scores in the job: 1 of 2 tests pass.
    assert report["rewards"] == [0.5]
    assert report["argv"][report["argv"].index("--ckpt.path") + 1] == str(tmp_path / "ckpt" / "ray-job")


def test_failed_job_is_an_error_naming_the_job(cluster, tmp_path, monkeypatch, capsys):
    dashboard, _ = cluster
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TRAINER_MODULE_ENV, "fake_openrlhf_trainer")
    config = write_run(tmp_path, name="ray-job-fails", resources={"nodes": 1, "gpus_per_node": 4,
                                                                  "env_vars": {"FAKE_TRAINER_EXIT": "3"}})
    assert main(["train", str(config), "--address", dashboard]) == 1
    err = capsys.readouterr().err
    assert "acecoder-rl: error: Ray job ray-job-fails-" in err and "ended FAILED" in err
