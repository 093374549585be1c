"""Sample completions from a model: vLLM on a GPU when it is installed, else Hugging Face transformers.

Both backends see the same prompt token ids (:mod:`acecoder_rl.eval.prompts`) and the same sampling rule:
greedy at temperature 0, else temperature + top-p sampling and nothing else (no top-k, no repetition
penalty, whatever the model's ``generation_config`` suggests), so a score means the same on either. Runs are
deterministic for a given seed on a given backend and machine; the two backends draw different random numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.eval.problems import Problem
from acecoder_rl.eval.prompts import PromptStyle, encode_prompts

Backend = Literal["auto", "vllm", "transformers"]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class GenerationSettings:
    """How completions are sampled. ``temperature == 0`` is greedy decoding and needs ``n == 1``."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    batch_size: int = 8
    seed: int = 0
    prompt_style: PromptStyle = "auto"

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise UsageError("n, max_new_tokens and batch_size must be positive")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise UsageError("need temperature >= 0 and 0 < top_p <= 1")
        if self.temperature == 0 and self.n > 1:
            raise UsageError(
                f"temperature 0 (greedy) gives {self.n} identical samples: use n = 1 or a temperature > 0"
            )


@dataclass(frozen=True)
class Generated:
    """Completions per problem (``n`` each, problem order) and how they were made."""

    completions: list[list[str]]
    backend: str
    prompt_style: str
    seconds: float
    tokens: int


def _has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def select_backend(requested: Backend = "auto") -> Literal["vllm", "transformers"]:
    """``auto``: vLLM when it is installed and a CUDA GPU is visible (vLLM needs one), else transformers."""
    if requested == "transformers":
        return "transformers"
    usable = _has_vllm() and _has_cuda()
    if requested == "vllm" and not usable:
        raise AcecoderError("--backend vllm needs the vllm package (pip install -e '.[vllm]') and a CUDA GPU")
    return "vllm" if usable else "transformers"


def generate(
    model: str,
    problems: Sequence[Problem],
    settings: GenerationSettings,
    *,
    backend: Backend = "auto",
    progress: Progress | None = None,
) -> Generated:
    """``settings.n`` completions for every problem from ``model`` (a local path or a Hub name); the time
    reported includes loading the model."""
    started = time.monotonic()
    generated = LocalGenerator(model, backend, seed=settings.seed).generate(problems, settings, progress)
    return replace(generated, seconds=time.monotonic() - started)


class LocalGenerator:
    """A model loaded once (vLLM or transformers, :func:`select_backend`) that generates for any number of
    :meth:`generate` calls: the data pipeline generates chunk by chunk, so that its output can be written
    (and a run resumed) as it goes, and loading a 32B model for every chunk would cost more than the chunk.
    """

    def __init__(self, model: str, backend: Backend = "auto", *, seed: int = 0) -> None:
        self.model = model
        self.backend = select_backend(backend)
        if self.backend == "vllm":
            from vllm import LLM

            self._llm = LLM(model=model, seed=seed)
            self.tokenizer = self._llm.get_tokenizer()
        else:
            self._load_transformers(model)

    def _load_transformers(self, model: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self._device = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = torch.bfloat16 if self._device == "cuda" else torch.float32
            self._lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(self._device).eval()
        # a missing path, an unknown Hub name, no weights, an unknown model type
        except (OSError, ValueError) as exc:
            raise AcecoderError(f"cannot load model {model!r}: {exc}") from None

    def generate(
        self, problems: Sequence[Problem], settings: GenerationSettings, progress: Progress | None = None
    ) -> Generated:
        """``settings.n`` completions for every problem, in problem order."""
        started = time.monotonic()
        run = self._generate_vllm if self.backend == "vllm" else self._generate_transformers
        completions, style, tokens = run(problems, settings, progress or (lambda _: None))
        return Generated(completions, self.backend, style, time.monotonic() - started, tokens)

    def _generate_vllm(
        self, problems: Sequence[Problem], settings: GenerationSettings, progress: Progress
    ) -> tuple[list[list[str]], str, int]:
        """vLLM schedules and batches by itself (``batch_size`` does not apply) and shows its own progress."""
        from vllm import SamplingParams

        prompts, style = encode_prompts(self.tokenizer, problems, settings.prompt_style)
        params = SamplingParams(
            n=settings.n,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed,
        )
        outputs = self._llm.generate([{"prompt_token_ids": ids} for ids in prompts], params)
        completions = [[sample.text for sample in output.outputs] for output in outputs]
        progress(sum(len(samples) for samples in completions))
        return completions, style, sum(len(s.token_ids) for output in outputs for s in output.outputs)

    def _generate_transformers(
        self, problems: Sequence[Problem], settings: GenerationSettings, progress: Progress
    ) -> tuple[list[list[str]], str, int]:
        """Left-padded batches of ``batch_size`` sequences, longest prompts first (least padding a batch)."""
        import torch
        from transformers import set_seed

        tokenizer, lm = self.tokenizer, self._lm
        prompts, style = encode_prompts(tokenizer, problems, settings.prompt_style)
        eos = _ids(lm.generation_config.eos_token_id) or _ids(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else 0)
        options = _sampling_options(settings, eos, pad)

        jobs = sorted(
            ((i, j) for i in range(len(problems)) for j in range(settings.n)),
            key=lambda job: -len(prompts[job[0]]),
        )
        completions = [[""] * settings.n for _ in problems]
        stop = set(eos) | {pad}
        tokens = 0
        set_seed(settings.seed)
        for start in range(0, len(jobs), settings.batch_size):
            batch = jobs[start : start + settings.batch_size]
            width = max(len(prompts[i]) for i, _ in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (i, _) in enumerate(batch):
                input_ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i], dtype=torch.long)
                attention[row, width - len(prompts[i]) :] = 1
            with torch.no_grad():
                output = lm.generate(
                    input_ids=input_ids.to(self._device), attention_mask=attention.to(self._device), **options
                )
            for row, (i, j) in enumerate(batch):
                new = output[row, width:].tolist()
                end = next((pos for pos, token in enumerate(new) if token in stop), len(new))
                completions[i][j] = tokenizer.decode(new[:end], skip_special_tokens=True)
                tokens += end
            progress(len(batch))
        return completions, style, tokens


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _sampling_options(settings: GenerationSettings, eos: list[int], pad: int) -> dict[str, Any]:
    """``generate`` keyword arguments. Every knob that changes the output is set explicitly: transformers fills
    the ones left unset from the model's ``generation_config`` (Qwen's top_k=20 and repetition_penalty=1.05,
    for one). Greedy decoding ignores the sampling knobs, so they are not passed then."""
    options: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "pad_token_id": pad,
        "eos_token_id": eos or None,
        "repetition_penalty": 1.0,
    }
    if settings.temperature == 0:
        options.update(do_sample=False)
    else:
        options.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    return options
