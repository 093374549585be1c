"""What OpenRLHF 0.11.2 needs of a run config (``backend: openrlhf``), checked when the config is loaded.

Before any GPU is reserved: a role layout that does not add up to the declared GPUs (or cannot be placed on
the nodes), batch sizes that leave ranks with ragged batches, environment variables that make Ray refuse the
job, data paths OpenRLHF would misread, path templates, and ``reward.engine`` keys that a reward service the
run starts has no ``acecoder-rl serve`` option for. Each refusal is an :class:`InvalidConfig` naming the key.
"""
from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING

from acecoder_rl.errors import InvalidConfig
from acecoder_rl.reward.options import ENGINE_OPTIONS
from acecoder_rl.train.openrlhf.layout import role_gpus, vllm_engines
from acecoder_rl.train.openrlhf.prepare import prepare_out_dir

if TYPE_CHECKING:
    from acecoder_rl.train.config import RunConfig, ServiceStart

# Environment variables that OpenRLHF's own ``ray.init(runtime_env=...)`` sets. Ray refuses to start a
# submitted job whose runtime env sets the same variable as the driver's ray.init (a merge conflict), so
# these must come from the nodes' environment (launch/ scripts), never from ``resources.env_vars``.
OPENRLHF_DRIVER_ENV = frozenset({"TOKENIZERS_PARALLELISM", "NCCL_DEBUG", "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS"})
# Set by the launcher from the ``reward`` section; a second source would silently disagree with it.
RESERVED_ENV_PREFIX = "ACECODER_REWARD_"
SERVE_FLAGS = frozenset(o.field for o in ENGINE_OPTIONS) - {"workers"}
"""``reward.engine`` keys a started service applies (``acecoder-rl serve`` options; its workers come from
``reward.service.start.workers``)."""


def check(cfg: RunConfig) -> None:
    """Raise :class:`InvalidConfig` for the first thing in ``cfg`` that OpenRLHF cannot run."""
    _check_resources(cfg)
    _check_batches(cfg)
    _check_paths(cfg)
    _check_serve_flags(cfg)


