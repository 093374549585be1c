"""Stand-in for ``openrlhf.cli.train_ppo_ray`` in tests: records what a real run would have been given.

Selected with ``ACECODER_OPENRLHF_MODULE=fake_openrlhf_trainer`` (the directory holding this file on
``PYTHONPATH``). Writes a JSON report to ``$FAKE_TRAINER_REPORT``: its arguments, working directory, the
files its data and reward flags name (present? same bytes?), where ``acecoder_rl`` was imported from, the
reward environment, the reward service's /health status when there is one, and, with
``FAKE_TRAINER_SAMPLE`` = JSON ``{"query", "prompt", "label"}``, the rewards that the reward plug-in gives
that sample when loaded the way OpenRLHF loads it. Then, with ``FAKE_TRAINER_SLEEP``, it "trains" for
that many seconds (what a stopped run interrupts). Exits with ``$FAKE_TRAINER_EXIT`` (default 0).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import time
import urllib.request
from pathlib import Path


def _file(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        return {"path": path, "exists": False}
    return {"path": path, "exists": True, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


def _score(plugin: str, sample: dict) -> list[float]:
    """What OpenRLHF's SingleTurnAgentExecutor does with a ``.py`` --reward.remote_url."""
    spec = importlib.util.spec_from_file_location("reward_func", plugin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.reward_func([sample["query"]], [sample["prompt"]], [sample["label"]])
    return [float(x) for x in out["rewards"]]


def main() -> None:
    args = sys.argv[1:]
    report: dict = {"argv": args, "cwd": os.getcwd(),
                    "env": {k: v for k, v in os.environ.items() if k.startswith("ACECODER_REWARD_")}}
    for flag in ("--data.prompt_dataset", "--reward.remote_url"):
        if flag in args:
            report[flag] = _file(args[args.index(flag) + 1])
    import acecoder_rl

    report["acecoder_rl"] = acecoder_rl.__file__
    url = os.environ.get("ACECODER_REWARD_URL")
    if url:
        with urllib.request.urlopen(url.split(",")[0] + "/health", timeout=10) as resp:
            report["reward_health"] = resp.status
    sample = os.environ.get("FAKE_TRAINER_SAMPLE")
    if sample and "--reward.remote_url" in args:
        report["rewards"] = _score(args[args.index("--reward.remote_url") + 1], json.loads(sample))
    Path(os.environ["FAKE_TRAINER_REPORT"]).write_text(json.dumps(report))
    print("fake trainer: report written", flush=True)
    time.sleep(float(os.environ.get("FAKE_TRAINER_SLEEP", "0")))
    sys.exit(int(os.environ.get("FAKE_TRAINER_EXIT", "0")))


if __name__ == "__main__":
    main()
