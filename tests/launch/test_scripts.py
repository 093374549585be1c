"""Every launch script parses (bash -n) and passes shellcheck; a missing shellcheck fails, it does not skip."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
SCRIPTS = sorted(p for p in LAUNCH.iterdir() if p.suffix in (".sh", ".sbatch"))


def test_the_expected_scripts_exist():
    assert {p.name for p in SCRIPTS} >= {"ray_head.sh", "ray_worker.sh", "submit.sh", "slurm_train.sbatch"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (Debian/Ubuntu: apt-get install -y shellcheck)", pytrace=False)
    proc = subprocess.run([shellcheck, "--shell=bash", "--external-sources", str(script)],
                          capture_output=True, text=True, cwd=LAUNCH, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_executable(script):
    assert script.stat().st_mode & 0o111, f"chmod +x {script}"
