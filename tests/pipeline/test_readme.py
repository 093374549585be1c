"""The README's pipeline example that runs on this machine runs as written (the training run as a dry run)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from acecoder_rl.cli.app import main

REPO = Path(__file__).resolve().parents[2]


def test_the_local_pipeline_example(tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"^```bash\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
                if "--model builtin:tiny-llama" in b]
    commands = [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    monkeypatch.chdir(tmp_path)
    making_rows = commands.pop(0)
    assert making_rows[0] == "python3" and making_rows[-2:] == [">", "quickstart.jsonl"]
    with open("quickstart.jsonl", "w", encoding="utf-8") as out:
        subprocess.run([sys.executable, *making_rows[1:-2]], stdout=out, check=True, cwd=REPO)
    for argv in commands:
        assert argv[0] == "acecoder-rl"
        if argv[1] == "train":
            argv.append("--dry-run")  # the run itself is the quickstart's, tested with it
            monkeypatch.chdir(REPO)
            argv = [arg if not arg.startswith("out/") else str(tmp_path / arg) for arg in argv]
        assert main(argv[1:]) == 0, argv
    assert (tmp_path / "out/q-pairs/pairs.jsonl").is_file()
    assert len((tmp_path / "out/q-labeled/labeled.jsonl").read_text().splitlines()) == 12
