"""Run a ``backend: local`` config: TRL on this machine, rewards from a sandboxed engine in this process.

The steps, each in its own module: map the config onto TRL (:mod:`.mapping`), pick the run directory
(:mod:`.rundir`), build a built-in model if asked (:mod:`.builtin_model`), load the rows (:mod:`.data`),
then hand everything to TRL's trainer with the project's reward (:class:`~acecoder_rl.integrations.TRLReward`
over one :class:`~acecoder_rl.reward.RewardEngine` configured by ``reward.engine``) and the callbacks that
write ``metrics.jsonl`` and show progress (:mod:`.callbacks`). At the end: the final model in ``model/``,
``reward_curve.png`` and the first-vs-last reward summary (:mod:`.curve`).

Devices: ``local.device`` ``cpu``, ``cuda`` (one GPU, bf16 mixed precision when the GPU has it; weights and
optimizer stay fp32) or ``auto``. Logs: TensorBoard in ``<run dir>/tensorboard`` (when the ``tensorboard``
package is installed), W&B when ``logging.wandb`` is set.
"""
from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import RunConfig
from acecoder_rl.train.local.mapping import TRLPlan, plan_trl

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "reward_curve.png"
FINAL_MODEL_DIR = "model"
TENSORBOARD_DIR = "tensorboard"


def run_local(cfg: RunConfig, *, output_dir: Path | None, resume: bool, dry_run: bool,
              echo: Callable[[str], None]) -> None:
    """Train ``cfg`` on this machine to its end (``dry_run``: print the TRL settings instead)."""
    from acecoder_rl.train.local.rundir import new_run_dir, resume_run_dir

    plan = plan_trl(cfg)
    if dry_run:
        echo(f"# {cfg.name}: backend local, model {cfg.model.pretrain}, data {cfg.data.path}, "
             f"device {cfg.local.device}")
        echo(plan.describe())
        return
    if importlib.util.find_spec("trl") is None:
        raise AcecoderError("backend: local trains with TRL: pip install 'trl==1.16.0' (in the dev and train "
                            "extras)")
    if resume:
        run_dir, checkpoint = resume_run_dir(cfg.name, output_dir)
        echo(f"acecoder-rl: resuming {run_dir} from {checkpoint.name}")
    else:
        run_dir, checkpoint = new_run_dir(cfg.name, output_dir), None
        echo(f"acecoder-rl: run directory {run_dir}")
    _train(cfg, plan, run_dir, checkpoint, echo)


def _train(cfg: RunConfig, plan: TRLPlan, run_dir: Path, checkpoint: Path | None,
           echo: Callable[[str], None]) -> None:
    import trl
    from transformers import AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as transformers_logging

    from acecoder_rl.integrations import TRLReward
    from acecoder_rl.reward import RewardConfig, RewardEngine
    from acecoder_rl.train.local.callbacks import MetricsWriter, RewardProgress
    from acecoder_rl.train.local.curve import curve_summary, plot_reward_curve
    from acecoder_rl.train.local.data import load_training_rows
    from acecoder_rl.train.local.metrics import REWARD_NAME, read_metrics

    transformers_logging.disable_progress_bar()  # weight loading/saving bars would bury the training bar
    device_args = _device_args(cfg.local.device)
    model = _model_path(cfg, run_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except OSError as exc:  # not on the Hub, no network, not a model directory
        raise AcecoderError(f"model.pretrain: cannot load {model!r}: {exc}") from None
    if not tokenizer.chat_template:
        raise AcecoderError(f"model.pretrain: {cfg.model.pretrain!r} has no chat template, which the prompts "
                            "(chat messages) need")
    rows = load_training_rows(cfg.data, tokenizer)
    if rows.too_long:
        echo(f"acecoder-rl: left out {rows.too_long} rows whose prompt is over data.prompt_max_len="
             f"{cfg.data.prompt_max_len} tokens")
    callbacks: list[Any] = [MetricsWriter(run_dir / METRICS_FILE), RewardProgress()]
    callbacks += _tensorboard(run_dir / TENSORBOARD_DIR, echo)
    report_to = _start_wandb(cfg, run_dir)
    args = getattr(trl, plan.config_class)(output_dir=str(run_dir), report_to=report_to, disable_tqdm=True,
                                           **device_args, **plan.args)
    with RewardEngine(RewardConfig.from_dict(cfg.reward.engine)) as engine:
        reward = TRLReward(tests_column=rows.tests_column, name=REWARD_NAME, scorer=engine)
        trainer = getattr(trl, plan.trainer)(model=str(model), processing_class=tokenizer,
                                             reward_funcs=reward, args=args, train_dataset=rows.dataset,
                                             callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)  # the progress bar shows the reward, not every log dict
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        trainer.save_model(str(run_dir / FINAL_MODEL_DIR))
    if report_to:
        import wandb

        wandb.finish()
    lines = read_metrics(run_dir / METRICS_FILE)
    plot_reward_curve(lines, run_dir / CURVE_FILE, f"{cfg.name} ({cfg.algorithm.name}, {cfg.model.pretrain})")
    echo(f"acecoder-rl: {curve_summary(lines)}")
    echo(f"acecoder-rl: {run_dir / METRICS_FILE}, {run_dir / CURVE_FILE}, final model in "
         f"{run_dir / FINAL_MODEL_DIR}")


def _model_path(cfg: RunConfig, run_dir: Path) -> str:
    """A built-in model is written into the run directory first (TRL loads the policy and the reference
    model from a path); anything else is a Hub name or path as given."""
    from acecoder_rl.train.local.builtin_model import builtin_name, is_builtin, materialize

    model = cfg.model.pretrain
    if not is_builtin(model):
        return model
    return str(materialize(model, run_dir / f"builtin-{builtin_name(model)}", cfg.algorithm.seed))


def _device_args(device: str) -> dict[str, Any]:
    """TrainingArguments for ``local.device``: the CPU, or one GPU with bf16 autocast when it supports it."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise AcecoderError("local.device: cuda, but torch sees no CUDA GPU (use cpu or auto)")
    if device == "cpu" or not torch.cuda.is_available():
        return {"use_cpu": True, "bf16": False}
    return {"use_cpu": False, "bf16": torch.cuda.is_bf16_supported()}


def _tensorboard(log_dir: Path, echo: Callable[[str], None]) -> list[Any]:
    if importlib.util.find_spec("tensorboard") is None:
        echo("acecoder-rl: no TensorBoard logs: the tensorboard package is not installed (pip install "
             "tensorboard)")
        return []
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return [TensorBoardCallback(SummaryWriter(log_dir=str(log_dir)))]


def _start_wandb(cfg: RunConfig, run_dir: Path) -> list[str]:
    """Start the W&B run that transformers' callback then logs to (``report_to``); none without
    ``logging.wandb``. A resumed run continues the same W&B run (its id is the run directory's name)."""
    w = cfg.logging.wandb
    if w is None:
        return []
    if importlib.util.find_spec("wandb") is None:
        raise AcecoderError("logging.wandb: the wandb package is not installed (pip install wandb), or "
                            "remove logging.wandb")
    import wandb

    run_id = re.sub(r"[^A-Za-z0-9_-]", "-", run_dir.resolve().name)
    wandb.init(project=w.project, group=w.group, entity=w.org, name=cfg.name, id=run_id, resume="allow",
               dir=str(run_dir))
    return ["wandb"]
