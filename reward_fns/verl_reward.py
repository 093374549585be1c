"""acecoder-rl reward for verl: a custom reward function file.

verl >= 0.7 (the reward loop; managers ``naive``, the default, ``dapo`` and ``rate_limited``)::

    reward.custom_reward_function.path=/path/to/acecoder-rl/reward_fns/verl_reward.py \
    reward.custom_reward_function.name=compute_score

verl <= 0.6 (``custom_reward_function.*`` and ``reward_model.reward_manager``): ``name=compute_score``
with the ``naive`` (default) and ``dapo`` managers; whole batches in one call, faster since ``naive`` scores
one program after another::

    custom_reward_function.path=/path/to/acecoder-rl/reward_fns/verl_reward.py \
    custom_reward_function.name=compute_score_batch reward_model.reward_manager=batch

and with ``reward_model.reward_manager=prime``: ``custom_reward_function.name=compute_score_prime`` (a
float; that manager cannot take ``compute_score``'s dict).

The rows' ``reward_model.ground_truth`` must hold the tests (a list of assert strings, or a JSON string of
one). Each sample's result (``compute_score``, ``compute_score_batch``) is ``{"score": shaped reward, "acc":
score in [0, 1], "pass_rate", "all_passed", "code_found", "status_<status>", "reward_latency_s",
"program_s", "reward_error"}`` (all floats, the same keys for every sample and backend).

Environment (read at the first scored sample of each process): ``ACECODER_REWARD_URL`` (``acecoder-rl
serve`` URLs, comma-separated), or ``ACECODER_REWARD_RAY=1`` (+ ``RAY_ADDRESS``), else a local sandboxed
engine; ``ACECODER_REWARD_CONFIG`` = JSON object of ``RewardConfig`` fields. These never raise: a sample that
cannot be scored, or a misconfigured or unreachable backend, gives score 0, ``reward_error = 1`` and a
WARNING log line with the reason.
"""
from acecoder_rl.integrations.verl import VerlBatchComputeScore, VerlComputeScore, VerlPrimeComputeScore

compute_score = VerlComputeScore()
compute_score_batch = VerlBatchComputeScore()
compute_score_prime = VerlPrimeComputeScore()
