"""Config -> OpenRLHF flags: the mapping rules that the golden files pin case by case."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from acecoder_rl.train.config import RunConfig
from acecoder_rl.train.openrlhf.command import (
    TRAINER_MODULE,
    TRAINER_MODULE_ENV,
    TrainerFiles,
    format_command,
    openrlhf_args,
    reward_env,
    trainer_argv,
)

BASE = Path("/launch")
RUN = {
    "name": "r",
    "model": {"pretrain": "Qwen/Qwen2.5-Coder-7B"},
    "data": {"path": "out/train.jsonl", "prompt_max_len": 1000, "generate_max_len": 3000},
    "resources": {"nodes": 1, "gpus_per_node": 8},
}


def config(**changes) -> RunConfig:
    data = json.loads(json.dumps(RUN))
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    return RunConfig.model_validate(data)


def args_of(cfg: RunConfig, resume: bool = False) -> list[str]:
    return openrlhf_args(cfg, TrainerFiles.shipped(cfg, BASE), resume=resume)


def value(args: list[str], flag: str, n: int = 1) -> list[str] | str:
    i = args.index(flag)
    return args[i + 1] if n == 1 else args[i + 1: i + 1 + n]


@pytest.mark.parametrize("name, estimator", [("reinforce_pp", "reinforce"), ("reinforce_pp_baseline",
                         "reinforce_baseline"), ("grpo", "group_norm"), ("rloo", "rloo")])
def test_estimators(name, estimator):
    args = args_of(config(algorithm={"name": name}))
    assert value(args, "--algo.advantage.estimator") == estimator
    assert "--critic.model_name_or_path" not in args and "--critic.adam.lr" not in args


def test_ppo_gets_gae_and_its_critic():
    cfg = config(model={"critic": "Qwen/Qwen2.5-Coder-7B"}, algorithm={"name": "ppo", "critic_lr": 9e-6})
    args = args_of(cfg)
    assert value(args, "--algo.advantage.estimator") == "gae"
    assert value(args, "--critic.model_name_or_path") == "Qwen/Qwen2.5-Coder-7B"
    assert value(args, "--critic.adam.lr") == "9e-06"
    assert value(args, "--critic.num_gpus_per_node") == "8"
    assert value(args, "--reward.remote_url") == "openrlhf_reward.py"  # the test reward still scores


def test_lengths_become_one_budget_and_a_cap():
    args = args_of(config())
    assert value(args, "--data.max_len") == "4000" and value(args, "--rollout.max_new_tokens") == "3000"


def test_no_reference_without_kl():
    cfg = config(algorithm={"kl_coef": 0.0}, resources={"colocate": "actor_ref", "actor_gpus": 4, "vllm_engines": 4})
    args = args_of(cfg)
    assert not any(a.startswith("--ref.") for a in args)
    assert "--train.colocate_actor_ref" not in args and "--algo.kl.estimator" not in args
    assert value(args, "--algo.kl.init_coef") == "0.0"


def test_hybrid_engine_flags():
    args = args_of(config(resources={"sleep": True}))
    for switch in ("--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"):
        assert switch in args
    assert value(args, "--vllm.num_engines") == "8"


def test_multi_node_roles():
    cfg = config(resources={"nodes": 2, "colocate": "actor_ref", "actor_gpus": 8, "vllm_engines": 4,
                            "vllm_tensor_parallel_size": 2})
    args = args_of(cfg)
    assert (value(args, "--actor.num_nodes"), value(args, "--actor.num_gpus_per_node")) == ("1", "8")
    assert value(args, "--vllm.tensor_parallel_size") == "2"
    cfg = config(resources={"nodes": 2, "colocate": "all"})
    assert (value(args_of(cfg), "--actor.num_nodes"), value(args_of(cfg), "--actor.num_gpus_per_node")) == ("2", "8")


def test_resume_and_checkpoint_paths_are_absolute():
    cfg = config(checkpoints={"save_path": "ckpt/{name}", "output_dir": "/shared/final/{name}"})
    args = args_of(cfg)
    assert value(args, "--ckpt.path") == "/launch/ckpt/r" and value(args, "--ckpt.output_dir") == "/shared/final/r"
    assert "--ckpt.load_enable" not in args
    assert args_of(cfg, resume=True).count("--ckpt.load_enable") == 1
    assert args_of(config(checkpoints={"load_checkpoint": True}), resume=True).count("--ckpt.load_enable") == 1


def test_wandb_switch_carries_no_secret():
    args = args_of(config(logging={"wandb": {"project": "p", "group": "g"}}))
    assert value(args, "--logger.wandb.key") == "env:WANDB_API_KEY"
    assert (value(args, "--logger.wandb.project"), value(args, "--logger.wandb.group")) == ("p", "g")
    assert "--logger.wandb.key" not in args_of(config())


def test_dynamic_filtering_and_asymmetric_clip():
    args = args_of(config(algorithm={"dynamic_filtering": [0.0, 1.0], "eps_clip": 0.2, "eps_clip_high": 0.28}))
    assert "--algo.dynamic_filtering_enable" in args
    assert value(args, "--algo.dynamic_filtering_range", 2) == ["0.0", "1.0"]
    assert value(args, "--actor.eps_clip_low_high", 2) == ["0.2", "0.28"]


def test_learned_reward_model_replaces_the_plugin():
    cfg = config(model={"reward_model": "TIGER-Lab/AceCodeRM-7B", "value_head_prefix": "summary"},
                 reward={"where": "reward_model"})
    args = args_of(cfg)
    assert "--reward.remote_url" not in args
    assert value(args, "--reward.model_name_or_path") == "TIGER-Lab/AceCodeRM-7B"
    assert value(args, "--ds.value_head_prefix") == "summary"
    assert value(args, "--reward.num_gpus_per_node") == "8"
    assert reward_env(cfg) == {}


def test_files_shipped_or_local():
    cfg = config()
    shipped = TrainerFiles.shipped(cfg, BASE)
    assert (shipped.data, shipped.plugin) == ("data/train.jsonl", "openrlhf_reward.py")
    on_shared = TrainerFiles.shipped(config(data={"ship": False, "path": "/shared/d/train.parquet"}), BASE)
    assert on_shared.data == "/shared/d/train.parquet"
    local = TrainerFiles.local(cfg, BASE, Path("/src/reward_fns/openrlhf_reward.py"))
    assert (local.data, local.plugin) == ("/launch/out/train.jsonl", "/src/reward_fns/openrlhf_reward.py")


def test_reward_env_per_backend():
    engine = {"mode": "binary", "all_pass_bonus": 0.5}
    assert reward_env(config(reward={"engine": engine})) == {
        "ACECODER_REWARD_CONFIG": '{"all_pass_bonus":0.5,"mode":"binary"}'}
    env = reward_env(config(reward={"where": "service", "service": {"urls": ["http://a:5000", "http://b:5000"]}}))
    assert env == {"ACECODER_REWARD_URL": "http://a:5000,http://b:5000"}  # the service has its own settings
    started = config(reward={"where": "service", "engine": engine, "service": {"start": {"port": 5001}}})
    assert reward_env(started, ["http://head:5001"]) == {"ACECODER_REWARD_URL": "http://head:5001"}
    assert reward_env(config(reward={"where": "ray_pool", "engine": engine})) == {
        "ACECODER_REWARD_CONFIG": '{"all_pass_bonus":0.5,"mode":"binary"}', "ACECODER_REWARD_RAY": "1"}


def test_trainer_module_override(monkeypatch):
    cfg = config()
    monkeypatch.delenv(TRAINER_MODULE_ENV, raising=False)
    assert trainer_argv(cfg, TrainerFiles.shipped(cfg, BASE))[:3] == ["python3", "-m", TRAINER_MODULE]
    monkeypatch.setenv(TRAINER_MODULE_ENV, "fake_trainer")
    assert trainer_argv(cfg, TrainerFiles.shipped(cfg, BASE))[2] == "fake_trainer"


def test_format_command_round_trips():
    cfg = config(data={"path": "out/it's here.jsonl"})
    argv = trainer_argv(cfg, TrainerFiles.local(cfg, BASE, Path("/a b/openrlhf_reward.py")))
    assert "/launch/out/it's here.jsonl" in argv
    text = format_command(argv)
    assert text.splitlines()[1].startswith("    --")
    assert shlex.split(text.replace("\\\n", " ")) == argv
