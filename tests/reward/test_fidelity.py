"""Same verdicts as the dataset's own semantics, on real third-party programs (tests/fixtures/README.md)."""
import json
from pathlib import Path

import pytest

from acecoder_rl.reward import RewardConfig, RewardEngine

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ACECODE = Path(__file__).resolve().parents[2] / "acecoder_rl" / "data" / "resources" / "acecode" / "acecode_sample.jsonl"


@pytest.fixture(scope="module")
def workload_results():
    rows = [json.loads(line) for line in (FIXTURES / "workload_small.jsonl").open()]
    # Timeout items hang for their whole per-test limit; 1 s keeps the suite short and changes no verdict.
    with RewardEngine(RewardConfig(timeout_per_test=1.0, cache_size=0)) as engine:
        results = engine.score([r["completion"] for r in rows], [r["test_cases"] for r in rows])
    return rows, results


def test_per_test_agreement_on_the_workload(workload_results):
    rows, results = workload_results
    total = agree = 0
    for row, result in zip(rows, results):
        total += len(row["expected_test_results"])
        agree += sum(a == b for a, b in zip(row["expected_test_results"], result.test_results))
    assert agree / total >= 0.999, f"{agree}/{total}"


@pytest.mark.parametrize("kind", ["canonical", "mutant", "acecode_inference", "broken", "timeout"])
def test_every_program_of_each_kind_matches(workload_results, kind):
    rows, results = workload_results
    wrong = [r["id"] for r, res in zip(rows, results)
             if r["kind"] == kind and res.test_results != r["expected_test_results"]]
    assert wrong == []


def test_recorded_acecode_pass_rates_are_reproduced_exactly():
    row = json.loads(ACECODE.read_text().splitlines()[0])
    completions = [inf["completion"] for inf in row["inferences"]]
    with RewardEngine(RewardConfig()) as engine:
        results = engine.score(completions, [row["test_cases"]] * len(completions))
    assert len(results) == 80
    mismatches = [(inf["completion_id"], inf["pass_rate"], res.pass_rate)
                  for inf, res in zip(row["inferences"], results) if res.pass_rate != inf["pass_rate"]]
    assert mismatches == []


def test_salvage_option_differs_as_documented():
    """AceCoder's RL server salvages broken code: two inferences recorded at 0.0 then score 1.0."""
    row = json.loads(ACECODE.read_text().splitlines()[0])
    by_id = {inf["completion_id"]: inf for inf in row["inferences"]}
    completions = [by_id[17]["completion"], by_id[22]["completion"]]
    with RewardEngine(RewardConfig(workers=1)) as plain:
        assert [r.pass_rate for r in plain.score(completions, [row["test_cases"]] * 2)] == [0.0, 0.0]
    with RewardEngine(RewardConfig(workers=1, salvage_code=True)) as salvaging:
        assert [r.pass_rate for r in salvaging.score(completions, [row["test_cases"]] * 2)] == [1.0, 1.0]
