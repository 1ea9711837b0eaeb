"""A job's state changes are compare-and-set, on SQLite and PostgreSQL: racing writers (a cancel
against success, a restart against a cancel) decide a terminal state exactly once, and nothing
leaves a terminal state."""

from __future__ import annotations

import threading

import pytest

from llmops.core.storage import Database
from services.finetuning import store as st
from services.finetuning.store import EventRecord, JobRecord, JobStore


@pytest.fixture
def jobs(database_url):
    db = Database(database_url)
    store = JobStore(db)
    store.migrate()
    yield store
    db.dispose()


def _job(store: JobStore, ident: str, state: int) -> None:
    store.create(JobRecord(ident, {"base_model": "m"}, st.QUEUED, created_by="t"))
    if state != st.QUEUED:
        assert store.update(ident, state=state, expect=(st.QUEUED,)) is not None


def _race(jobs: JobStore, ident: str) -> dict:
    """Success and a cancel released at the same moment; what each call returned."""
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def succeed():
        barrier.wait()
        results["success"] = jobs.update(ident, state=st.SUCCEEDED, result_model_version="models/m/versions/2",
                                         expect=(st.RUNNING, st.CANCELLING),
                                         event=EventRecord(ident, 0, st.SUCCEEDED, message="registered"))

    def cancel():
        barrier.wait()
        results["cancel"] = jobs.update(ident, state=st.CANCELLING, expect=(st.QUEUED, st.RUNNING),
                                        event=EventRecord(ident, 0, st.CANCELLING, message="cancel"))

    threads = [threading.Thread(target=succeed), threading.Thread(target=cancel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_cancel_racing_success_ends_in_exactly_one_terminal_state(jobs):
    for round_ in range(12):
        ident = f"race{round_}"
        _job(jobs, ident, st.RUNNING)
        results = _race(jobs, ident)
        final = jobs.get(ident)
        # whoever came first, success holds: it is the one that registered a version
        assert final.state == st.SUCCEEDED and final.result_model_version
        assert results["success"] is not None
        # a cancel that lost the race wrote nothing; one that won was overtaken (never CANCELLING for ever)
        states = [e.state for e in jobs.events_after(ident, 0)]
        assert states.count(st.SUCCEEDED) == 1 and states.count(st.CANCELLING) == (results["cancel"] is not None)


def test_terminal_states_are_final(jobs):
    _job(jobs, "done", st.RUNNING)
    assert jobs.update("done", state=st.CANCELLED, expect=(st.RUNNING,)) is not None
    for state in (st.SUCCEEDED, st.RUNNING, st.QUEUED, st.FAILED):
        assert jobs.update("done", state=state) is None  # even without an expected state
        assert jobs.update("done", state=state, expect=(st.CANCELLED,)) is None
    assert jobs.get("done").state == st.CANCELLED
    assert [e.state for e in jobs.events_after("done", 0)].count(st.CANCELLED) == 0  # the test wrote no event


def test_a_restart_racing_a_cancel_never_resurrects_the_job(jobs):
    _job(jobs, "r", st.RUNNING)
    assert jobs.update("r", state=st.CANCELLING, expect=(st.RUNNING,)) is not None
    assert jobs.update("r", state=st.QUEUED, expect=(st.RUNNING,)) is None  # the restart's CAS loses
    assert jobs.update("r", state=st.CANCELLED, expect=(st.CANCELLING,)) is not None
    assert jobs.get("r").state == st.CANCELLED
