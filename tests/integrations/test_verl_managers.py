"""reward_fns/verl_reward.py inside verl's own reward managers (verl 0.9.1, ``pip install --no-deps verl``
plus tensordict, codetiming, omegaconf, pyvers; skipped when verl is missing), each given a ``DataProto`` as
verl's rollout leaves it (left-padded prompts, right-padded responses ending in EOS, the parquet row's
columns as object arrays):

- verl <= 0.6's managers (``verl.workers.reward_manager``, shipped unchanged in call path by 0.9.1):
  ``naive`` and ``dapo`` with ``compute_score``, ``batch`` with ``compute_score_batch``, ``prime`` with
  ``compute_score_prime`` in its pool of forked processes, after the parent has scored itself;
- verl >= 0.7's reward loop: the config as ``main_ppo`` builds it (verl's composed default config, the
  user's overrides, ``migrate_legacy_reward_impl``), ``RewardLoopWorker`` with ``naive``, ``dapo`` and
  ``rate_limited``, and ``RewardLoopManager`` with its worker as a Ray actor.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from acecoder_rl.integrations.common import CONFIG_ENV, shared_scorer
from acecoder_rl.reward.results import SAMPLE_METRICS

verl = pytest.importorskip("verl", reason="verl is not installed (pip install --no-deps verl)")

import torch  # only with verl installed: part of its stack, not of this project's requirements
from verl import DataProto
from verl.trainer.ppo.reward import _call_with_kwargs

N_FIXTURE = 20
KEYS = {"score", "acc", *SAMPLE_METRICS}
ROOT = Path(__file__).resolve().parents[2]
PLUGIN_PATH = str(ROOT / "reward_fns" / "verl_reward.py")
PROMPT = "Write the function."
MALFORMED = 17  # a ground truth that is not a list of tests: the sample fails (0, reward_error = 1)


@pytest.fixture
def plugin(load_plugin):
    return load_plugin("verl_reward.py", "custom_module")


@pytest.fixture(scope="module")
def cases(items, reference) -> list[tuple[str, object, float]]:
    """(response, ground truth, expected reward): the fixture programs, half with their tests as parquet
    gives them (a numpy array), and one malformed row."""
    out = [(completion, np.array(tests, dtype=object) if i % 2 else tests, reward)
           for i, ((completion, tests), (reward, *_)) in enumerate(zip(items[:N_FIXTURE], reference))]
    return out + [(items[-1][0], MALFORMED, 0.0)]


def make_batch(tokenizer, cases: list[tuple[str, object, float]]) -> DataProto:
    """The batch verl's rollout hands to the reward: prompts left-padded, responses right-padded and ending
    in EOS, the attention mask over both; ``data_source``, ``reward_model`` and ``extra_info`` as object
    arrays, the way ``RLHFDataset``'s collate function builds them from the parquet row."""
    prompt_ids = tokenizer.encode(PROMPT, add_special_tokens=False)
    eos = tokenizer.eos_token_id
    responses = [tokenizer.encode(response, add_special_tokens=False) + [eos] for response, _, _ in cases]
    n, p, r = len(cases), len(prompt_ids), max(map(len, responses))
    prompts = torch.tensor([prompt_ids] * n)
    response_ids = torch.full((n, r), tokenizer.pad_token_id)
    mask = torch.zeros((n, p + r), dtype=torch.long)
    mask[:, :p] = 1
    for i, ids in enumerate(responses):
        response_ids[i, :len(ids)] = torch.tensor(ids)
        mask[i, p:p + len(ids)] = 1
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": response_ids, "attention_mask": mask,
                 "input_ids": torch.cat([prompts, response_ids], 1),
                 "position_ids": (mask.cumsum(1) - 1).clamp(min=0)},
        non_tensors={"data_source": np.array(["acecode"] * n, dtype=object),
                     "reward_model": np.array([{"style": "rule", "ground_truth": t} for _, t, _ in cases],
                                              dtype=object),
                     "extra_info": np.array([{"index": i, "split": "train"} for i in range(n)],
                                            dtype=object)},
    )


def rewards_of(tensor: torch.Tensor) -> list[float]:
    """Each sample's reward: verl puts it at the last response token, zeros elsewhere."""
    return tensor.sum(-1).tolist()


def check_extra_info(info: dict, cases: list) -> None:
    """Every sample carries every key, as floats: verl turns each key into one ``np.array`` column."""
    assert set(info) == KEYS
    columns = {key: np.array(values) for key, values in info.items()}
    assert all(c.shape == (len(cases),) and c.dtype == np.float64 for c in columns.values())
    assert columns["reward_error"].tolist() == [0.0] * (len(cases) - 1) + [1.0]


# ------------------------------------------------------------------------------ verl <= 0.6 managers
@pytest.mark.parametrize("manager, function", [("naive", "compute_score"), ("dapo", "compute_score"),
                                               ("batch", "compute_score_batch")])
def test_legacy_managers(manager, function, local_backend, plugin, tiny_tokenizer, cases):
    from verl.workers.reward_manager import get_reward_manager_cls

    # verl <= 0.6's load_reward_manager: the file's function wrapped with the reward_kwargs, then the class
    compute_score = partial(_call_with_kwargs, getattr(plugin, function), {})
    reward_fn = get_reward_manager_cls(manager)(tokenizer=tiny_tokenizer, num_examine=0,
                                                compute_score=compute_score, reward_fn_key="data_source")
    out = reward_fn(make_batch(tiny_tokenizer, cases), return_dict=True)
    assert rewards_of(out["reward_tensor"]) == pytest.approx([reward for *_, reward in cases], abs=1e-6)
    check_extra_info(out["reward_extra_info"], cases)


