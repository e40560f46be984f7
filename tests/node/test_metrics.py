"""The node's metrics without a network: label bounds and view-change reasons."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from consensus.events import BlockPersisted, MessageReceived, ProposalValidated, Start, TimerFired
from node.metrics import MAX_MODEL_LABELS, MAX_ROUTE_LABELS, NodeMetrics
from node.service import _changed_view, _view_change_reason


def test_labels_from_chain_data_are_bounded() -> None:
    """Model names come from transactions: past MAX_MODEL_LABELS they share one series."""
    metrics = NodeMetrics()
    names = [metrics.model_label(f"model{i}") for i in range(MAX_MODEL_LABELS + 10)]
    assert names[:MAX_MODEL_LABELS] == [f"model{i}" for i in range(MAX_MODEL_LABELS)]
    assert set(names[MAX_MODEL_LABELS:]) == {"other"}
    assert metrics.model_label("model0") == "model0"  # a known one keeps its series
    routes = [metrics.route_label(f"/r{i}") for i in range(MAX_ROUTE_LABELS + 1)]
    assert routes[-1] == "other"
    for name in names:
        metrics.scores.labels(name, "flagged").inc()
    text = metrics.render().decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert len([s for s in samples if s.name == "vigil_scores_total"]) == MAX_MODEL_LABELS + 1


def test_view_changes_are_labelled_by_what_set_them_off() -> None:
    assert _view_change_reason(TimerFired("progress", 1)) == "timeout_progress"
    assert _view_change_reason(TimerFired("view-change", 2)) == "timeout_view_change"
    assert _view_change_reason(ProposalValidated(1, 0, b"", False, "bad")) == "invalid_proposal"
    assert _view_change_reason(MessageReceived(b"")) == "peers"
    assert _view_change_reason(BlockPersisted(3, (), ())) == "peers"
    assert _view_change_reason(Start()) == "other"


def test_a_restart_or_a_commit_is_not_a_view_change() -> None:
    """Found by CI: a restarted node's Start restores its saved view, which counted as an
    'other' view change; a commit resets the view to 0, which must not hide a change either."""
    assert not _changed_view((0, 0), (0, 0))
    assert _changed_view((5, 0), (5, 1))
    assert not _changed_view((5, 2), (6, 0))  # a commit, nothing more
    assert _changed_view((5, 2), (6, 1))  # buffered view changes replayed at the new height


def test_a_timed_block_is_observed_even_when_it_fails() -> None:
    metrics = NodeMetrics()
    try:
        with metrics.timed(metrics.commit):
            raise ValueError("boom")
    except ValueError:
        pass
    text = metrics.render().decode()
    assert "vigil_commit_seconds_count 1.0" in text


def test_garbage_collections_are_timed_by_generation() -> None:
    import gc

    from node.metrics import NodeMetrics

    metrics = NodeMetrics()
    gc.callbacks.append(metrics.gc_timer)
    try:
        gc.collect(2)
    finally:
        gc.callbacks.remove(metrics.gc_timer)
    text = metrics.render().decode()
    assert 'vigil_gc_seconds_count{generation="2"} 1.0' in text
    assert 0 < metrics.gc_timer.longest_s < 60
    fresh = NodeMetrics()  # never registered: no collection of its own
    fresh.gc_timer("stop", {"generation": 0})  # a stop without its start is ignored
    assert "vigil_gc_seconds_count" not in fresh.render().decode()



def test_thread_cpu_is_split_by_role_and_adds_up_to_the_process() -> None:
    """A thread named as the verification pool's is counted as "verify", the threads passed as
    the loop and the worker as theirs, the rest as "other", and the roles add up to the
    process's CPU."""
    import os
    import threading
    import time

    from consensus.crypto import VERIFY_THREAD_NAME
    from node.metrics import THREAD_ROLES, thread_cpu_seconds

    used: dict[str, float] = {}
    release = threading.Event()

    def burn(role: str) -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.2:
            sum(range(1000))
        used[role] = time.thread_time() - started

    def worker(role: str) -> None:
        burn(role)
        release.wait(10)  # alive while the figures are read

    before = thread_cpu_seconds(threading.get_native_id(), None)
    assert before is not None and tuple(before) == THREAD_ROLES
    threads = {
        "verify": threading.Thread(target=worker, args=("verify",), name=f"{VERIFY_THREAD_NAME}_9"),
        "app": threading.Thread(target=worker, args=("app",), name="app-like"),
        "other": threading.Thread(target=worker, args=("other",), name="something-else"),
    }
    for t in threads.values():
        t.start()
    burn("loop")
    while len(used) < 4:
        time.sleep(0.01)
    after = thread_cpu_seconds(threading.get_native_id(), threads["app"].native_id)
    release.set()
    for t in threads.values():
        t.join()
    assert after is not None
    tick = 0.02  # /proc counts in clock ticks (10 ms), rounded down per thread
    for role in ("verify", "loop", "other"):
        assert after[role] - before[role] >= used[role] - tick, role
    assert after["app"] >= used["app"] - tick
    times = os.times()
    assert abs(sum(after.values()) - (times.user + times.system)) <= 0.05
