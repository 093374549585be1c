"""The reward engine: sandboxed, fast, hard-to-game test execution for code completions.

>>> from acecoder_rl.reward import RewardEngine, RewardConfig
>>> with RewardEngine(RewardConfig(mode="pass_rate")) as engine:          # doctest: +SKIP
...     results = engine.score(completions, test_cases)

Where things are: ``extract`` (code from chat text), ``asserts`` (splitting a test at the program
boundary), ``verdict`` (the parent-side check), ``runner`` (one program on one worker), ``sandbox/`` (the
isolated processes), ``scoring`` (verdicts to reward numbers), ``engine`` (the pool).
"""
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.engine import RewardEngine
from acecoder_rl.reward.results import ProgramStatus, RewardResult, TestStatus
from acecoder_rl.reward.scorer import RewardScorer

__all__ = ["RewardConfig", "RewardEngine", "RewardResult", "RewardScorer", "ProgramStatus", "TestStatus"]
