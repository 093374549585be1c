"""Run a config with OpenRLHF: as a Ray job on a cluster, or in the foreground on this machine.

On a cluster the job is submitted through the Ray Jobs API with a runtime env that carries what the trainer
needs and the nodes may not have: a small working directory holding the reward plug-in and the prepared
data file (``openrlhf_reward.py``, ``data/<file>``), this package as a ``py_module`` (so the plug-in imports
the same reward code as the submitter), and the reward settings as environment variables. Ray starts the
trainer, and every actor it creates, in that working directory, so the command names the files relatively.
Checkpoint and log paths are made absolute against the launch directory instead: the job's working
directory is a temporary copy that disappears with the job (so those paths must be on storage that every
node mounts at the same place, as Slurm clusters do for home and project directories).

Without an address the same command runs as a child process here, with local paths; OpenRLHF then starts a
local Ray instance itself.

A service that the config asks to start (``reward.service.start``) is started before either, and stopped
after the run ends however it ends. Its log goes to ``reward.service.start.log_path`` (in the run's
directory, ``runs/<name>/``, by default); if it dies while the run lasts (its process exits, or its
``/health`` fails for ``unhealthy_after_s``), the trainer is stopped (the foreground process interrupted,
the Ray job stopped) and the run fails with the service's last log lines.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import acecoder_rl
from acecoder_rl.errors import AcecoderError
from acecoder_rl.service.process import TOKEN_ENV
from acecoder_rl.train.config import RunConfig
from acecoder_rl.train.openrlhf.command import (
    SHIPPED_DATA_DIR,
    SHIPPED_PLUGIN,
    TrainerFiles,
    format_command,
    reward_env,
    trainer_argv,
)
from acecoder_rl.train.openrlhf.prepare import prepare_command
from acecoder_rl.train.openrlhf.reward_service import (
    StartedService,
    advertised_url,
    needs_run_token,
    serve_args,
)

if TYPE_CHECKING:
    from ray.job_submission import JobStatus, JobSubmissionClient

# Never uploaded with the package: byte code is rebuilt on the nodes, and stale files would shadow sources.
UPLOAD_EXCLUDES = ["__pycache__/", "*.pyc"]
JOB_POLL_S = 2.0
TRAINER_STOP_GRACE_S = 30.0
"""A foreground trainer interrupted because its reward service died gets this long to exit before a kill."""
SERVICE_LOG_TAIL = 20


def default_plugin() -> Path:
    """``reward_fns/openrlhf_reward.py`` of the source tree this package runs from."""
    return Path(acecoder_rl.__file__).resolve().parent.parent / "reward_fns" / "openrlhf_reward.py"


def resolve_address(cli_address: str | None, cfg: RunConfig) -> str | None:
    """The Ray dashboard address: ``--address``, else ``$RAY_ADDRESS``, else the config's ``cluster.address``."""
    return cli_address or os.environ.get("RAY_ADDRESS") or cfg.cluster.address


@dataclass
class RunPlan:
    """Everything a launch does, decided before anything starts (what ``--dry-run`` prints)."""

    cfg: RunConfig
    address: str | None
    argv: list[str]
    env_vars: dict[str, str]
    """Added to the trainer's environment (secrets excluded: see :attr:`secret_names`)."""
    local_files: dict[str, Path]
    """Files this machine must have, by config key (``data.path``, ``reward.plugin``)."""
    resume_from: Path | None = None
    """``--resume``: the checkpoint directory the trainer will look in."""
    upload: dict[str, Path] = field(default_factory=dict)
    """Cluster runs: name in the job's working directory -> file on this machine."""
    py_modules: list[Path] = field(default_factory=list)
    service_log: Path | None = None
    """The log of the reward service the run starts, if it starts one."""

    @property
    def secret_names(self) -> list[str]:
        """Secrets forwarded from the launching shell into the job: never in configs, never printed."""
        names = []
        if self.cfg.logging.wandb is not None:
            names.append("WANDB_API_KEY")
        if self.cfg.reward.where == "service" and os.environ.get(TOKEN_ENV):
            names.append(TOKEN_ENV)
        return names

    @property
    def makes_token(self) -> bool:
        """Whether the run makes a token for the service it starts, and gives it to the trainer too."""
        start = self.cfg.reward.service.start if self.cfg.reward.where == "service" else None
        return start is not None and needs_run_token(start)

    def describe(self) -> str:
        """The command and its runtime environment, as ``--dry-run`` prints them, after how to write the data
        file if this machine should have it and does not."""
        where = f"a Ray job at {self.address}" if self.address else "in the foreground on this machine"
        lines = [f"# run {self.cfg.name} ({self.cfg.backend}) {where}"]
        data = self.local_files.get("data.path")
        if data is not None and not data.is_file():
            lines.append(f"# data.path {data} does not exist yet; write it with: "
                         f"{prepare_command(self.cfg.data)}")
        start = self.cfg.reward.service.start if self.cfg.reward.where == "service" else None
        if start is not None:
            args = serve_args(start, self.cfg.reward.engine)
            lines.append(f"# reward service, up before the trainer and stopped after it: acecoder-rl serve "
                         f"--port {start.port} {shlex.join(args)}")
            lines.append(f"# its log: {self.service_log}; if it dies, the run is stopped")
            if self.makes_token:
                lines.append(f"# with a token made for the run (${TOKEN_ENV} is not set), given to the "
                             "trainer too")
        lines.append(format_command(self.argv))
        runtime_env: dict[str, object] = {"env_vars": dict(sorted(self.env_vars.items()))}
        if self.address:
            runtime_env["working_dir"] = {name: str(src) for name, src in sorted(self.upload.items())}
            runtime_env["py_modules"] = [str(p) for p in self.py_modules]
            runtime_env["excludes"] = UPLOAD_EXCLUDES
        if self.secret_names:
            runtime_env["env_vars_from_your_environment"] = self.secret_names
        lines.append("# runtime env:")
        lines.append(json.dumps(runtime_env, indent=2))
        return "\n".join(lines)


