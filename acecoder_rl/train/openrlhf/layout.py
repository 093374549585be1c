"""A run's GPU layout in OpenRLHF's terms: the roles it has, each role's GPUs, and how they sit on nodes.

Derived from ``resources`` with the defaults filled in (``actor_gpus``: every GPU; the other roles: the
actor's count; vLLM engines: the actor's GPUs over the tensor-parallel size). The checks
(:mod:`acecoder_rl.train.openrlhf.checks`) refuse layouts that cannot be placed, so the command
(:mod:`acecoder_rl.train.openrlhf.command`) can take these as given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acecoder_rl.train.config import RunConfig


@dataclass(frozen=True)
class RolePlacement:
    """A role's share of the cluster, in OpenRLHF's terms (``--ROLE.num_nodes``,
    ``--ROLE.num_gpus_per_node``)."""

    gpus: int
    nodes: int
    gpus_per_node: int


def role_gpus(cfg: RunConfig) -> dict[str, int]:
    """GPUs of every role the run has (actor, ref, critic, reward_model), defaults filled in."""
    r = cfg.resources
    actor = r.actor_gpus if r.actor_gpus is not None else r.nodes * r.gpus_per_node
    roles = {"actor": actor}
    if cfg.uses_ref:
        roles["ref"] = r.ref_gpus if r.ref_gpus is not None else actor
    if cfg.uses_critic:
        roles["critic"] = r.critic_gpus if r.critic_gpus is not None else actor
    if cfg.uses_reward_model:
        roles["reward_model"] = r.reward_model_gpus if r.reward_model_gpus is not None else actor
    return roles


def vllm_engines(cfg: RunConfig) -> int:
    """vLLM engines: ``resources.vllm_engines``, by default one per ``vllm_tensor_parallel_size`` actor
    GPUs."""
    r = cfg.resources
    if r.vllm_engines is not None:
        return r.vllm_engines
    return role_gpus(cfg)["actor"] // r.vllm_tensor_parallel_size


def placement(cfg: RunConfig) -> dict[str, RolePlacement]:
    """Each role as whole nodes or part of one node (the checks made sure every role fits)."""
    per_node = cfg.resources.gpus_per_node
    out = {}
    for role, gpus in role_gpus(cfg).items():
        if gpus <= per_node:
            out[role] = RolePlacement(gpus, 1, gpus)
        else:
            out[role] = RolePlacement(gpus, gpus // per_node, per_node)
    return out
