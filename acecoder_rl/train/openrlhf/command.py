"""A run config as an OpenRLHF 0.11.2 command: ``python3 -m openrlhf.cli.train_ppo_ray --group.flag ...``.

Every flag name here is one that OpenRLHF 0.11.2's own parser defines (``openrlhf/cli/train_ppo_ray.py``);
``tests/train/test_openrlhf_contract.py`` runs that parser on the command of every config under ``configs/``,
so a renamed flag fails the tests rather than a job. Every value the config controls is passed explicitly,
even where it equals OpenRLHF's default, so a run does not change meaning when OpenRLHF's defaults do.

The same command runs on a Ray cluster and in the foreground; only :class:`TrainerFiles` differs: names
inside the job's uploaded working directory, or paths on this machine.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from acecoder_rl.train.config import RunConfig
from acecoder_rl.train.openrlhf.layout import placement, vllm_engines

TRAINER_MODULE = "openrlhf.cli.train_ppo_ray"
# Tests only: run this module instead of OpenRLHF's trainer (a stand-in that records what it was given).
TRAINER_MODULE_ENV = "ACECODER_OPENRLHF_MODULE"

ESTIMATORS = {
    "ppo": "gae",
    "reinforce_pp": "reinforce",
    "reinforce_pp_baseline": "reinforce_baseline",
    "grpo": "group_norm",
    "rloo": "rloo",
}
# OpenRLHF turns W&B on when --logger.wandb.key is non-empty and calls wandb.login(key=...) only when wandb
# finds no key of its own. The launcher ships WANDB_API_KEY in the job's environment (where wandb finds it),
# so the flag is only the on-switch and the secret never appears in the command line that OpenRLHF prints.
WANDB_KEY_SWITCH = "env:WANDB_API_KEY"
# Names inside the job's working directory (see acecoder_rl.train.openrlhf.launch).
SHIPPED_PLUGIN = "openrlhf_reward.py"
SHIPPED_DATA_DIR = "data"


@dataclass(frozen=True)
class TrainerFiles:
    """How the trainer refers to the run's files, and where relative output paths are anchored."""

    data: str
    """``--data.prompt_dataset``: a name inside the working directory, a path, or a Hub dataset."""
    plugin: str | None
    """``--reward.remote_url``: the reward plug-in file (``None`` with a learned reward model)."""
    base_dir: Path
    """Relative checkpoint and log paths of the config are taken from here (the launch directory)."""

    @classmethod
    def shipped(cls, cfg: RunConfig, base_dir: Path) -> TrainerFiles:
        """Names in the uploaded working directory (Ray job): data and plug-in travel with the job."""
        data = f"{SHIPPED_DATA_DIR}/{Path(cfg.data.path).name}" if cfg.data.ship else _anchor(cfg.data.path, base_dir)
        plugin = None if cfg.uses_reward_model else SHIPPED_PLUGIN
        return cls(data=data, plugin=plugin, base_dir=base_dir)

    @classmethod
    def local(cls, cfg: RunConfig, base_dir: Path, plugin_path: Path | None) -> TrainerFiles:
        """Paths on this machine (a foreground run: every process sees this file system)."""
        plugin = None if plugin_path is None else str(plugin_path)
        return cls(data=_anchor(cfg.data.path, base_dir), plugin=plugin, base_dir=base_dir)


def _anchor(path: str, base_dir: Path) -> str:
    """A config path as the trainer needs it: absolute, because the trainer's working directory is not ours."""
    return path if os.path.isabs(path) else str(base_dir / path)


def trainer_module() -> str:
    return os.environ.get(TRAINER_MODULE_ENV) or TRAINER_MODULE


def trainer_argv(cfg: RunConfig, files: TrainerFiles, *, resume: bool = False, python: str = "python3") -> list[str]:
    """The whole command: interpreter, module, flags."""
    return [python, "-m", trainer_module(), *openrlhf_args(cfg, files, resume=resume)]


