"""`acecoder-rl serve --ray`: the service scoring on a Ray reward pool gives the local engine's verdicts."""
import json
from pathlib import Path

import httpx
import pytest
import ray

from acecoder_rl.reward.results import SAMPLE_METRICS
from acecoder_rl.reward import RewardConfig, RewardEngine
from acecoder_rl.service.process import ServiceProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workload_small.jsonl"
ROWS = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
SAMPLE = [r for r in ROWS if r["kind"] != "timeout"][::9][:16]


@pytest.fixture(scope="module")
def cluster_address():
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, object_store_memory=100 * 1024 ** 2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    if started_here:
        ray.shutdown()


def test_service_on_a_ray_pool_matches_the_local_engine(cluster_address):
    completions = [r["completion"] for r in SAMPLE]
    tests = [r["test_cases"] for r in SAMPLE]
    with RewardEngine(RewardConfig(workers=2)) as engine:
        local = [r.test_results for r in engine.score(completions, tests)]
    args = ["--ray", "--ray-address", cluster_address, "--log-level", "warning"]
    with ServiceProcess(args, start_timeout=120) as proc:
        proc.wait_ready(timeout=180)
        health = httpx.get(f"{proc.url}/health", timeout=30).json()
        assert health["isolation"] == "ray" and health["workers"] >= 1
        body = {"completions": completions, "test_cases": tests}
        answer = httpx.post(f"{proc.url}/v1/score", json=body, timeout=300).json()
        # OpenRLHF's protocol on the Ray pool: the same extra_logs keys as everywhere, a bad label marked.
        get_reward = {"query": completions[:2], "prompts": ["", ""], "labels": [tests[0], []]}
        openrlhf = httpx.post(f"{proc.url}/get_reward", json=get_reward, timeout=300).json()
    assert [r["test_results"] for r in answer["results"]] == local == [r["expected_test_results"] for r in SAMPLE]
    assert list(openrlhf["extra_logs"]) == list(SAMPLE_METRICS)
    assert openrlhf["extra_logs"]["reward_error"] == [0.0, 1.0] and openrlhf["rewards"][1] == 0.0


def test_ray_address_needs_ray():
    from acecoder_rl.cli.app import main

    assert main(["serve", "--ray-address", "127.0.0.1:6379"]) == 2
