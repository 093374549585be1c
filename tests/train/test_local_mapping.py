"""backend: local: each algorithm onto TRL 1.16 honestly, or refused with the key and the way out."""
from __future__ import annotations

import copy

import pytest

from acecoder_rl.errors import InvalidConfig
from acecoder_rl.train.config import RunConfig
from acecoder_rl.train.local.mapping import plan_trl

# A valid local run; each test changes one thing.
LOCAL = {
    "name": "t",
    "backend": "local",
    "model": {"pretrain": "builtin:tiny-llama"},
    "data": {"path": "builtin:quickstart", "generate_max_len": 3},
    "algorithm": {"name": "grpo", "samples_per_prompt": 4, "rollout_batch_size": 6, "train_batch_size": 12,
                  "micro_train_batch_size": 6, "kl_coef": 0.01, "kl_as_loss": True, "kl_estimator": "k3",
                  "actor_lr": 1e-3, "eps_clip": 0.2, "eps_clip_high": 0.28, "max_epochs": 2, "episodes": 3,
                  "seed": 7},
    "checkpoints": {"save_steps": 5, "max_num": 2},
}

RLOO = {"name": "rloo", "kl_as_loss": False, "kl_estimator": "k1"}


def local(**algorithm) -> dict:
    data = copy.deepcopy(LOCAL)
    data["algorithm"].update(algorithm)
    return data


def refusal(data: dict) -> InvalidConfig:
    with pytest.raises(InvalidConfig) as info:
        RunConfig.model_validate(data)
    return info.value


def test_grpo_maps_onto_grpo_trainer_with_group_scaling():
    plan = plan_trl(RunConfig.model_validate(LOCAL))
    assert (plan.trainer, plan.config_class) == ("GRPOTrainer", "GRPOConfig")
    args = plan.args
    assert (args["scale_rewards"], args["loss_type"]) == ("group", "dapo")
    assert (args["num_generations"], args["generation_batch_size"]) == (4, 24)  # 6 prompts x 4 samples
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (6, 2)
    assert (args["beta"], args["epsilon"], args["epsilon_high"]) == (0.01, 0.2, 0.28)
    assert (args["num_iterations"], args["num_train_epochs"], args["max_completion_length"]) == (2, 3, 3)
    assert (args["learning_rate"], args["seed"], args["run_name"]) == (1e-3, 7, "t")
    assert (args["save_strategy"], args["save_steps"], args["save_total_limit"]) == ("steps", 5, 2)
    assert args["lr_scheduler_type"] == "cosine_with_min_lr"
    assert args["lr_scheduler_kwargs"] == {"min_lr_rate": 0.1}


def test_reinforce_pp_baseline_is_grpo_with_batch_scaling():
    plan = plan_trl(RunConfig.model_validate(local(name="reinforce_pp_baseline")))
    assert plan.trainer == "GRPOTrainer" and plan.args["scale_rewards"] == "batch"
    assert any("whitens per token" in note for note in plan.notes)


def test_rloo_maps_onto_rloo_trainer_with_kl_in_the_reward():
    plan = plan_trl(RunConfig.model_validate(local(**RLOO)))
    assert (plan.trainer, plan.config_class) == ("RLOOTrainer", "RLOOConfig")
    assert plan.args["normalize_advantages"] is False and plan.args["beta"] == 0.01
    assert "scale_rewards" not in plan.args and "loss_type" not in plan.args


def test_no_reference_model_allows_any_kl_placement():
    plan = plan_trl(RunConfig.model_validate(local(kl_coef=0.0, kl_as_loss=False, kl_estimator="k1")))
    assert plan.args["beta"] == 0.0


def test_final_model_only_disables_checkpoints():
    data = copy.deepcopy(LOCAL)
    data["checkpoints"] = {"save_steps": -1}
    args = plan_trl(RunConfig.model_validate(data)).args
    assert args["save_strategy"] == "no" and "save_steps" not in args


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"name": "ppo"}, "algorithm.name", "no PPO trainer: use backend: openrlhf"),
    ({"name": "reinforce_pp"}, "algorithm.name", "per-prompt baselines"),
    ({"kl_as_loss": False}, "algorithm.kl_as_loss", "k3 loss term: set kl_as_loss: true"),
    ({"kl_estimator": "k1"}, "algorithm.kl_estimator", "set kl_estimator: k3"),
    ({**RLOO, "kl_as_loss": True}, "algorithm.kl_as_loss", "k1 penalty on the reward: set kl_as_loss: false"),
    ({**RLOO, "kl_estimator": "k3"}, "algorithm.kl_estimator", "set kl_estimator: k1"),
    ({"normalize_reward": True}, "algorithm.normalize_reward", "no TRL counterpart"),
    ({"dynamic_filtering": [0.0, 1.0]}, "algorithm.dynamic_filtering", "use backend: openrlhf"),
    ({"lr_warmup_ratio": 1.0}, "algorithm.lr_warmup_ratio", "below 1"),
    ({"train_batch_size": 9}, "algorithm.train_batch_size", "not a multiple of micro_train_batch_size 6"),
    ({"train_batch_size": 18}, "algorithm.train_batch_size", "not a whole number of training batches of 18"),
])
def test_what_trl_cannot_do_is_refused(change, key, words):
    error = refusal(local(**change))
    assert error.key == key and words in error.message, error.message


def test_ppo_is_refused_for_the_backend_before_asking_for_a_critic():
    data = local(name="ppo")
    assert refusal(data).key == "algorithm.name"  # not "model.critic": the critic would not help here


@pytest.mark.parametrize(("section", "values", "key"), [
    ("reward", {"where": "reward_model"}, "reward.where"),
    ("data", {"apply_chat_template": False}, "data.apply_chat_template"),
    ("model", {"pretrain": "builtin:huge"}, "model.pretrain"),
])
def test_inputs_the_local_backend_cannot_use(section, values, key):
    data = copy.deepcopy(LOCAL)
    data[section] = {**data.get(section, {}), **values}
    assert refusal(data).key == key


@pytest.mark.parametrize("algorithm", [{}, {"name": "reinforce_pp_baseline"}, RLOO])
def test_trl_accepts_every_planned_option(algorithm, tmp_path):
    """The mapped names are real fields of TRL 1.16's config classes, with values TRL accepts."""
    import trl

    plan = plan_trl(RunConfig.model_validate(local(**algorithm)))
    args = getattr(trl, plan.config_class)(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[],
                                           **plan.args)
    assert args.num_generations == 4 and args.generation_batch_size == 24 and args.steps_per_generation == 4


def test_describe_lists_every_option():
    plan = plan_trl(RunConfig.model_validate(LOCAL))
    text = plan.describe()
    assert text.startswith("trl.GRPOTrainer with trl.GRPOConfig(")
    assert all(f"    {key}=" in text for key in plan.args)