def plan_run(cfg: RunConfig, *, address: str | None, resume: bool = False, base_dir: Path | None = None,
             hostname: str | None = None) -> RunPlan:
    """Decide the command, environment and uploads of a run (nothing is started or read).

    ``base_dir`` anchors the config's relative paths [default: the current directory]; ``hostname`` is how
    the nodes reach this machine, for a reward service started here [default: its fully qualified name].
    """
    base_dir = (base_dir or Path.cwd()).resolve()
    local: dict[str, Path] = {}
    if not cfg.uses_reward_model:
        plugin = Path(cfg.reward.plugin) if cfg.reward.plugin else default_plugin()
        local["reward.plugin"] = plugin if plugin.is_absolute() else base_dir / plugin
    data = Path(cfg.data.path)
    data = data if data.is_absolute() else base_dir / data
    if cfg.data.ship or not address:
        local["data.path"] = data
    urls = service_log = None
    if cfg.reward.where == "service" and cfg.reward.service.start is not None:
        urls = [advertised_url(cfg.reward.service.start, hostname)]
        service_log = Path(cfg.expand(cfg.reward.service.start.log_path))
        service_log = service_log if service_log.is_absolute() else base_dir / service_log
    env = {**cfg.resources.env_vars, **reward_env(cfg, urls)}
    resume_from = Path(cfg.expand(cfg.checkpoints.save_path)) if resume else None
    if resume_from is not None and not resume_from.is_absolute():
        resume_from = base_dir / resume_from
    if not address:
        files = TrainerFiles.local(cfg, base_dir, local.get("reward.plugin"))
        argv = trainer_argv(cfg, files, resume=resume, python=sys.executable)
        return RunPlan(cfg, None, argv, env, local, resume_from, service_log=service_log)
    upload = {}
    if "reward.plugin" in local:
        upload[SHIPPED_PLUGIN] = local["reward.plugin"]
    if cfg.data.ship:
        upload[f"{SHIPPED_DATA_DIR}/{data.name}"] = data
    argv = trainer_argv(cfg, TrainerFiles.shipped(cfg, base_dir), resume=resume)
    package = Path(acecoder_rl.__file__).resolve().parent
    return RunPlan(cfg, address, argv, env, local, resume_from, upload, [package], service_log)


def execute(plan: RunPlan) -> None:
    """Run the plan to its end: the trainer's output streams here; a failed run raises AcecoderError."""
    _check_inputs(plan)
    env = dict(plan.env_vars)
    for name in plan.secret_names:
        env[name] = os.environ[name]
    if plan.makes_token:
        env[TOKEN_ENV] = secrets.token_urlsafe(32)
    with _reward_service(plan, env.get(TOKEN_ENV)) as service:
        if plan.address:
            _run_ray_job(plan, env, service)
        else:
            _run_foreground(plan, env, service)


def _check_inputs(plan: RunPlan) -> None:
    if plan.cfg.logging.wandb is not None and not os.environ.get("WANDB_API_KEY"):
        raise AcecoderError("logging.wandb is set: export WANDB_API_KEY (it is forwarded to the job, never "
                            "written into the command)")
    for key, path in plan.local_files.items():
        if not path.is_file():
            hint = f" (write it with: {prepare_command(plan.cfg.data)})" if key == "data.path" else ""
            raise AcecoderError(f"{key}: {path} not found{hint}")
    # OpenRLHF resumes from <ckpt.path>/_actor when it exists and silently starts over when it does not.
    if plan.resume_from is not None and not (plan.resume_from / "_actor").is_dir():
        print(f"acecoder-rl: warning: --resume, but no checkpoint in {plan.resume_from} (as seen from this "
              "machine): unless the nodes see one there, the run starts from the beginning",
              file=sys.stderr, flush=True)


