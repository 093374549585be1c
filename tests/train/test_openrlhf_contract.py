"""Contract with OpenRLHF 0.11.2: its own parser (and its own argument checks) accept every command we build.

The checker (``openrlhf_parser_check.py``) runs in one subprocess for all cases, because importing
OpenRLHF's trainer module (torch, deepspeed, transformers) takes seconds. It needs the installs listed in
``requirements-nodeps.txt`` (repository root); without them this test fails (a contract that is not checked is
not a contract), it does not skip.
"""
from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from acecoder_rl.train.config import load_run_config
from acecoder_rl.train.openrlhf.launch import plan_run

HERE = Path(__file__).resolve().parent
CHECKER = HERE / "openrlhf_parser_check.py"
REQUIREMENTS = HERE.parents[1] / "requirements-nodeps.txt"
OPENRLHF_VERSION = "0.11.2"
INSTALL = (f"DS_BUILD_OPS=0 python3 -m pip install --no-deps --no-build-isolation -r "
           f"{REQUIREMENTS.relative_to(HERE.parents[1])}")

# Hand-made arguments that OpenRLHF must refuse, next to the real ones (the checker must be able to fail).
MINIMAL = ["--actor.model_name_or_path", "m", "--reward.remote_url", "r.py", "--data.prompt_dataset", "d.jsonl",
           "--actor.num_gpus_per_node", "1", "--ref.num_gpus_per_node", "1"]
NEGATIVE = {
    "neg:renamed-flag": [*MINIMAL, "--rollout_batch_size", "8"],        # the pre-0.10 spelling
    "neg:unknown-flag": [*MINIMAL, "--rollout.batch_size_per_gpu", "8"],
    "neg:prefix-only": [*MINIMAL, "--rollout.batch", "8"],              # argparse would expand it silently
    "neg:openrlhf-check": [*MINIMAL, "--algo.advantage.estimator", "rloo", "--rollout.n_samples_per_prompt", "1"],
}
POSITIVE_MINIMAL = {"pos:minimal": [*MINIMAL, "--rollout.batch_size", "8"]}


@pytest.fixture(scope="module")
def parser_results(planned_cases, tmp_path_factory) -> dict:
    try:
        version = importlib.metadata.version("openrlhf")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"openrlhf is not installed, so the OpenRLHF contract cannot be checked: {INSTALL}",
                    pytrace=False)
    assert version == OPENRLHF_VERSION, f"openrlhf {version} installed; the commands target {OPENRLHF_VERSION}"
    cases = {f"{cid}::{run.name}": run.argv[3:] for cid, case in planned_cases.items() for run in case.runs}
    # The other shapes of a command: resumed (--ckpt.load_enable), and run in the foreground (local paths).
    paper = load_run_config(HERE.parents[1] / "configs" / "paper" / "reinforce_pp_coder7b_base.yaml")
    cases["resume"] = plan_run(paper, address="http://ray-head:8265", resume=True).argv[3:]
    cases["foreground"] = plan_run(paper, address=None).argv[3:]
    cases.update(NEGATIVE)
    cases.update(POSITIVE_MINIMAL)
    tmp = tmp_path_factory.mktemp("openrlhf-contract")
    (tmp / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([sys.executable, str(CHECKER), str(tmp / "cases.json"), str(tmp / "results.json")],
                          capture_output=True, text=True, timeout=240, check=False)
    if proc.returncode != 0:
        pytest.fail(f"the OpenRLHF parser check could not run ({INSTALL}?):\n{proc.stderr[-3000:]}", pytrace=False)
    report = json.loads((tmp / "results.json").read_text())
    assert report["openrlhf"] == OPENRLHF_VERSION
    return report["results"]


def test_openrlhf_accepts_every_config_command(config_case, parser_results):
    failures = {name: result["error"] for name, result in parser_results.items()
                if name.startswith(config_case.id + "::") and not result["ok"]}
    checked = [name for name in parser_results if name.startswith(config_case.id + "::")]
    assert len(checked) == len(config_case.runs)
    assert not failures, f"OpenRLHF {OPENRLHF_VERSION} rejects {config_case.path}: {failures}"


@pytest.mark.parametrize("case", ["resume", "foreground"])
def test_other_command_shapes_are_accepted(parser_results, case):
    assert parser_results[case] == {"ok": True, "error": ""}


def test_checker_accepts_a_minimal_command(parser_results):
    assert parser_results["pos:minimal"] == {"ok": True, "error": ""}


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_checker_rejects_what_openrlhf_rejects(parser_results, case):
    result = parser_results[case]
    assert not result["ok"]
    expected = {"neg:renamed-flag": "unrecognized arguments: --rollout_batch_size",
                "neg:unknown-flag": "unrecognized arguments: --rollout.batch_size_per_gpu",
                "neg:prefix-only": "not exact OpenRLHF flag names",
                "neg:openrlhf-check": "rloo requires n_samples_per_prompt > 1"}[case]
    assert expected in result["error"]
