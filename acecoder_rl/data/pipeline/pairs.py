"""Step 4, ``data pairs``: reward-model preference pairs from each question's scored inferences.

The rule of AceCoder's code (``create_rm_dataset.py`` at AceCoder@e37ef2a, which built AceCodePair-300K):
within ONE model's inferences of a question, every pair whose higher pass rate is >= 0.8, whose gap is >= 0.4
and whose lower pass rate is > 0 (a 0 is often a packaging or syntax slip, not a worse program), no cap per
question, each (chosen, rejected) text pair once. The paper (arXiv 2502.01718, section 3) writes the first
two as strict (> 0.8, > 0.4): :attr:`PairRule.strict`. Rates are compared with a 1e-9 tolerance, so that
0.7 - 0.3 (0.39999999999999997 in floating point) is a gap of 0.4, as meant; AceCoder's float comparison
dropped such pairs. Candidates are visited as AceCoder visited them (inferences sorted by pass rate, highest
first; for each, the others from the lowest up), so the output order is AceCoder's.

AceCoder also skipped questions that are not pure ASCII (:attr:`PairOptions.ascii_only`, on by default) and
used only ``qwen_coder_2.5``'s inferences for AceCodePair-300K (``models``). A pair of two identical texts
(the same program scored differently, as a flaky test can do) teaches nothing and is left out, counted.

Each line of ``pairs.jsonl`` is in OpenRLHF 0.11's reward-model dataset format (``openrlhf.datasets.
reward_dataset.preprocess_data`` with ``--data.apply_chat_template --data.prompt_key prompt``): ``prompt``
is the chat (one user turn: the question and its first ``prompt_tests`` tests, AceCoder's 1), ``chosen`` and
``rejected`` each the assistant turn that follows it (``[{"role": "assistant", "content": completion}]``);
plus ``id`` (the question's), ``model_name``, the two pass rates and completion ids.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from acecoder_rl.data.pipeline.io import iter_acecode_rows, write_json
from acecoder_rl.data.pipeline.prompts import solution_chat
from acecoder_rl.errors import UsageError
from acecoder_rl.jsonl import to_json

OUTPUT, STATS = "pairs.jsonl", "pairs_stats.json"
#: The rules a candidate pair can fail, as named in the stats.
RULES = ("chosen_pass_rate", "gap", "rejected_pass_rate")
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PairRule:
    """The thresholds (module docstring). ``strict``: the paper's chosen > min_chosen and gap > min_gap."""

    min_chosen: float = 0.8
    min_gap: float = 0.4
    strict: bool = False

    def __post_init__(self) -> None:
        if not (0 <= self.min_chosen <= 1 and 0 <= self.min_gap <= 1):
            raise UsageError("--min-chosen and --min-gap must be within [0, 1]")

    def failures(self, chosen: float, rejected: float) -> list[str]:
        """The :data:`RULES` that the pair (``chosen`` >= ``rejected``) fails; empty when it is kept."""
        failed = []
        if not self._reaches(chosen, self.min_chosen):
            failed.append("chosen_pass_rate")
        if not self._reaches(chosen - rejected, self.min_gap):
            failed.append("gap")
        if not rejected > _TOLERANCE:
            failed.append("rejected_pass_rate")
        return failed

    def _reaches(self, value: float, bound: float) -> bool:
        return value > bound + _TOLERANCE if self.strict else value >= bound - _TOLERANCE


@dataclass(frozen=True)
class PairOptions:
    """What goes in beside the rule: the models whose inferences are paired (empty: every model), the tests
    shown in the prompt, and AceCoder's skip of questions that are not ASCII."""

    models: tuple[str, ...] = ()
    prompt_tests: int = 1
    ascii_only: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if self.prompt_tests < 0:
            raise UsageError("--prompt-tests must be >= 0")


@dataclass
class PairCounts:
    """What happened to every candidate pair (two inferences of one model for one question)."""

    rows: int = 0
    rows_not_ascii: int = 0
    rows_with_pairs: int = 0
    candidate_pairs: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # per rule; a pair can fail several
    failed_any_rule: int = 0
    identical_texts: int = 0
    repeated_pairs: int = 0
    pairs: int = 0
    pairs_per_model: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = {rule: self.failed.get(rule, 0) for rule in RULES}
        data["pairs_per_model"] = dict(sorted(self.pairs_per_model.items()))
        return data


def model_pairs(inferences: Sequence[dict[str, Any]], rule: PairRule, counts: PairCounts
                ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(chosen, rejected) inference pairs of one model's inferences of one question, AceCoder's order."""
    ranked = sorted(inferences, key=lambda inference: inference["pass_rate"], reverse=True)
    seen: set[tuple[str, str]] = set()
    for high in range(len(ranked) - 1):
        for low in range(len(ranked) - 1, high, -1):
            chosen, rejected = ranked[high], ranked[low]
            counts.candidate_pairs += 1
            failed = rule.failures(chosen["pass_rate"], rejected["pass_rate"])
            if failed:
                counts.failed.update(failed)
                counts.failed_any_rule += 1
                continue
            texts = (chosen["completion"], rejected["completion"])
            if texts[0] == texts[1]:
                counts.identical_texts += 1
            elif texts in seen:
                counts.repeated_pairs += 1
            else:
                seen.add(texts)
                yield chosen, rejected


def row_pairs(row: dict[str, Any], rule: PairRule, options: PairOptions, counts: PairCounts
              ) -> Iterator[dict[str, Any]]:
    """The ``pairs.jsonl`` lines of one AceCode row, model by model (in order of first appearance)."""
    counts.rows += 1
    if options.ascii_only and not row["question"].isascii():
        counts.rows_not_ascii += 1
        return
    by_model: dict[str, list[dict[str, Any]]] = {}
    for inference in row.get("inferences") or []:
        if not options.models or inference["model_name"] in options.models:
            by_model.setdefault(inference["model_name"], []).append(inference)
    prompt = solution_chat(row, options.prompt_tests)
    found = 0
    for model, inferences in by_model.items():
        for chosen, rejected in model_pairs(inferences, rule, counts):
            found += 1
            counts.pairs_per_model[model] += 1
            yield {
                "id": row["id"],
                "model_name": model,
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": chosen["completion"]}],
                "rejected": [{"role": "assistant", "content": rejected["completion"]}],
                "chosen_pass_rate": chosen["pass_rate"],
                "rejected_pass_rate": rejected["pass_rate"],
                "chosen_completion_id": chosen["completion_id"],
                "rejected_completion_id": rejected["completion_id"],
            }
    counts.pairs += found
    counts.rows_with_pairs += bool(found)


def build_pairs(dataset: str, out_dir: Path, rule: PairRule = PairRule(),
                options: PairOptions = PairOptions()) -> dict[str, Any]:
    """Write ``OUT_DIR/pairs.jsonl`` and ``pairs_stats.json`` from the rows of ``dataset``; returns the stats.
    Rebuilt whole on every run (it is fast: nothing runs or generates), written to a temporary file first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = PairCounts()
    temporary = out_dir / (OUTPUT + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for _, row in iter_acecode_rows(dataset):
            for pair in row_pairs(row, rule, options, counts):
                handle.write(to_json(pair) + "\n")
    os.replace(temporary, out_dir / OUTPUT)
    models_seen = set(counts.pairs_per_model)
    stats = {"rule": asdict(rule), "options": {**asdict(options), "models": list(options.models)},
             **counts.to_dict(),
             "models_without_pairs": [model for model in options.models if model not in models_seen]}
    write_json(out_dir / STATS, stats)
    return stats
