"""Every config under configs/ as the OpenRLHF commands it produces (shared by the golden and contract tests).

A case is one file: a run config (configs/paper, configs/examples) gives one run; an ablation grid
(configs/ablations) gives all of its expanded runs. Commands are planned as a cluster submission from the
fixed launch directory ``/workspace`` (relative config paths show up under it) with the reward service
host ``submit-host``, so they do not depend on the machine that runs the tests.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
GOLDEN = Path(__file__).resolve().parent / "golden"
LAUNCH_DIR = Path("/workspace")
ADDRESS = "http://ray-head:8265"
HOSTNAME = "submit-host"
GRID_DIRS = ("ablations",)


@dataclass(frozen=True)
class PlannedRun:
    name: str
    argv: list[str]
    env_vars: dict[str, str]


def config_files() -> list[Path]:
    """OpenRLHF run configs and grids; files starting with ``_`` are partial bases, not runs, and configs of
    another backend (``backend: local`` trains with TRL on one machine) have no OpenRLHF command."""
    files = sorted(p for p in CONFIGS.rglob("*.yaml") if not p.name.startswith("_"))
    return [p for p in files if backends_of(p) == {"openrlhf"}]


def backends_of(path: Path) -> set[str]:
    from acecoder_rl.train.config import load_run_config
    from acecoder_rl.train.sweep import expand_grid

    if path.parent.name in GRID_DIRS:
        return {run.config.backend for run in expand_grid(path)}
    return {load_run_config(path).backend}


def case_id(path: Path) -> str:
    return "__".join(path.relative_to(CONFIGS).with_suffix("").parts)


def plan_case(path: Path) -> list[PlannedRun]:
    from acecoder_rl.train.config import load_run_config
    from acecoder_rl.train.openrlhf.launch import plan_run
    from acecoder_rl.train.openrlhf.command import TRAINER_MODULE_ENV
    from acecoder_rl.train.sweep import expand_grid

    if path.parent.name in GRID_DIRS:
        configs = [run.config for run in expand_grid(path)]
    else:
        configs = [load_run_config(path)]
    out = []
    with mock.patch.dict(os.environ):
        os.environ.pop(TRAINER_MODULE_ENV, None)  # the real trainer module, whatever the caller's shell has
        for cfg in configs:
            plan = plan_run(cfg, address=ADDRESS, base_dir=LAUNCH_DIR, hostname=HOSTNAME)
            out.append(PlannedRun(cfg.name, plan.argv, plan.env_vars))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "config_file" in metafunc.fixturenames:
        files = config_files()
        metafunc.parametrize("config_file", files, ids=[case_id(p) for p in files])


@dataclass(frozen=True)
class ConfigCase:
    id: str
    path: Path
    runs: list[PlannedRun]

    @property
    def golden(self) -> Path:
        return GOLDEN / f"{self.id}.txt"


@pytest.fixture(scope="session")
def planned_cases() -> dict[str, ConfigCase]:
    """Every case, planned once per session."""
    return {case_id(path): ConfigCase(case_id(path), path, plan_case(path)) for path in config_files()}


@pytest.fixture
def config_case(config_file: Path, planned_cases: dict[str, ConfigCase]) -> ConfigCase:
    return planned_cases[case_id(config_file)]


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN
