"""Evaluate a model, or ready-made completions, on HumanEval, MBPP+ or any AceCode-format dataset.

``evaluate`` (Python) and ``acecoder-rl eval`` (CLI) report pass@1 and the unbiased pass@k; a problem counts
as solved by a sample when the reward engine finds that ALL its tests pass. Heavy libraries (``datasets``,
``torch``, ``transformers``, ``vllm``) are imported inside the functions that need them.
"""

from acecoder_rl.eval.completions import read_completions
from acecoder_rl.eval.evaluate import evaluate
from acecoder_rl.eval.generation import (
    Generated,
    GenerationSettings,
    LocalGenerator,
    generate,
    select_backend,
)
from acecoder_rl.eval.passk import pass_at_k
from acecoder_rl.eval.problems import BENCHMARKS, Problem, load_problems
from acecoder_rl.eval.scoring import ProblemResult, score_problems

__all__ = [
    "BENCHMARKS",
    "Generated",
    "GenerationSettings",
    "LocalGenerator",
    "Problem",
    "ProblemResult",
    "evaluate",
    "generate",
    "load_problems",
    "pass_at_k",
    "read_completions",
    "score_problems",
    "select_backend",
]