def test_prime_manager_scores_in_its_forked_pool_after_the_parent_scored(backend_env, plugin, tiny_tokenizer,
                                                                         cases, helpers):
    """verl's prime manager forks a 64-process pool for each batch and terminates it afterwards. The parent
    here has scored with both the shared backend and the pool's before forking (before the fix a forked
    process waited forever on the parent's worker threads, and the dict result was ``KeyError: 0``). No
    ``ACECODER_REWARD_*`` settings, as in a default run: each pool process starts a local engine of its own,
    which must die with it when verl terminates the pool."""
    from verl.workers.reward_manager import PrimeRewardManager

    backend_env()
    small = cases[:6] + cases[-1:]

    def run() -> tuple[list[float], list[float], float]:
        assert plugin.compute_score("acecode", small[0][0], small[0][1])["reward_error"] == 0.0
        assert plugin.compute_score_prime("acecode", small[0][0], small[0][1], {}) == small[0][2]
        compute_score = partial(_call_with_kwargs, plugin.compute_score_prime, {})  # as verl <= 0.6 wraps it
        reward_fn = PrimeRewardManager(tokenizer=tiny_tokenizer, num_examine=0, compute_score=compute_score)
        data = make_batch(tiny_tokenizer, small)
        out = reward_fn(data, return_dict=True)
        again = plugin.compute_score("acecode", small[1][0], small[1][1])["score"]  # the parent's backend
        for holder in (shared_scorer(), type(plugin.compute_score_prime)._shared):
            holder.close()
        return rewards_of(out["reward_tensor"]), data.batch["acc"].tolist(), again

    (rewards, acc, again), alive = helpers.run_forked(run)
    expected = [reward for *_, reward in small]
    assert rewards == pytest.approx(expected, abs=1e-6) and acc == pytest.approx(expected, abs=1e-6)
    assert again == small[1][2]
    assert alive == []  # the pool processes' engines and sandboxes went with them


# ----------------------------------------------------------------------------- verl >= 0.7 reward loop
@pytest.fixture(scope="module")
def tokenizer_dir(tiny_tokenizer, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer.save_pretrained(path)
    return str(path)


def main_ppo_config(tokenizer_dir: str, *overrides: str):
    """The config ``verl.trainer.main_ppo`` gives the reward loop: verl's composed default config, the
    command-line overrides (in the legacy spelling the README uses), then ``migrate_legacy_reward_impl``."""
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop import migrate_legacy_reward_impl

    default = Path(verl.__file__).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml"
    config = OmegaConf.merge(OmegaConf.load(default), OmegaConf.from_dotlist([
        f"actor_rollout_ref.model.path={tokenizer_dir}", f"custom_reward_function.path={PLUGIN_PATH}",
        "custom_reward_function.name=compute_score", *overrides]))
    return migrate_legacy_reward_impl(config)


@pytest.mark.parametrize("manager", ["naive", "dapo", "rate_limited"])
def test_reward_loop_worker(manager, local_backend, tokenizer_dir, tiny_tokenizer, cases):
    from verl.experimental.reward_loop import RewardLoopWorker

    config = main_ppo_config(tokenizer_dir, f"reward_model.reward_manager={manager}")
    assert config.reward.reward_manager.name == manager
    worker = RewardLoopWorker(config)  # loads reward_fns/verl_reward.py the way verl does
    outputs = worker.loop.run_until_complete(worker.compute_score_batch(make_batch(tiny_tokenizer, cases)))
    assert [o["reward_score"] for o in outputs] == pytest.approx([reward for *_, reward in cases], abs=1e-6)
    infos = [o["reward_extra_info"] for o in outputs]
    check_extra_info({key: [info[key] for info in infos] for key in infos[0]}, cases)


def test_reward_loop_manager_on_ray(backend_env, tokenizer_dir, tiny_tokenizer, cases):
    """The whole reward loop of verl >= 0.7: ``RewardLoopManager`` starts its ``RewardLoopWorker`` as a Ray
    actor, which loads the plug-in and scores with its own local engine; the batch comes back as
    ``rm_scores`` and one ``non_tensor_batch`` column per key (which needs every sample to have them all)."""
    import ray
    from verl.experimental.reward_loop import RewardLoopManager

    backend_env()
    assert not ray.is_initialized(), "this test starts its own Ray with this worktree on the actors' path"
    env = {"PYTHONPATH": str(ROOT), CONFIG_ENV: json.dumps({"workers": 2})}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    try:
        manager = RewardLoopManager(main_ppo_config(tokenizer_dir, "reward_model.num_workers=1"))
        out = manager.compute_rm_score(make_batch(tiny_tokenizer, cases))
    finally:
        ray.shutdown()
    assert rewards_of(out.batch["rm_scores"]) == pytest.approx([reward for *_, reward in cases], abs=1e-6)
    assert set(out.meta_info["reward_extra_keys"]) == KEYS
    check_extra_info({key: out.non_tensor_batch[key].tolist() for key in KEYS}, cases)
