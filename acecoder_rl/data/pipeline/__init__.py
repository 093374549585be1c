"""AceCoder's data pipeline (arXiv 2502.01718, TIGER-AI-Lab/AceCoder@e37ef2a): seed questions -> tests ->
filtered tests -> scored samples -> reward-model preference pairs.

Each step reads the previous step's output file and is one ``acecoder-rl data`` command:

1. :func:`synthesize_tests` (``synthesize-tests``): an LLM rewrites each seed as a one-function question
   with ~20 ``assert`` tests (:mod:`.synthesize`).
2. :func:`filter_tests` (``filter-tests``): keep the tests a reference solution passes, and the questions
   that keep enough (:mod:`.filtering`).
3. :func:`label` (``label``): N samples per question from each model, scored, as AceCode-87K
   ``inferences`` (:mod:`.labeling`).
4. :func:`build_pairs` (``pairs``): AceCodePair-style preference pairs in OpenRLHF's reward-model format
   (:mod:`.pairs`).

Generation goes through :mod:`.generation` (an OpenAI-compatible endpoint or a local model), scoring through
the sandboxed :class:`~acecoder_rl.reward.RewardEngine`, and every step that generates resumes an
interrupted run (:mod:`.io`).
"""

from acecoder_rl.data.pipeline.filtering import FilterRule, filter_tests
from acecoder_rl.data.pipeline.generation import BackendSpec, EndpointBackend, LocalBackend, open_backend
from acecoder_rl.data.pipeline.labeling import label
from acecoder_rl.data.pipeline.pairs import PairOptions, PairRule, build_pairs
from acecoder_rl.data.pipeline.synthesize import SynthesisOptions, parse_reply, synthesize_tests

__all__ = [
    "BackendSpec",
    "EndpointBackend",
    "FilterRule",
    "LocalBackend",
    "PairOptions",
    "PairRule",
    "SynthesisOptions",
    "build_pairs",
    "filter_tests",
    "label",
    "open_backend",
    "parse_reply",
    "synthesize_tests",
]
