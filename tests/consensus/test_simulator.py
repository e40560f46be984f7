"""The PBFT replica under the deterministic fault simulator.

Each failing seed is reported with the command that replays it with a trace.
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

import consensus.certificate
import consensus.messages
import consensus.replica
from consensus.sim.simulator import BYZANTINE_MODES, SimConfig, SimResult, Simulation


def replay_hint(seed: int, n: int, k: int) -> str:
    return f"scripts/simulate --replay {seed} --nodes {n} --byzantine {k}"


def _run(job: tuple[int, int, int, dict]) -> SimResult:
    seed, n, k, extra = job
    return Simulation(SimConfig(seed=seed, nodes=n, byzantine=k, **extra)).run()


def run_seeds(seeds: range, n: int, k: int, **extra: object) -> list[SimResult]:
    """Every seed's result, the seeds run on every core; fails naming each failing seed's
    replay command."""
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        results = pool.map(_run, [(seed, n, k, extra) for seed in seeds], chunksize=4)
    failures = [
        f"{result.summary()}\n    replay: {replay_hint(seed, n, k)}"
        for seed, result in zip(seeds, results, strict=True)
        if not result.ok
    ]
    assert not failures, "\n".join(failures)
    return results


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "k", "seeds"),
    [
        (1, 0, range(0, 60)),
        (4, 0, range(0, 70)),
        (4, 1, range(1000, 1080)),
        (7, 0, range(2000, 2015)),
        (7, 1, range(3000, 3015)),
        (7, 2, range(4000, 4030)),
    ],
)
def test_seeded_schedules_keep_agreement_validity_and_liveness(
    n: int, k: int, seeds: range
) -> None:
    run_seeds(seeds, n, k)


@pytest.mark.slow
@pytest.mark.parametrize("mode", BYZANTINE_MODES)
def test_each_byzantine_behaviour(mode: str) -> None:
    run_seeds(range(5000, 5012), 4, 1, modes=(mode,))


@pytest.mark.slow
def test_validator_set_changes_under_faults() -> None:
    results = run_seeds(range(6000, 6025), 4, 1, valset_changes=True)
    changes = [r.stats["validator_set_changes"] for r in results]
    assert sum(c >= 1 for c in changes) >= 10, changes  # a member joined
    assert sum(c >= 2 for c in changes) >= 3, changes  # and one left again


def test_same_seed_same_run() -> None:
    a = Simulation(SimConfig(seed=7, nodes=4, byzantine=1, trace=True)).run()
    b = Simulation(SimConfig(seed=7, nodes=4, byzantine=1, trace=True)).run()
    assert a.trace == b.trace and a.heights == b.heights and a.stats == b.stats
    assert len(a.trace) > 100


def test_too_many_byzantine_replicas_are_refused() -> None:
    with pytest.raises(ValueError, match="exceed f"):
        Simulation(SimConfig(seed=1, nodes=4, byzantine=2))


def test_simulator_catches_a_quorum_one_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prove the simulator can fail: with q - 1 everywhere, some seed breaks agreement."""
    real = consensus.certificate.quorum

    def broken(n: int) -> int:
        return max(1, real(n) - 1)

    for module in (consensus.replica, consensus.certificate, consensus.messages):
        monkeypatch.setattr(module, "quorum", broken)
    for seed in range(1000):
        result = Simulation(SimConfig(seed=seed, nodes=4, byzantine=1)).run()
        if not result.ok:
            assert result.violations[0].kind in ("agreement", "validity")
            return
    pytest.fail("a quorum of q - 1 survived 1,000 seeds: the simulator cannot see the bug")


def test_simulator_catches_commits_without_a_quorum_of_prepares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replica that commits on a single prepare is caught by the certificate check."""
    monkeypatch.setattr(consensus.replica, "quorum", lambda n: 1)
    result = Simulation(SimConfig(seed=3, nodes=4, byzantine=0)).run()
    assert not result.ok


def test_a_failing_seed_run_on_the_pool_is_named_with_its_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """run_seeds forks its workers after the patch, so they run the broken replica too, and
    the failure comes back with the command that replays it."""
    monkeypatch.setattr(consensus.replica, "quorum", lambda n: 1)
    with pytest.raises(AssertionError, match=r"replay: scripts/simulate --replay 3 --nodes 4"):
        run_seeds(range(3, 5), 4, 0)
