"""acecoder-rl reward for OpenRLHF 0.11: pass this file to ``--reward.remote_url``.

    python -m openrlhf.cli.train_ppo_ray ... \
        --data.input_key context_messages --data.label_key test_cases --data.apply_chat_template \
        --reward.remote_url /path/to/acecoder-rl/reward_fns/openrlhf_reward.py

OpenRLHF loads the file in every vLLM rollout actor and calls ``reward_func(queries, prompts, labels)`` once
per sample (``**kwargs`` are accepted too, as in OpenRLHF's example signature); the response is taken from
``query`` (prompt + response), the tests from ``label``.

Environment (read in each rollout actor at its first sample; set them in the Ray job's ``env_vars``):

- ``ACECODER_REWARD_URL``: one or comma-separated ``acecoder-rl serve`` URLs -> score over HTTP
  (``ACECODER_REWARD_TOKEN``: the service's token).
- ``ACECODER_REWARD_RAY=1``: score on a Ray reward pool (actors on every node; ``RAY_ADDRESS`` optional).
- neither: a local sandboxed engine in each rollout actor. Its ``workers`` default to every CPU core, per
  actor: with several rollout actors on a node, set ``workers`` in ``ACECODER_REWARD_CONFIG``.
- ``ACECODER_REWARD_CONFIG``: JSON object of ``RewardConfig`` fields for the local engine or the Ray pool,
  e.g. ``{"mode": "binary", "all_pass_bonus": 0.5, "workers": 8}``.
- ``ACECODER_REWARD_MAX_FAILED_BATCHES`` (default 64; 0: never): calls in a row with no sample scored
  before the reward raises.

Returns ``{"rewards": float32 tensor [n], "scores": float32 tensor [n] in [0, 1], "extra_logs": {key:
float32 tensor [n]}}`` (pass_rate, all_passed, code_found, reward_latency_s, program_s, status_<status>,
reward_error: the reward service's keys). A sample that cannot be scored (a malformed label, a backend
that is down) gives reward 0, ``reward_error = 1`` and a WARNING log line with the reason. It raises, after
an ERROR log line, on a configuration error (a bad ``ACECODER_REWARD_*`` variable, a label that shows the
wrong ``--data.label_key``) at the first call, and once 64 calls in a row scored no sample: OpenRLHF then
leaves those samples without a reward and fails the step instead of training on zeros.
"""
from acecoder_rl.integrations.openrlhf import OpenRLHFReward

reward_func = OpenRLHFReward()