@contextlib.contextmanager
def _reward_service(plan: RunPlan, token: str | None) -> Iterator[StartedService | None]:
    cfg = plan.cfg
    start = cfg.reward.service.start if cfg.reward.where == "service" else None
    if start is None:
        yield None
        return
    with StartedService(start, cfg.reward.engine, plan.env_vars["ACECODER_REWARD_URL"], token,
                        plan.service_log) as service:
        print(f"acecoder-rl: reward service ready at {service.url} (log: {plan.service_log})",
              file=sys.stderr, flush=True)
        yield service


def _raise_if_service_died(service: StartedService | None) -> None:
    """The run's reward service died while it lasted: its last log lines, then the run's error."""
    if service is None or service.death is None:
        return
    lines = service.last_lines(SERVICE_LOG_TAIL)
    print(f"acecoder-rl: the reward service's last {len(lines)} log lines ({service.log_path}):",
          file=sys.stderr)
    for line in lines:
        print(f"    {line}", file=sys.stderr)
    last = f"; its last log line: {lines[-1].strip()}" if lines else ""
    raise AcecoderError(f"the reward service died during the run ({service.death}), so the trainer was "
                        f"stopped{last} (log: {service.log_path})")


def _run_foreground(plan: RunPlan, env: dict[str, str], service: StartedService | None) -> None:
    proc = subprocess.Popen(plan.argv, env={**os.environ, **env})

    def stop_trainer() -> None:  # as Ctrl-C would: OpenRLHF shuts its local Ray instance down on SIGINT
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(TRAINER_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()

    if service is not None:
        service.watch(stop_trainer)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    _raise_if_service_died(service)
    if code != 0:
        raise AcecoderError(f"trainer exited with status {code}: {shlex.join(plan.argv[:3])} ...")


def _run_ray_job(plan: RunPlan, env: dict[str, str], service: StartedService | None) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    try:
        client = JobSubmissionClient(plan.address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AcecoderError(f"cannot reach the Ray dashboard at {plan.address}: {exc} (start the head with "
                            "launch/ray_head.sh; the address is http://HEAD:8265)") from None
    job_id = f"{plan.cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    with _staged_working_dir(plan.upload) as working_dir:
        runtime_env = {"working_dir": str(working_dir), "py_modules": [str(p) for p in plan.py_modules],
                       "excludes": UPLOAD_EXCLUDES, "env_vars": env}
        try:
            client.submit_job(entrypoint=shlex.join(plan.argv), runtime_env=runtime_env, submission_id=job_id)
        except (RuntimeError, ValueError) as exc:
            raise AcecoderError(f"Ray refused the job: {str(exc).splitlines()[0]} (a data file too large to "
                                "upload can stay on shared storage: data.ship: false)") from None
    print(f"acecoder-rl: submitted Ray job {job_id} to {plan.address}", file=sys.stderr, flush=True)
    if service is not None:
        service.watch(lambda: client.stop_job(job_id))
    try:
        _stream_logs(client, job_id)
        status = _wait_terminal(client, job_id)
    except KeyboardInterrupt:
        # The run depends on this process (it holds the reward service, if any): stop the job with it.
        client.stop_job(job_id)
        raise AcecoderError(f"interrupted: stopped Ray job {job_id}") from None
    _raise_if_service_died(service)
    if status != JobStatus.SUCCEEDED:
        message = (client.get_job_info(job_id).message or "").strip()
        last_line = message.splitlines()[-1] if message else "no message"
        raise AcecoderError(f"Ray job {job_id} ended {status.value}: {last_line}")


def _stream_logs(client: JobSubmissionClient, job_id: str) -> None:
    import asyncio

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    asyncio.run(tail())


def _wait_terminal(client: JobSubmissionClient, job_id: str) -> JobStatus:
    # The log stream can close a moment before the status turns terminal.
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            return status
        time.sleep(JOB_POLL_S)


@contextlib.contextmanager
def _staged_working_dir(upload: dict[str, Path]) -> Iterator[Path]:
    """A temporary directory laid out as the job's working directory; Ray packs it at submission."""
    with tempfile.TemporaryDirectory(prefix="acecoder-rl-job-") as tmp:
        root = Path(tmp)
        for name, src in upload.items():
            dest = root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dest)  # same file system: no copy of a large data file
            except OSError:
                shutil.copyfile(src, dest)
        yield root
