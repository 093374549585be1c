"""Typed run configs: one YAML file per training run, validated when built.

A run config says what to train (``model``), on what (``data``), with which reward and where it runs
(``reward``), how (``algorithm``), on which GPUs (``resources``), what to log (``logging``), where to keep
checkpoints (``checkpoints``) and on which cluster (``cluster``). ``backend`` picks the trainer that runs it,
and each backend has its package beside this module:

- ``openrlhf`` (:mod:`acecoder_rl.train.openrlhf`): OpenRLHF 0.11.2 as a Ray job on GPU nodes, or in the
  foreground; its checks (GPU layout, batches, paths) are :func:`acecoder_rl.train.openrlhf.checks.check`.
- ``local`` (:mod:`acecoder_rl.train.local`): TRL on this one machine, CPU or one GPU, with its own ``local``
  section; :func:`acecoder_rl.train.local.mapping.plan_trl` refuses what TRL cannot compute the same way
  (``ppo``, ``reinforce_pp``, a KL term placed differently, ...).

Every section rejects unknown keys, and a backend rejects the keys only the other one reads (marked
:data:`OPENRLHF_ONLY` or :data:`LOCAL_ONLY` in the schema: ``resources``, ``cluster``, ``reward.plugin``,
``logging.tensorboard_dir``, ``checkpoints.save_path``, ... for OpenRLHF; ``local`` for the local backend)
instead of ignoring them. Validation checks what holds for every backend (an estimator whose per-prompt
baseline is zero with one sample per prompt, PPO without a critic, a reward model next to a test-based reward,
...) and the backend's own: the local backend's first (an algorithm TRL does not have makes the rest moot),
OpenRLHF's last (the GPU layout and batch sizes of a run that makes sense). Every refusal is an
:class:`~acecoder_rl.errors.InvalidConfig` naming the key; :func:`load_run_config` adds the file (the one in
the ``extends`` chain that set the key).

Paths in ``data``, ``reward.plugin``, ``reward.service.start.log_path``, ``checkpoints`` and ``logging`` are
relative to the directory the command is run in (like any CLI); only ``extends`` is relative to the file.
``{name}`` in checkpoint and log paths is replaced by the run name, so one base config serves many runs.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from acecoder_rl.errors import AcecoderError, InvalidConfig
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.train.layered_yaml import LayeredYaml, load_layered
from acecoder_rl.train.local.mapping import plan_trl
from acecoder_rl.train.openrlhf import checks as openrlhf_checks

Backend = Literal["openrlhf", "local"]
Algorithm = Literal["ppo", "reinforce_pp", "reinforce_pp_baseline", "grpo", "rloo"]
RewardWhere = Literal["plugin", "service", "ray_pool", "reward_model"]
Colocate = Literal["none", "actor_ref", "all"]

# Estimators that subtract a per-prompt baseline (group mean, leave-one-out mean): with one sample per
# prompt the sample *is* the baseline, so every advantage is exactly 0 and the run trains nothing.
GROUP_BASELINE_ALGORITHMS = frozenset({"reinforce_pp_baseline", "grpo", "rloo"})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# A key only one backend reads carries the backends that read it (``Field(json_schema_extra=...)``); the
# other backend refuses it when a config sets it (:func:`_keys_for_other_backends`), rather than ignore it.
OPENRLHF_ONLY: dict[str, Any] = {"backends": ["openrlhf"]}
LOCAL_ONLY: dict[str, Any] = {"backends": ["local"]}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    pretrain: str = Field(min_length=1, description="Policy (actor) initial weights: Hub name or path.")
    critic: str | None = Field(None, description="PPO only: critic initial weights (usually the policy's).")
    reward_model: str | None = Field(None, description="A learned reward model (reward.where: reward_model).")
    value_head_prefix: str = Field("score", description="Value-head name of the critic / reward model.",
                                   json_schema_extra=OPENRLHF_ONLY)


class DataSection(_Section):
    path: str = Field(min_length=1, description="The prepared training file (`acecoder-rl data prepare`).")
    ship: bool = Field(True, description="Upload the file with the job; false: path is on shared storage.",
                       json_schema_extra=OPENRLHF_ONLY)
    input_key: str = "context_messages"
    label_key: str = "test_cases"
    apply_chat_template: bool = True
    prompt_max_len: int = Field(2048, gt=0, description="Prompt tokens kept (longer prompts are cut).")
    generate_max_len: int = Field(2048, gt=0, description="Tokens generated per sample at most.")
    max_samples: int | None = Field(None, gt=0, description="Use only the first N rows.")
    prepare: str | None = Field(
        None, description="The `acecoder-rl data prepare` options that write data.path, -o DIR included (a dry "
        "run shows the command while the file is missing).", json_schema_extra=OPENRLHF_ONLY)


class ServiceStart(_Section):
    host: str = "0.0.0.0"
    port: int = Field(5000, ge=1, le=65535)
    workers: int | None = Field(None, ge=1, le=256, description="Sandbox workers [default: 1.5 per CPU core].")
    advertise_host: str | None = Field(
        None, description="Host name the trainer's nodes use to reach the service [default: this host].")
    startup_timeout_s: float = Field(300.0, gt=0)
    log_path: str = Field("runs/{name}/reward_service.log",
                          description="The service's log, appended to (beside the checkpoints).")
    unhealthy_after_s: float = Field(
        60.0, gt=0, description="/health failing this long stops the run (the service exiting: at once).")


class ServiceSection(_Section):
    urls: list[str] = Field(default_factory=list, description="Running services (base URLs).")
    start: ServiceStart | None = Field(None, description="Start `acecoder-rl serve` for the run instead.")


class RewardSection(_Section):
    where: RewardWhere = Field(
        "plugin", description="plugin: a reward engine inside each vLLM actor; service: HTTP reward "
        "service(s); ray_pool: reward actors on every Ray node; reward_model: a learned RM (no tests run).")
    plugin: str | None = Field(
        None, description="The OpenRLHF reward plug-in [default: reward_fns/openrlhf_reward.py].",
        json_schema_extra=OPENRLHF_ONLY)
    engine: dict[str, Any] = Field(
        default_factory=dict, description="acecoder_rl.reward.RewardConfig fields (mode, all_pass_bonus, ...).")
    service: ServiceSection | None = None


class AlgorithmSection(_Section):
    name: Algorithm = "reinforce_pp"
    samples_per_prompt: int = Field(8, ge=1)
    rollout_batch_size: int = Field(256, ge=1, description="Prompts per rollout.")
    micro_rollout_batch_size: int = Field(8, ge=1, description="Per GPU, when computing log-probs/values.",
                                          json_schema_extra=OPENRLHF_ONLY)
    train_batch_size: int = Field(128, ge=1, description="Samples per optimizer step (global).")
    micro_train_batch_size: int = Field(8, ge=1, description="Samples per GPU per forward/backward.")
    episodes: int = Field(1, ge=1, description="Passes over the prompt set.")
    max_epochs: int = Field(1, ge=1, description="Optimizer passes over each rollout.")
    actor_lr: float = Field(5e-7, gt=0)
    critic_lr: float = Field(9e-6, gt=0, description="PPO only.", json_schema_extra=OPENRLHF_ONLY)
    lr_warmup_ratio: float = Field(0.03, ge=0, le=1)
    kl_coef: float = Field(0.01, ge=0, description="0 drops the reference model.")
    kl_estimator: Literal["k1", "k2", "k3"] = "k1"
    kl_as_loss: bool = Field(False, description="KL as a loss term (GRPO) instead of a reward penalty.")
    eps_clip: float = Field(0.2, gt=0)
    eps_clip_high: float | None = Field(None, gt=0, description="Asymmetric clip (eps_clip, eps_clip_high).")
    value_clip: float = Field(0.5, gt=0, description="PPO only.", json_schema_extra=OPENRLHF_ONLY)
    gamma: float = Field(1.0, gt=0, le=1, description="PPO only (GAE).", json_schema_extra=OPENRLHF_ONLY)
    lambd: float = Field(1.0, ge=0, le=1, description="PPO only (GAE).", json_schema_extra=OPENRLHF_ONLY)
    normalize_reward: bool = False
    dynamic_filtering: tuple[float, float] | None = Field(
        None, description="Keep only prompts whose mean score lies in (low, high), e.g. [0.0, 1.0].")
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 42


class ResourcesSection(_Section):
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(8, ge=1)
    colocate: Colocate = Field(
        "all", description="all: hybrid engine, every role and vLLM share every GPU; actor_ref: actor and "
        "reference share GPUs; none: every role on its own GPUs.")
    colocate_critic_reward: bool = False
    actor_gpus: int | None = Field(None, ge=1, description="[default with colocate: all: every GPU]")
    ref_gpus: int | None = Field(None, ge=1, description="[default: actor_gpus]")
    critic_gpus: int | None = Field(None, ge=1, description="[default with colocate: all: actor_gpus]")
    reward_model_gpus: int | None = Field(None, ge=1, description="[default with colocate: all: actor_gpus]")
    vllm_engines: int | None = Field(None, ge=0, description="[default with colocate: all: actor_gpus / TP]")
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    vllm_gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    vllm_enforce_eager: bool = False
    vllm_enable_prefix_caching: bool = False
    sleep: bool = Field(False, description="Hybrid engine: vLLM and DeepSpeed sleep while the other runs.")
    zero_stage: Literal[0, 1, 2, 3] = 3
    dtype: Literal["bf16", "fp16"] = "bf16"
    adam_offload: bool = False
    ref_offload: bool = False
    gradient_checkpointing: bool = True
    packing_samples: bool = True
    attn_implementation: str = "flash_attention_2"
    env_vars: dict[str, str] = Field(default_factory=dict, description="Extra environment for the job.")


class WandbSection(_Section):
    project: str = "acecoder-rl"
    group: str | None = None
    org: str | None = None


class LoggingSection(_Section):
    wandb: WandbSection | None = Field(None, description="Log to W&B (needs WANDB_API_KEY when launching).")
    tensorboard_dir: str | None = Field(
        None, description="OpenRLHF's TensorBoard logs (a local run writes its own).",
        json_schema_extra=OPENRLHF_ONLY)
    logging_steps: int = Field(1, ge=1)


class CheckpointsSection(_Section):
    save_path: str = Field("runs/{name}/ckpt", description="Resumable DeepSpeed checkpoints.",
                           json_schema_extra=OPENRLHF_ONLY)
    output_dir: str = Field("runs/{name}/model", description="The final model.",
                            json_schema_extra=OPENRLHF_ONLY)
    save_steps: int = Field(-1, description="Checkpoint every N steps; -1: only the final model.")
    max_num: int = Field(3, ge=1, description="Checkpoints kept.")
    save_hf: bool = Field(False, description="Also save the model in Hugging Face format.",
                          json_schema_extra=OPENRLHF_ONLY)
    load_checkpoint: bool = Field(False, description="Resume from save_path when it holds a checkpoint.",
                                  json_schema_extra=OPENRLHF_ONLY)


class LocalSection(_Section):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: the GPU if any, else the CPU.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass "
                                                            "(less GPU memory on large models, more time).")


class ClusterSection(_Section):
    address: str | None = Field(None, description="Ray dashboard address (http://HEAD:8265).")


class RunConfig(_Section):
    name: str = Field(description="Run name: W&B run, checkpoint directories, Ray job id prefix.")
    backend: Backend = "openrlhf"
    model: ModelSection
    data: DataSection
    reward: RewardSection = Field(default_factory=RewardSection)
    algorithm: AlgorithmSection = Field(default_factory=AlgorithmSection)
    resources: ResourcesSection = Field(default_factory=ResourcesSection, json_schema_extra=OPENRLHF_ONLY)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    checkpoints: CheckpointsSection = Field(default_factory=CheckpointsSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection, json_schema_extra=OPENRLHF_ONLY)
    local: LocalSection = Field(default_factory=LocalSection, json_schema_extra=LOCAL_ONLY)

    # --- derived values ---------------------------------------------------------------------------------

    def expand(self, template: str) -> str:
        """A path with ``{name}`` replaced by the run name."""
        return template.replace("{name}", self.name)

    @property
    def uses_ref(self) -> bool:
        return self.algorithm.kl_coef > 0

    @property
    def uses_critic(self) -> bool:
        return self.algorithm.name == "ppo"

    @property
    def uses_reward_model(self) -> bool:
        return self.reward.where == "reward_model"

    # --- validation -------------------------------------------------------------------------------------

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if not _NAME.match(self.name):
            raise InvalidConfig("name", f"{self.name!r} must be letters, digits, '.', '_' or '-' (it names "
                                        "directories and the Ray job)")
        if self.backend == "local":
            plan_trl(self)  # first: an algorithm or a reward that TRL cannot run makes the shared checks moot
        ignored = next(_keys_for_other_backends(self, self.backend), None)
        if ignored is not None:
            key, backends = ignored
            raise InvalidConfig(key, f"only used with backend: {' or '.join(backends)} "
                                     f"(backend: {self.backend} does not read it): remove it")
        self._check_model_and_reward()
        self._check_algorithm()
        self._check_checkpoints()
        if self.backend == "openrlhf":
            openrlhf_checks.check(self)  # OpenRLHF runs every algorithm: its layout and sizes come last
        return self

    def _check_model_and_reward(self) -> None:
        m, rw, algo = self.model, self.reward, self.algorithm.name
        if algo == "ppo" and not m.critic:
            raise InvalidConfig("model.critic", "algorithm ppo estimates advantages with a critic (GAE): set "
                                                "model.critic (usually the policy's own weights)")
        if algo != "ppo" and m.critic:
            raise InvalidConfig("model.critic", f"only ppo uses a critic; {algo} would ignore "
                                                f"{m.critic!r}: remove it")
        if rw.where == "reward_model" and not m.reward_model:
            raise InvalidConfig("model.reward_model", "reward.where is reward_model: name the reward model")
        if rw.where != "reward_model" and m.reward_model:
            raise InvalidConfig("model.reward_model", f"reward.where is {rw.where} (test-based reward), so "
                                                      "the reward model would be ignored: remove it or set "
                                                      "reward.where: reward_model")
        if rw.where == "reward_model":
            if rw.engine:
                raise InvalidConfig("reward.engine", "a learned reward model runs no tests: remove reward.engine")
        else:
            try:
                RewardConfig.from_dict(rw.engine)
            except (TypeError, ValueError) as exc:
                raise InvalidConfig("reward.engine", str(exc)) from None
        if rw.where == "service":
            svc = rw.service
            if svc is None or bool(svc.urls) == (svc.start is not None):
                raise InvalidConfig("reward.service", "reward.where is service: give either service.urls "
                                                      "(running services) or service.start (start one)")
            if svc.urls and rw.engine:
                raise InvalidConfig("reward.engine", "running services (service.urls) score with their own "
                                                     "settings (acecoder-rl serve options): remove reward.engine, "
                                                     "or let the run start its service (service.start)")
        elif rw.service is not None:
            raise InvalidConfig("reward.service", f"only used with reward.where: service (it is {rw.where})")

    def _check_algorithm(self) -> None:
        a = self.algorithm
        if a.name in GROUP_BASELINE_ALGORITHMS and a.samples_per_prompt < 2:
            raise InvalidConfig("algorithm.samples_per_prompt",
                                f"{a.name} subtracts a per-prompt baseline; with 1 sample per prompt every "
                                "advantage is 0 and nothing is learned: use 2 or more (AceCoder used 8)")
        if a.kl_as_loss and a.kl_coef == 0:
            raise InvalidConfig("algorithm.kl_as_loss", "kl_coef is 0, so there is no KL term to use as a loss")
        if a.dynamic_filtering is not None:
            low, high = a.dynamic_filtering
            if not 0 <= low < high <= 1:
                raise InvalidConfig("algorithm.dynamic_filtering",
                                    f"[{low}, {high}] must satisfy 0 <= low < high <= 1 (scores are pass rates)")
            if a.samples_per_prompt < 2:
                raise InvalidConfig("algorithm.dynamic_filtering",
                                    "filters prompts by the spread of their samples' scores: needs "
                                    "samples_per_prompt >= 2")
            if self.reward.where == "reward_model":
                raise InvalidConfig("algorithm.dynamic_filtering",
                                    "needs 0-1 scores from a remote reward (OpenRLHF): not with reward_model")

    def _check_checkpoints(self) -> None:
        steps = self.checkpoints.save_steps
        if steps == 0 or steps < -1:
            raise InvalidConfig("checkpoints.save_steps", f"{steps}: use -1 (final model only) or a positive "
                                                          "number of steps")


def _keys_for_other_backends(section: BaseModel, backend: str,
                             prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """The keys the config sets that only other backends read, with those backends. Set: given in a file of
    the ``extends`` chain (``model_fields_set``), even at its default, and not null (which unsets a key a
    base set). A section of another backend is named by the first key set inside it (``resources.nodes``),
    so that the error names the file that set it."""
    for name, field in type(section).model_fields.items():
        key, value = prefix + name, getattr(section, name)
        if name not in section.model_fields_set or value is None:
            continue
        extra = field.json_schema_extra
        backends = extra.get("backends") if isinstance(extra, dict) else None
        if backends is not None and backend not in backends:
            yield _first_key_set(value, key), backends
        elif isinstance(value, BaseModel):
            yield from _keys_for_other_backends(value, backend, key + ".")


def _first_key_set(value: object, key: str) -> str:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name in value.model_fields_set:
                return _first_key_set(getattr(value, name), f"{key}.{name}")
    return key


# --- loading ---------------------------------------------------------------------------------------------


def load_run_config(path: str | Path) -> RunConfig:
    """Load, merge (``extends``) and validate a run config file; errors name the file and the key."""
    layered = load_layered(path)
    return run_config_from_layers(layered)


def run_config_from_layers(layered: LayeredYaml) -> RunConfig:
    try:
        return RunConfig.model_validate(layered.data)
    except InvalidConfig as exc:
        key = tuple(exc.key.split("."))
        raise AcecoderError(f"{_where(layered, key)}: {exc.key}: {exc.message}") from None
    except ValidationError as exc:
        raise AcecoderError(_format_validation_error(layered, exc)) from None


def _where(layered: LayeredYaml, key: tuple[str, ...]) -> str:
    origin = layered.origin(key)
    if origin == layered.path:
        return str(origin)
    return f"{layered.path} (key set in {origin})"


def _format_validation_error(layered: LayeredYaml, exc: ValidationError) -> str:
    messages = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            text = f"unknown key; known keys here: {', '.join(known)}"
        elif err["type"] == "missing":
            text = "required key is missing"
        else:
            text = f"{err['msg']} (got {err.get('input')!r})"
        messages.append(f"{_where(layered, loc)}: {key}: {text}")
    more = f" (and {len(messages) - 1} more: {'; '.join(messages[1:])})" if len(messages) > 1 else ""
    return messages[0] + more


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: Any = RunConfig
    for part in loc:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = _model_of(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _model_of(annotation: Any) -> Any:
    """The BaseModel inside ``X`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None
