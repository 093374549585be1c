"""Every plug-in gives exactly the local engine's reward on one fixture set (20 programs of
tests/fixtures/workload_small.jsonl: 5 each of canonical, mutant, broken, acecode_inference)."""
from __future__ import annotations

import pytest

N_FIXTURE = 20


def test_every_adapter_gives_the_local_engines_rewards(local_backend, items, reference, helpers):
    expected = [reward for reward, *_ in reference[:N_FIXTURE]]
    assert len(set(expected)) > 2  # the set mixes passes, partial passes and failures
    rewards = helpers.adapter_rewards(items[:N_FIXTURE])
    for adapter, got in rewards.items():
        assert got == pytest.approx(expected, abs=1e-6), adapter