def _check_resources(cfg: RunConfig) -> None:
    r = cfg.resources
    total = r.nodes * r.gpus_per_node
    given = {"actor": r.actor_gpus, "ref": r.ref_gpus, "critic": r.critic_gpus,
             "reward_model": r.reward_model_gpus}
    roles = role_gpus(cfg)
    for role, value in given.items():
        if role not in roles and value is not None:
            why = {"ref": "kl_coef is 0 (no reference model)", "critic": "only ppo has a critic",
                   "reward_model": "reward.where is not reward_model"}[role]
            raise InvalidConfig(f"resources.{role}_gpus", f"this run has no {role} role ({why}): remove it")
    if r.colocate != "all":
        missing = [role for role in ("actor", "critic", "reward_model") if role in roles and given[role] is None]
        if r.colocate == "none" and "ref" in roles and given["ref"] is None:
            missing.append("ref")
        if missing:
            raise InvalidConfig(f"resources.{missing[0]}_gpus",
                                f"required with colocate: {r.colocate} (only colocate: all shares every GPU)")
        if r.vllm_engines is None:
            raise InvalidConfig("resources.vllm_engines", f"required with colocate: {r.colocate}")
    tp = r.vllm_tensor_parallel_size
    if tp > r.gpus_per_node:
        raise InvalidConfig("resources.vllm_tensor_parallel_size",
                            f"{tp} > gpus_per_node={r.gpus_per_node}: one vLLM engine must fit on one node")
    for role, gpus in roles.items():
        if gpus > r.gpus_per_node and (gpus % r.gpus_per_node or gpus // r.gpus_per_node > r.nodes):
            raise InvalidConfig(f"resources.{role}_gpus",
                                f"{gpus} GPUs cannot be placed on {r.nodes} node(s) of {r.gpus_per_node}: use "
                                f"at most {r.gpus_per_node}, or a multiple of it up to {total}")
    vllm = vllm_engines(cfg) * tp
    if r.colocate == "all" and r.vllm_engines is None and roles["actor"] % tp:
        raise InvalidConfig("resources.vllm_tensor_parallel_size",
                            f"actor_gpus={roles['actor']} is not a multiple of {tp}: set resources.vllm_engines")
    if r.colocate_critic_reward:
        if "critic" not in roles or "reward_model" not in roles:
            raise InvalidConfig("resources.colocate_critic_reward",
                                "needs both a critic (ppo) and a reward model (reward.where: reward_model)")
        if roles["critic"] != roles["reward_model"]:
            raise InvalidConfig("resources.reward_model_gpus",
                                f"colocated with the critic, so it must equal critic_gpus={roles['critic']}")
    if r.colocate == "all":
        for role, gpus in roles.items():
            if gpus != total:
                raise InvalidConfig(f"resources.{role}_gpus",
                                    f"colocate: all shares all {total} GPUs ({r.nodes} x {r.gpus_per_node}) "
                                    f"between every role, so it must be {total}, not {gpus}")
        if vllm != total:
            raise InvalidConfig("resources.vllm_engines",
                                f"with colocate: all, vLLM must span the actor's {total} GPUs: "
                                f"{vllm_engines(cfg)} engines x TP {tp} = {vllm}")
        used = total
    else:
        if r.sleep:
            raise InvalidConfig("resources.sleep", "vLLM/DeepSpeed sleep only helps GPUs that are shared by "
                                                   "both: it needs colocate: all")
        parts = {"actor": roles["actor"], "vLLM": vllm}
        if r.colocate == "actor_ref":
            if "ref" in roles and roles["ref"] != roles["actor"]:
                raise InvalidConfig("resources.ref_gpus",
                                    f"colocate: actor_ref puts the reference on the actor's GPUs, so it must "
                                    f"equal actor_gpus={roles['actor']}, not {roles['ref']}")
        elif "ref" in roles:
            parts["ref"] = roles["ref"]
        if "critic" in roles:
            parts["critic"] = roles["critic"]
        if "reward_model" in roles and not r.colocate_critic_reward:
            parts["reward_model"] = roles["reward_model"]
        used = sum(parts.values())
        if used != total:
            detail = " + ".join(f"{k} {v}" for k, v in parts.items())
            raise InvalidConfig("resources",
                                f"the roles use {used} GPUs ({detail}) but {r.nodes} node(s) x "
                                f"{r.gpus_per_node} = {total} are declared: make them add up, or use "
                                "colocate: all to share every GPU")
    if r.packing_samples and vllm_engines(cfg) == 0:
        raise InvalidConfig("resources.packing_samples", "OpenRLHF packs samples only with vLLM rollouts: "
                                                         "set vllm_engines > 0 or packing_samples: false")
    for key in r.env_vars:
        if key in OPENRLHF_DRIVER_ENV:
            raise InvalidConfig(f"resources.env_vars.{key}",
                                "OpenRLHF's ray.init sets it too and Ray then refuses the job (runtime env "
                                "conflict): export it where the Ray nodes start (launch/ scripts) instead")
        if key.startswith(RESERVED_ENV_PREFIX) or key == "WANDB_API_KEY":
            raise InvalidConfig(f"resources.env_vars.{key}",
                                "set by the launcher from the reward/logging sections and the environment")


def _check_batches(cfg: RunConfig) -> None:
    a, roles = cfg.algorithm, role_gpus(cfg)
    # Each optimizer step splits train_batch_size samples over the data-parallel ranks (one per GPU of
    # the role), each doing whole micro batches; anything else leaves ranks with ragged batches.
    for role in ("actor", "critic"):
        if role not in roles:
            continue
        unit = a.micro_train_batch_size * roles[role]
        if a.train_batch_size % unit:
            raise InvalidConfig("algorithm.train_batch_size",
                                f"{a.train_batch_size} is not a multiple of micro_train_batch_size x "
                                f"{role} GPUs = {a.micro_train_batch_size} x {roles[role]} = {unit}")
    samples = a.rollout_batch_size * a.samples_per_prompt
    if samples % a.train_batch_size:
        raise InvalidConfig("algorithm.train_batch_size",
                            f"a rollout makes rollout_batch_size x samples_per_prompt = {samples} samples, "
                            f"not a whole number of training batches of {a.train_batch_size}")
    if samples // a.micro_rollout_batch_size < roles["actor"]:
        raise InvalidConfig("algorithm.micro_rollout_batch_size",
                            f"a rollout's {samples} samples in micro batches of {a.micro_rollout_batch_size} "
                            f"leave some of the {roles['actor']} actor GPUs without work")


def _check_paths(cfg: RunConfig) -> None:
    path = cfg.data.path
    if "," in path or "@" in path:
        raise InvalidConfig("data.path", f"{path!r}: OpenRLHF splits dataset names at ',' and '@'; "
                                         "rename the file")
    if cfg.data.ship and Path(path).suffix.lower() not in (".jsonl", ".json", ".parquet"):
        raise InvalidConfig("data.path", f"{path!r}: a shipped data file must be .jsonl, .json or .parquet "
                                         "(`acecoder-rl data prepare` writes train.jsonl)")
    if cfg.data.prepare is not None:
        try:
            prepare_out_dir(cfg.data.prepare)
        except ValueError as exc:
            raise InvalidConfig("data.prepare", f"{cfg.data.prepare!r}: {exc}") from None
    templated = {"checkpoints.save_path": cfg.checkpoints.save_path,
                 "checkpoints.output_dir": cfg.checkpoints.output_dir,
                 "logging.tensorboard_dir": cfg.logging.tensorboard_dir}
    start = _started_service(cfg)
    if start is not None:
        templated["reward.service.start.log_path"] = start.log_path
    for key, value in templated.items():
        if value is None:
            continue
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        if fields - {"name"}:
            raise InvalidConfig(key, f"{value!r}: only {{name}} can be substituted, not "
                                     f"{{{min(fields - {'name'})}}}")


def _check_serve_flags(cfg: RunConfig) -> None:
    """A service the run starts scores with ``reward.engine`` given as ``serve`` options: refuse a key that
    has none (it would be dropped silently)."""
    if _started_service(cfg) is None:
        return
    given = {key for key, value in cfg.reward.engine.items() if value is not None}  # null: not set
    if "workers" in given:
        raise InvalidConfig("reward.engine.workers", "a started service's workers are "
                                                     "reward.service.start.workers: move it there")
    unsupported = sorted(given - SERVE_FLAGS)
    if unsupported:
        raise InvalidConfig(f"reward.engine.{unsupported[0]}",
                            "`acecoder-rl serve` has no option for it, so a started service cannot apply "
                            f"it (supported: {', '.join(sorted(SERVE_FLAGS))})")


def _started_service(cfg: RunConfig) -> ServiceStart | None:
    """``reward.service.start`` of a run that starts its own service (only with ``reward.where: service``)."""
    service = cfg.reward.service
    return service.start if cfg.reward.where == "service" and service is not None else None
