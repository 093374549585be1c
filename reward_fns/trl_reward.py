"""acecoder-rl reward for TRL's ``GRPOTrainer`` (TRL 1.16).

From Python (this file's ``acecoder_reward`` is a ``TRLReward()``)::

    from acecoder_rl.integrations import TRLReward
    trainer = GRPOTrainer(model=..., reward_funcs=TRLReward(), train_dataset=dataset, args=GRPOConfig(...))

From TRL's command line, run in the repository root::

    trl grpo ... --reward_funcs reward_fns.trl_reward.acecoder_reward

The dataset needs a ``prompt`` column (text or chat messages) and a ``test_cases`` column (a list of assert
strings per row, or a JSON string of one), e.g. ``acecoder-rl data prepare`` output with ``context_messages``
renamed to ``prompt``. ``acecoder_reward(prompts, completions, test_cases=..., **columns)`` returns one
value per completion: the shaped reward (pass rate, or all-pass in binary mode, plus the configured bonus or
penalty), or ``None`` where TRL should leave the completion out: a row without tests (multi-task data) and a
sample that could not be scored (``TRLReward(failure_reward=0.0)`` makes those 0.0). Means of pass_rate,
code_found, status_<status>, reward_error... over the rows with tests are logged as ``acecoder/<key>``.

Environment (read at the first scored batch): ``ACECODER_REWARD_URL`` (``acecoder-rl serve`` URLs, comma-
separated), or ``ACECODER_REWARD_RAY=1`` (+ ``RAY_ADDRESS``), else a local sandboxed engine;
``ACECODER_REWARD_CONFIG`` = JSON object of ``RewardConfig`` fields, e.g. ``{"mode": "binary"}``. A sample
that cannot be scored (malformed tests, a sandbox error, a misconfigured or unreachable backend) is logged
at WARNING with the reason; a dataset without the tests column raises ``ValueError`` at the first step.
"""
from acecoder_rl.integrations.trl import TRLReward

acecoder_reward = TRLReward(name="acecoder_reward")