def openrlhf_args(cfg: RunConfig, files: TrainerFiles, *, resume: bool = False) -> list[str]:
    """OpenRLHF 0.11.2 flags for ``cfg``; ``resume`` loads the latest checkpoint under ``checkpoints.save_path``."""
    m, d, a, r, ck, lg = cfg.model, cfg.data, cfg.algorithm, cfg.resources, cfg.checkpoints, cfg.logging
    out: list[str] = []

    def flag(name: str, *values: object) -> None:
        out.append(f"--{name}")
        out.extend(_value(v) for v in values)

    def switch(name: str, on: bool) -> None:
        if on:
            out.append(f"--{name}")

    # Roles and their GPUs (validated in RunConfig: they add up to the declared nodes).
    roles = placement(cfg)
    for role, prefix in (("actor", "actor"), ("ref", "ref"), ("critic", "critic"), ("reward_model", "reward")):
        if role in roles:
            flag(f"{prefix}.num_nodes", roles[role].nodes)
            flag(f"{prefix}.num_gpus_per_node", roles[role].gpus_per_node)
    switch("train.colocate_all", r.colocate == "all")
    switch("train.colocate_actor_ref", r.colocate == "actor_ref" and cfg.uses_ref)  # kl 0: no reference
    switch("train.colocate_critic_reward", r.colocate_critic_reward)
    flag("vllm.num_engines", vllm_engines(cfg))
    flag("vllm.tensor_parallel_size", r.vllm_tensor_parallel_size)
    flag("vllm.gpu_memory_utilization", r.vllm_gpu_memory_utilization)
    switch("vllm.enforce_eager", r.vllm_enforce_eager)
    switch("vllm.enable_prefix_caching", r.vllm_enable_prefix_caching)
    switch("vllm.enable_sleep", r.sleep)
    switch("ds.enable_sleep", r.sleep)

    # Models.
    flag("actor.model_name_or_path", m.pretrain)
    if cfg.uses_critic:
        flag("critic.model_name_or_path", m.critic)
    if cfg.uses_reward_model:
        flag("reward.model_name_or_path", m.reward_model)
    if cfg.uses_critic or cfg.uses_reward_model:
        flag("ds.value_head_prefix", m.value_head_prefix)
    if not cfg.uses_reward_model:
        flag("reward.remote_url", files.plugin)

    # DeepSpeed.
    flag("ds.zero_stage", r.zero_stage)
    flag("ds.param_dtype", r.dtype)
    flag("ds.attn_implementation", r.attn_implementation)
    switch("ds.adam_offload", r.adam_offload)
    switch("ds.packing_samples", r.packing_samples)
    switch("actor.gradient_checkpointing_enable", r.gradient_checkpointing)
    switch("ref.offload", r.ref_offload and cfg.uses_ref)

    # Data. OpenRLHF 0.11.2 has one length budget (prompt + response) and a response cap; a prompt longer
    # than max_len - max_new_tokens is cut from the left, so the two together keep prompt_max_len tokens.
    flag("data.prompt_dataset", files.data)
    flag("data.input_key", d.input_key)
    flag("data.label_key", d.label_key)
    switch("data.apply_chat_template", d.apply_chat_template)
    flag("data.max_len", d.prompt_max_len + d.generate_max_len)
    flag("rollout.max_new_tokens", d.generate_max_len)
    if d.max_samples is not None:
        flag("data.max_samples", d.max_samples)

    # Algorithm.
    flag("algo.advantage.estimator", ESTIMATORS[a.name])
    flag("rollout.n_samples_per_prompt", a.samples_per_prompt)
    flag("rollout.batch_size", a.rollout_batch_size)
    flag("rollout.micro_batch_size", a.micro_rollout_batch_size)
    flag("rollout.temperature", a.temperature)
    flag("rollout.top_p", a.top_p)
    flag("train.batch_size", a.train_batch_size)
    flag("train.micro_batch_size", a.micro_train_batch_size)
    flag("train.num_episodes", a.episodes)
    flag("train.max_epochs", a.max_epochs)
    flag("train.seed", a.seed)
    flag("actor.adam.lr", a.actor_lr)
    flag("actor.lr_warmup_ratio", a.lr_warmup_ratio)
    flag("actor.eps_clip", a.eps_clip)
    if a.eps_clip_high is not None:
        flag("actor.eps_clip_low_high", a.eps_clip, a.eps_clip_high)
    if cfg.uses_critic:
        flag("critic.adam.lr", a.critic_lr)
        flag("critic.lr_warmup_ratio", a.lr_warmup_ratio)
        flag("critic.value_clip", a.value_clip)
        flag("algo.advantage.gamma", a.gamma)
        flag("algo.advantage.lambd", a.lambd)
    flag("algo.kl.init_coef", a.kl_coef)
    if cfg.uses_ref:
        flag("algo.kl.estimator", a.kl_estimator)
        switch("algo.kl.use_loss", a.kl_as_loss)
    switch("reward.normalize_enable", a.normalize_reward)
    if a.dynamic_filtering is not None:
        switch("algo.dynamic_filtering_enable", True)
        flag("algo.dynamic_filtering_range", *a.dynamic_filtering)

    # Checkpoints.
    flag("ckpt.path", _anchor(cfg.expand(ck.save_path), files.base_dir))
    flag("ckpt.output_dir", _anchor(cfg.expand(ck.output_dir), files.base_dir))
    flag("ckpt.save_steps", ck.save_steps)
    flag("ckpt.max_num", ck.max_num)
    switch("ckpt.save_hf", ck.save_hf)
    switch("ckpt.load_enable", ck.load_checkpoint or resume)

    # Logging.
    flag("logger.logging_steps", lg.logging_steps)
    flag("logger.wandb.run_name", cfg.name)
    if lg.wandb is not None:
        flag("logger.wandb.key", WANDB_KEY_SWITCH)
        flag("logger.wandb.project", lg.wandb.project)
        if lg.wandb.group:
            flag("logger.wandb.group", lg.wandb.group)
        if lg.wandb.org:
            flag("logger.wandb.org", lg.wandb.org)
    if lg.tensorboard_dir is not None:
        flag("logger.tensorboard_dir", _anchor(cfg.expand(lg.tensorboard_dir), files.base_dir))
    return out


