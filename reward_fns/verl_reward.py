"""acecoder-rl reward for verl: a custom reward function file.

Per-sample reward managers (``naive``, the reward loop)::

    custom_reward_function.path=/path/to/acecoder-rl/reward_fns/verl_reward.py \
    custom_reward_function.name=compute_score

Whole batches in one call (faster: the ``naive`` manager scores one program after another)::

    custom_reward_function.path=/path/to/acecoder-rl/reward_fns/verl_reward.py \
    custom_reward_function.name=compute_score_batch reward_model.reward_manager=batch

The rows' ``reward_model.ground_truth`` must hold the tests (a list of assert strings, or a JSON string of
one). Each sample's result is ``{"score": shaped reward, "acc": score in [0, 1], "pass_rate", "all_passed",
"code_found", "status_<status>", "reward_latency_s", "program_s", "reward_error"}`` (all floats).

Environment (read at the first scored sample of each process): ``ACECODER_REWARD_URL`` (``acecoder-rl
serve`` URLs, comma-separated), or ``ACECODER_REWARD_RAY=1`` (+ ``RAY_ADDRESS``), else a local sandboxed
engine; ``ACECODER_REWARD_CONFIG`` = JSON object of ``RewardConfig`` fields. These never raise: a sample that
cannot be scored, or a misconfigured or unreachable backend, gives score 0, ``reward_error = 1`` and a
WARNING log line with the reason.
"""
from acecoder_rl.integrations.verl import VerlBatchComputeScore, VerlComputeScore

compute_score = VerlComputeScore()
compute_score_batch = VerlBatchComputeScore()
