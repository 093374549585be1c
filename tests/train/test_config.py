"""Run configs: strict YAML with extends, and every impossible combination refused with file, key and why."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import RunConfig, load_run_config
from acecoder_rl.train.openrlhf.layout import placement, role_gpus, vllm_engines

REPO = Path(__file__).resolve().parents[2]

# A valid single-node run (hybrid engine on 8 GPUs); each test breaks one thing.
VALID = {
    "name": "t",
    "model": {"pretrain": "Qwen/Qwen2.5-Coder-7B"},
    "data": {"path": "out/train.jsonl"},
    "algorithm": {"name": "reinforce_pp", "samples_per_prompt": 8, "rollout_batch_size": 256,
                  "train_batch_size": 128, "micro_train_batch_size": 8, "micro_rollout_batch_size": 8},
    "resources": {"nodes": 1, "gpus_per_node": 8, "colocate": "all"},
}


def with_changes(**sections) -> dict:
    data = copy.deepcopy(VALID)
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section].update(values)
        else:
            data[section] = values
    return data


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_error(tmp_path: Path, data: dict) -> str:
    path = write(tmp_path / "run.yaml", data)
    with pytest.raises(AcecoderError) as info:
        load_run_config(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    return message


def test_valid_config_defaults():
    cfg = RunConfig.model_validate(VALID)
    assert cfg.backend == "openrlhf"
    assert cfg.data.input_key == "context_messages" and cfg.data.label_key == "test_cases"
    assert role_gpus(cfg) == {"actor": 8, "ref": 8}
    assert vllm_engines(cfg) == 8


def test_paper_config_numbers():
    cfg = load_run_config(REPO / "configs" / "paper" / "reinforce_pp_coder7b_base.yaml")
    a, r = cfg.algorithm, cfg.resources
    assert (cfg.model.pretrain, a.name, a.rollout_batch_size, a.samples_per_prompt, a.train_batch_size) == (
        "Qwen/Qwen2.5-Coder-7B", "reinforce_pp", 256, 8, 128)
    assert (a.actor_lr, a.kl_coef, a.episodes) == (5e-7, 0.01, 1)
    assert (cfg.data.prompt_max_len, cfg.data.generate_max_len, r.zero_stage, r.dtype) == (2048, 2048, 3, "bf16")
    assert r.nodes * r.gpus_per_node == 8
    ppo = load_run_config(REPO / "configs" / "paper" / "ppo_coder7b_base.yaml")
    assert ppo.algorithm.name == "ppo" and ppo.algorithm.critic_lr == 9e-6 and ppo.model.critic


def test_unknown_key_names_key_and_known_keys(tmp_path):
    message = load_error(tmp_path, with_changes(algorithm={"sampels_per_prompt": 4}))
    assert "algorithm.sampels_per_prompt: unknown key" in message and "samples_per_prompt" in message


def test_unknown_top_level_section(tmp_path):
    assert "optimizer: unknown key" in load_error(tmp_path, with_changes(optimizer={"lr": 1}))


def test_bad_literal_names_key(tmp_path):
    message = load_error(tmp_path, with_changes(algorithm={"name": "reinforce++"}))
    assert "algorithm.name" in message and "reinforce++" in message


def test_missing_required_key(tmp_path):
    data = with_changes()
    del data["model"]
    assert "model: required key is missing" in load_error(tmp_path, data)


def test_extends_deep_merges_relative_to_the_file(tmp_path):
    (tmp_path / "bases").mkdir()
    write(tmp_path / "bases" / "base.yaml", with_changes(resources={"zero_stage": 2, "env_vars": {"A": "1"}}))
    child = tmp_path / "runs" / "child.yaml"
    child.parent.mkdir()
    child.write_text("extends: ../bases/base.yaml\nname: child\nresources:\n  env_vars: {B: '2'}\n"
                     "algorithm: {kl_coef: 0.0}\n")
    cfg = load_run_config(child)
    assert cfg.name == "child" and cfg.resources.zero_stage == 2
    assert cfg.resources.env_vars == {"A": "1", "B": "2"}  # mappings merge key by key
    assert cfg.algorithm.kl_coef == 0.0 and cfg.algorithm.samples_per_prompt == 8
    assert "ref" not in role_gpus(cfg)


def test_lists_and_null_replace(tmp_path):
    write(tmp_path / "base.yaml", with_changes(algorithm={"dynamic_filtering": [0.0, 1.0]},
                                               logging={"tensorboard_dir": "tb"}))
    (tmp_path / "run.yaml").write_text("extends: base.yaml\nalgorithm: {dynamic_filtering: [0.1, 0.9]}\n"
                                       "logging: {tensorboard_dir: null}\n")
    cfg = load_run_config(tmp_path / "run.yaml")
    assert cfg.algorithm.dynamic_filtering == (0.1, 0.9) and cfg.logging.tensorboard_dir is None


def test_error_in_inherited_key_names_the_base_file(tmp_path):
    write(tmp_path / "base.yaml", with_changes(resources={"zero_stage": 5}))
    (tmp_path / "run.yaml").write_text("extends: base.yaml\nname: r\n")
    with pytest.raises(AcecoderError) as info:
        load_run_config(tmp_path / "run.yaml")
    assert f"(key set in {tmp_path / 'base.yaml'}): resources.zero_stage" in str(info.value)


def test_cross_field_error_names_the_file_that_set_the_key(tmp_path):
    write(tmp_path / "base.yaml", with_changes())
    (tmp_path / "run.yaml").write_text("extends: base.yaml\nalgorithm: {name: rloo, samples_per_prompt: 1}\n")
    with pytest.raises(AcecoderError) as info:
        load_run_config(tmp_path / "run.yaml")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'run.yaml'}: algorithm.samples_per_prompt:") and "key set in" not in message


def test_extends_cycle_and_missing_base(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(AcecoderError, match="'extends' cycle"):
        load_run_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(AcecoderError, match="extends: 'nowhere.yaml' not found"):
        load_run_config(tmp_path / "c.yaml")


def test_duplicate_keys_and_bad_yaml_name_the_line(tmp_path):
    (tmp_path / "dup.yaml").write_text("name: a\nmodel: {pretrain: m}\nname: b\n")
    with pytest.raises(AcecoderError, match=r"dup.yaml:3:1: invalid YAML: duplicate key 'name'"):
        load_run_config(tmp_path / "dup.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(AcecoderError, match="expected a YAML mapping"):
        load_run_config(tmp_path / "list.yaml")


@pytest.mark.parametrize("algorithm", ["rloo", "grpo", "reinforce_pp_baseline"])
def test_group_baseline_with_one_sample_is_refused(tmp_path, algorithm):
    message = load_error(tmp_path, with_changes(algorithm={"name": algorithm, "samples_per_prompt": 1,
                                                           "train_batch_size": 64}))
    assert "algorithm.samples_per_prompt" in message and "every advantage is 0" in message


def test_reinforce_pp_with_one_sample_is_fine():
    RunConfig.model_validate(with_changes(algorithm={"samples_per_prompt": 1}))


def test_ppo_needs_a_critic_and_only_ppo_has_one(tmp_path):
    assert "model.critic: algorithm ppo" in load_error(tmp_path, with_changes(algorithm={"name": "ppo"}))
    message = load_error(tmp_path, with_changes(model={"pretrain": "m", "critic": "m"}))
    assert "model.critic: only ppo uses a critic" in message


@pytest.mark.parametrize("resources, key, fragment", [
    ({"colocate": "none", "actor_gpus": 4, "ref_gpus": 2, "vllm_engines": 4}, "resources:",
     "the roles use 10 GPUs (actor 4 + vLLM 4 + ref 2) but 1 node(s) x 8 = 8 are declared"),
    ({"colocate": "actor_ref", "actor_gpus": 4, "vllm_engines": 2}, "resources:", "use 6 GPUs"),
    ({"colocate": "actor_ref", "actor_gpus": 4, "ref_gpus": 2, "vllm_engines": 4}, "resources.ref_gpus",
     "must equal actor_gpus=4"),
    ({"colocate": "actor_ref", "vllm_engines": 4}, "resources.actor_gpus", "required with colocate: actor_ref"),
    ({"colocate": "actor_ref", "actor_gpus": 4}, "resources.vllm_engines", "required"),
    ({"vllm_engines": 4}, "resources.vllm_engines", "4 engines x TP 1 = 4"),
    ({"actor_gpus": 4}, "resources.actor_gpus", "must be 8, not 4"),
    ({"vllm_tensor_parallel_size": 16}, "resources.vllm_tensor_parallel_size", "one vLLM engine must fit"),
    ({"colocate": "actor_ref", "sleep": True, "actor_gpus": 4, "vllm_engines": 4}, "resources.sleep",
     "needs colocate: all"),
    ({"critic_gpus": 8}, "resources.critic_gpus", "only ppo has a critic"),
    ({"nodes": 2, "colocate": "none", "actor_gpus": 12, "ref_gpus": 2, "vllm_engines": 2},
     "resources.actor_gpus", "12 GPUs cannot be placed on 2 node(s) of 8"),
    ({"vllm_engines": 0, "packing_samples": True, "colocate": "actor_ref", "actor_gpus": 8},
     "resources.packing_samples", "only with vLLM"),
    ({"env_vars": {"NCCL_DEBUG": "INFO"}}, "resources.env_vars.NCCL_DEBUG", "runtime env conflict"),
    ({"env_vars": {"ACECODER_REWARD_URL": "x"}}, "resources.env_vars.ACECODER_REWARD_URL", "set by the launcher"),
])
def test_resource_layouts_that_cannot_work(tmp_path, resources, key, fragment):
    message = load_error(tmp_path, with_changes(resources=resources))
    assert f": {key}" in message and fragment in message, message


def test_layouts_that_add_up(tmp_path):
    two_nodes = {"nodes": 2, "colocate": "actor_ref", "actor_gpus": 8, "vllm_engines": 8}
    cfg = RunConfig.model_validate(with_changes(resources=two_nodes))
    assert {role: (p.nodes, p.gpus_per_node) for role, p in placement(cfg).items()} == {
        "actor": (1, 8), "ref": (1, 8)}
    ppo = with_changes(model={"pretrain": "m", "critic": "m"}, algorithm={"name": "ppo", "micro_train_batch_size": 4},
                       resources={"nodes": 2, "colocate": "none", "actor_gpus": 8, "ref_gpus": 2,
                                  "critic_gpus": 2, "vllm_engines": 4})
    assert role_gpus(RunConfig.model_validate(ppo)) == {"actor": 8, "ref": 2, "critic": 2}


@pytest.mark.parametrize("algorithm, fragment", [
    ({"train_batch_size": 100}, "100 is not a multiple of micro_train_batch_size x actor GPUs = 8 x 8 = 64"),
    ({"train_batch_size": 192, "micro_train_batch_size": 4}, "2048 samples, not a whole number of training batches"),
    ({"rollout_batch_size": 4, "samples_per_prompt": 2, "train_batch_size": 8, "micro_train_batch_size": 1,
      "micro_rollout_batch_size": 2}, "leave some of the 8 actor GPUs without work"),
])
def test_batch_sizes_must_divide(tmp_path, algorithm, fragment):
    assert fragment in load_error(tmp_path, with_changes(algorithm=algorithm))


def test_critic_batch_checked_on_its_own_gpus(tmp_path):
    ppo = with_changes(model={"pretrain": "m", "critic": "m"}, algorithm={"name": "ppo", "micro_train_batch_size": 8},
                       resources={"colocate": "actor_ref", "actor_gpus": 4, "critic_gpus": 3, "vllm_engines": 1})
    assert "micro_train_batch_size x critic GPUs = 8 x 3" in load_error(tmp_path, ppo)


@pytest.mark.parametrize("changes, fragment", [
    ({"reward": {"engine": {"mode": "pass_rate", "bonus": 1}}}, "reward.engine: unknown reward config key(s): bonus"),
    ({"reward": {"engine": {"memory_mb": 10}}}, "reward.engine: RewardConfig.memory_mb=10 is too small"),
    ({"reward": {"where": "service"}}, "reward.service: reward.where is service"),
    ({"reward": {"where": "service", "service": {"urls": ["http://a:1"], "start": {"port": 5000}}}},
     "either service.urls"),
    ({"reward": {"where": "service", "service": {"start": {}}, "engine": {"isolation": "bwrap"}}},
     "reward.engine.isolation: `acecoder-rl serve` has no option for it"),
    ({"reward": {"where": "service", "service": {"start": {}}, "engine": {"workers": 4}}},
     "reward.service.start.workers"),
    ({"reward": {"service": {"urls": ["http://a:1"]}}}, "only used with reward.where: service"),
    ({"reward": {"where": "service", "service": {"urls": ["http://a:1"]}, "engine": {"mode": "binary"}}},
     "reward.engine: running services (service.urls) score with their own settings"),
    ({"reward": {"where": "reward_model"}}, "model.reward_model: reward.where is reward_model"),
    ({"model": {"pretrain": "m", "reward_model": "rm"}}, "the reward model would be ignored"),
    ({"algorithm": {"dynamic_filtering": [0.5, 0.2]}}, "0 <= low < high <= 1"),
    ({"algorithm": {"kl_coef": 0.0, "kl_as_loss": True}}, "no KL term"),
    ({"checkpoints": {"save_path": "runs/{run}/ckpt"}}, "only {name} can be substituted, not {run}"),
    ({"reward": {"where": "service", "service": {"start": {"log_path": "{host}.log"}}}},
     "reward.service.start.log_path: '{host}.log': only {name} can be substituted"),
    ({"reward": {"where": "service", "service": {"start": {"unhealthy_after_s": 0}}}},
     "reward.service.start.unhealthy_after_s"),
    ({"data": {"path": "a,b.jsonl"}}, "splits dataset names"),
    ({"checkpoints": {"save_steps": 0}}, "checkpoints.save_steps: 0: use -1"),
    ({"data": {"path": "out/train.csv"}}, "must be .jsonl, .json or .parquet"),
    ({"name": "bad name"}, "name: 'bad name' must be letters"),
    ({"backend": "local"}, "backend"),
])
def test_other_impossible_combinations(tmp_path, changes, fragment):
    assert fragment in load_error(tmp_path, with_changes(**changes))


def test_reward_model_run(tmp_path):
    data = with_changes(model={"pretrain": "m", "reward_model": "TIGER-Lab/AceCodeRM-7B", "value_head_prefix": "summary"},
                        reward={"where": "reward_model"})
    cfg = RunConfig.model_validate(data)
    assert role_gpus(cfg) == {"actor": 8, "ref": 8, "reward_model": 8}
    assert "reward.engine: a learned reward model runs no tests" in load_error(
        tmp_path, {**data, "reward": {"where": "reward_model", "engine": {"mode": "binary"}}})