def _value(v: object) -> str:
    if isinstance(v, bool):
        raise TypeError("booleans are switches, not values")
    if isinstance(v, float):
        return repr(v)
    return str(v)


def reward_env(cfg: RunConfig, service_urls: list[str] | None = None) -> dict[str, str]:
    """Environment the reward plug-in reads inside the trainer: which backend, and the engine settings.

    ``ACECODER_REWARD_CONFIG`` holds only the keys the config sets (``reward.engine``): the plug-in's
    machine fills in its own defaults (its interpreter, its core count), not the launcher's. A service
    scores with its own settings (a started one gets ``reward.engine`` as ``serve`` options), and the
    plug-in refuses ``ACECODER_REWARD_CONFIG`` next to ``ACECODER_REWARD_URL``, so it is left out there.
    """
    where = cfg.reward.where
    if where == "reward_model":
        return {}
    if where == "service":
        urls = service_urls if service_urls is not None else cfg.reward.service.urls
        return {"ACECODER_REWARD_URL": ",".join(urls)}
    env = {"ACECODER_REWARD_CONFIG": json.dumps(cfg.reward.engine, sort_keys=True, separators=(",", ":"))}
    if where == "ray_pool":
        env["ACECODER_REWARD_RAY"] = "1"
    return env


def format_command(argv: list[str]) -> str:
    """The command as a shell line per flag (flag and its values together), for reading and golden files."""
    head: list[str] = []
    lines: list[list[str]] = []
    for arg in argv:
        if arg.startswith("--"):
            lines.append([arg])
        elif lines:
            lines[-1].append(arg)
        else:
            head.append(arg)
    rendered = [shlex.join(head)] + ["    " + shlex.join(line) for line in lines]
    return " \\\n".join(rendered)
