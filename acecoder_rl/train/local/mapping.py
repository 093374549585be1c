"""A run config as TRL 1.16 options: which trainer, which config fields, and where TRL's maths differs.

The local backend runs the same run config as the OpenRLHF backend, so every algorithm is mapped onto the
TRL estimator that computes the same advantages, or refused with the reason. What TRL 1.16 offers
(``trl/trainer/grpo_trainer.py``, ``rloo_trainer.py``): ``GRPOTrainer`` (advantage = reward minus the prompt
group's mean, divided by the group's std with ``scale_rewards="group"`` or by the batch's std with
``"batch"``; KL to the reference as a k3 loss term, weight ``beta``) and ``RLOOTrainer`` (leave-one-out
baseline; KL as a k1 penalty on the reward, weight ``beta``). Hence:

========================= =========================================== ===============================
run config                TRL                                         OpenRLHF estimator
========================= =========================================== ===============================
``grpo``                  GRPOTrainer, ``scale_rewards="group"``      ``group_norm``
``reinforce_pp_baseline`` GRPOTrainer, ``scale_rewards="batch"``      ``reinforce_baseline``
``rloo``                  RLOOTrainer                                 ``rloo``
``reinforce_pp``          refused: its baseline is the batch mean, which no TRL trainer has
``ppo``                   refused: TRL 1.16 has no PPO (critic) trainer
========================= =========================================== ===============================

The KL term must be placed as TRL places it: ``kl_as_loss: true`` with ``kl_estimator: k3`` for the GRPO
trainer, ``kl_as_loss: false`` with ``k1`` for RLOO (or ``kl_coef: 0``, no reference model). OpenRLHF options
with no TRL counterpart that change the maths (``normalize_reward``, ``dynamic_filtering``) are refused.
Sizes map one to one: ``samples_per_prompt`` -> ``num_generations``, a rollout (``rollout_batch_size`` x
``samples_per_prompt`` samples) -> ``generation_batch_size``, ``micro_train_batch_size`` ->
``per_device_train_batch_size``, ``train_batch_size`` -> that times ``gradient_accumulation_steps``,
``max_epochs`` -> ``num_iterations``, ``episodes`` -> ``num_train_epochs``, ``kl_coef`` -> ``beta``,
``eps_clip``/``eps_clip_high`` -> ``epsilon``/``epsilon_high``, ``data.generate_max_len`` ->
``max_completion_length``. The optimizer follows OpenRLHF's defaults
(AdamW betas (0.9, 0.95), no weight decay, gradient norm clipped at 1.0, cosine schedule down to 0.1 x the
learning rate after ``lr_warmup_ratio`` of warm-up).

Nothing here imports TRL: the mapping validates a config (errors name the key) before anything is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from acecoder_rl.errors import InvalidConfig

if TYPE_CHECKING:
    from acecoder_rl.train.config import RunConfig

Trainer = Literal["GRPOTrainer", "RLOOTrainer"]

CONFIG_CLASS: dict[str, str] = {"GRPOTrainer": "GRPOConfig", "RLOOTrainer": "RLOOConfig"}
USE_OPENRLHF = "use backend: openrlhf"

# Per supported algorithm: the trainer, its estimator options, and how TRL places the KL term.
_ESTIMATORS: dict[str, tuple[Trainer, dict[str, Any]]] = {
    "grpo": ("GRPOTrainer", {"scale_rewards": "group", "loss_type": "dapo"}),
    "reinforce_pp_baseline": ("GRPOTrainer", {"scale_rewards": "batch", "loss_type": "dapo"}),
    "rloo": ("RLOOTrainer", {"normalize_advantages": False}),
}
_KL_PLACEMENT: dict[str, tuple[bool, str, str]] = {
    # trainer: (KL as a loss term?, estimator, in words)
    "GRPOTrainer": (True, "k3", "as a k3 loss term"),
    "RLOOTrainer": (False, "k1", "as a k1 penalty on the reward"),
}
_NOTES: dict[str, tuple[str, ...]] = {
    "grpo": ("group std: TRL adds 1e-4 to it, OpenRLHF 1e-9",),
    "reinforce_pp_baseline": (
        ("batch whitening: TRL divides each sample's advantage by the batch std of the sequence advantages; "
         "OpenRLHF whitens per token (the same numbers when all answers have the same length)"),
    ),
    "rloo": (
        ("policy loss: TRL's RLOO uses one probability ratio per answer (the product over its tokens) and "
         "averages over answers; OpenRLHF clips per-token ratios and averages over tokens"),
    ),
}
_REFUSED: dict[str, str] = {
    "reinforce_pp": "REINFORCE++ subtracts the mean reward of the whole rollout batch; TRL 1.16's trainers "
                    "only have per-prompt baselines (GRPO, RLOO). Use reinforce_pp_baseline, grpo or rloo "
                    f"here, or {USE_OPENRLHF}",
    "ppo": f"PPO trains a critic (GAE) and TRL 1.16 has no PPO trainer: {USE_OPENRLHF}",
}
MIN_LR_RATE = 0.1  # OpenRLHF's --actor.min_lr_ratio default


@dataclass(frozen=True)
class TRLPlan:
    """What the local backend hands TRL: ``trainer`` (a ``trl`` class name), ``args`` (fields of its config
    class, :data:`CONFIG_CLASS`; the run directory and device are added when the run starts) and ``notes``
    (where TRL's computation differs in detail from OpenRLHF's)."""

    trainer: Trainer
    args: dict[str, Any]
    notes: tuple[str, ...]

    @property
    def config_class(self) -> str:
        return CONFIG_CLASS[self.trainer]

    def describe(self) -> str:
        lines = [f"trl.{self.trainer} with trl.{self.config_class}("]
        lines += [f"    {key}={value!r}," for key, value in self.args.items()]
        lines.append(")")
        lines += [f"# note: {note}" for note in self.notes]
        return "\n".join(lines)


def plan_trl(cfg: RunConfig) -> TRLPlan:
    """Map ``cfg`` (``backend: local``) onto TRL; raise :class:`InvalidConfig` for what TRL cannot do."""
    a, d = cfg.algorithm, cfg.data
    if a.name in _REFUSED:
        raise InvalidConfig("algorithm.name", f"{a.name}: {_REFUSED[a.name]}")
    trainer, estimator = _ESTIMATORS[a.name]
    _check_kl(cfg, trainer)
    _check_inputs(cfg)
    if a.normalize_reward:
        raise InvalidConfig("algorithm.normalize_reward", "OpenRLHF's running reward normalisation has "
                                                          "no TRL counterpart: set it to false, or "
                                                          f"{USE_OPENRLHF}")
    if a.dynamic_filtering is not None:
        raise InvalidConfig("algorithm.dynamic_filtering", "TRL 1.16 does not filter prompts by their score "
                                                           f"spread: remove it, or {USE_OPENRLHF}")
    if a.lr_warmup_ratio >= 1:
        raise InvalidConfig("algorithm.lr_warmup_ratio", "TRL takes a warm-up ratio below 1")
    samples = a.rollout_batch_size * a.samples_per_prompt
    _check_batches(samples, a.train_batch_size, a.micro_train_batch_size)
    ck = cfg.checkpoints
    args: dict[str, Any] = {
        "run_name": cfg.name,
        "seed": a.seed,
        "num_train_epochs": a.episodes,
        "num_generations": a.samples_per_prompt,
        "generation_batch_size": samples,
        "per_device_train_batch_size": a.micro_train_batch_size,
        "gradient_accumulation_steps": a.train_batch_size // a.micro_train_batch_size,
        "num_iterations": a.max_epochs,
        "max_completion_length": d.generate_max_len,
        "temperature": a.temperature,
        "top_p": a.top_p,
        "beta": a.kl_coef,
        "epsilon": a.eps_clip,
        "epsilon_high": a.eps_clip_high if a.eps_clip_high is not None else a.eps_clip,
        **estimator,
        "learning_rate": a.actor_lr,
        "adam_beta1": 0.9,
        "adam_beta2": 0.95,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr_rate": MIN_LR_RATE},
        "warmup_steps": a.lr_warmup_ratio,
        "gradient_checkpointing": cfg.local.gradient_checkpointing,
        "logging_steps": cfg.logging.logging_steps,
        "save_strategy": "steps" if ck.save_steps > 0 else "no",
        **({"save_steps": ck.save_steps, "save_total_limit": ck.max_num} if ck.save_steps > 0 else {}),
    }
    return TRLPlan(trainer, args, _NOTES[a.name])


def _check_kl(cfg: RunConfig, trainer: Trainer) -> None:
    a = cfg.algorithm
    if a.kl_coef == 0:
        return
    as_loss, estimator, words = _KL_PLACEMENT[trainer]
    if a.kl_as_loss != as_loss:
        raise InvalidConfig("algorithm.kl_as_loss", f"TRL's {trainer} ({a.name}) applies the KL {words}: set "
                                                    f"kl_as_loss: {str(as_loss).lower()} (or kl_coef: 0), "
                                                    f"or {USE_OPENRLHF}")
    if a.kl_estimator != estimator:
        raise InvalidConfig("algorithm.kl_estimator", f"TRL's {trainer} ({a.name}) applies the KL {words}: "
                                                      f"set kl_estimator: {estimator}, or {USE_OPENRLHF}")


def _check_inputs(cfg: RunConfig) -> None:
    from acecoder_rl.train.local.builtin_model import BUILDERS, BUILTIN_PREFIX, builtin_name, is_builtin

    model = cfg.model.pretrain
    if is_builtin(model) and builtin_name(model) not in BUILDERS:
        known = ", ".join(BUILTIN_PREFIX + name for name in BUILDERS)
        raise InvalidConfig("model.pretrain", f"unknown built-in model {model!r} (built in: {known})")
    if cfg.reward.where != "plugin":
        raise InvalidConfig("reward.where", f"{cfg.reward.where} is for the OpenRLHF backend; the local "
                                            "backend scores in its own process with a sandboxed engine "
                                            "(reward.where: plugin, settings in reward.engine), or "
                                            f"{USE_OPENRLHF}")
    if not cfg.data.apply_chat_template:
        raise InvalidConfig("data.apply_chat_template", "TRL renders message prompts with the tokenizer's "
                                                        "chat template; the local backend needs it true")


def _check_batches(samples: int, train_batch: int, micro: int) -> None:
    """One device: micro batches make up training batches, and training batches make up a rollout."""
    if train_batch % micro:
        raise InvalidConfig("algorithm.train_batch_size", f"{train_batch} is not a multiple of "
                                                          f"micro_train_batch_size {micro}")
    if samples % train_batch:
        raise InvalidConfig("algorithm.train_batch_size",
                            f"a rollout makes rollout_batch_size x samples_per_prompt = {samples} samples, "
                            f"not a whole number of training batches of {train_batch}")
