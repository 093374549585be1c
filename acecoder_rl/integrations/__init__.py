"""Trainer plug-ins' shared logic: the files in ``reward_fns/`` only instantiate these.

- :mod:`~acecoder_rl.integrations.common`: backend selection by environment variables
  (``ACECODER_REWARD_URL`` / ``ACECODER_REWARD_RAY`` / ``ACECODER_REWARD_CONFIG``), one backend per process,
  the failure policy (logged reason, ``reward_error`` metric, reward 0 or TRL's ``None``; :class:`ConfigError`
  and :class:`RewardUnavailable` for adapters that must stop their trainer) and the per-sample metric keys.
- :class:`~acecoder_rl.integrations.openrlhf.OpenRLHFReward`: OpenRLHF's ``reward_func``.
- :class:`~acecoder_rl.integrations.trl.TRLReward`: a TRL ``GRPOTrainer`` reward function.
- :class:`~acecoder_rl.integrations.verl.VerlComputeScore` / ``VerlBatchComputeScore`` /
  ``VerlPrimeComputeScore``: verl's ``compute_score``, its batch form and the ``prime`` manager's form.

Every adapter scores through the same :class:`~acecoder_rl.reward.RewardScorer` (local engine, reward
service or Ray pool), so all give the engine's exact rewards. Nothing heavy is imported here (``torch`` only
when OpenRLHF's tensors are built).

>>> from acecoder_rl.integrations import TRLReward
>>> TRLReward().__name__
'acecoder_reward'
"""
from acecoder_rl.integrations.common import (
    BackendError,
    BackendSpec,
    ConfigError,
    RewardUnavailable,
    backend_from_env,
    shared_scorer,
)
from acecoder_rl.integrations.openrlhf import OpenRLHFReward
from acecoder_rl.integrations.trl import TRLReward
from acecoder_rl.integrations.verl import VerlBatchComputeScore, VerlComputeScore, VerlPrimeComputeScore

__all__ = ["BackendError", "BackendSpec", "ConfigError", "OpenRLHFReward", "RewardUnavailable", "TRLReward",
           "VerlBatchComputeScore", "VerlComputeScore", "VerlPrimeComputeScore", "backend_from_env",
           "shared_scorer"]
