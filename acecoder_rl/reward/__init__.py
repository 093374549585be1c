"""The reward engine: sandboxed, fast, hard-to-game test execution for code completions.

>>> from acecoder_rl.reward import RewardEngine, RewardConfig
>>> with RewardEngine(RewardConfig(mode="pass_rate")) as engine:          # doctest: +SKIP
...     results = engine.score(completions, test_cases)

Where things are: ``config`` (:class:`RewardConfig`), ``options`` (its fields as command-line options),
``extract`` (code from chat text), ``runner`` (one program on one worker), ``sandbox/`` (the isolated
processes), ``results`` (the verdicts, the result record and the per-sample metrics), ``shaping`` (verdicts
to reward numbers), ``engine`` (the pool), ``ray_pool`` (the engine on every node of a Ray cluster),
``interface`` (:class:`RewardScorer`, what every path to the reward implements, and :class:`ServedScorer`,
what the service needs).
"""
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.engine import RewardEngine
from acecoder_rl.reward.results import ProgramStatus, RewardResult, TestStatus
from acecoder_rl.reward.interface import RewardScorer, ServedScorer

__all__ = ["RewardConfig", "RewardEngine", "RewardResult", "RewardScorer", "ServedScorer", "ProgramStatus",
           "TestStatus"]
