"""The release store's memory: one making per key at a time, however many ask at once, in
one process and across processes."""

from __future__ import annotations

import threading
import time

import pytest
from concurrency_support import in_own_connection
from django.db import connection

from renkei.edudata.metrics import release


def test_callers_asking_at_once_wait_for_one_making():
    started, finish = threading.Event(), threading.Event()
    made = []

    def make():
        made.append(threading.current_thread().name)
        started.set()
        finish.wait(10)
        return object()

    key = ("test-release-memory", "at-once")
    answers = []
    callers = [
        threading.Thread(target=lambda: answers.append(release.remember(key, make)))
        for _ in range(8)
    ]
    try:
        callers[0].start()
        assert started.wait(10)
        for caller in callers[1:]:
            caller.start()
        finish.set()
        for caller in callers:
            caller.join(10)
        assert len(made) == 1
        assert len(answers) == 8 and all(a is answers[0] for a in answers)
    finally:
        finish.set()
        release.forget()


def test_a_failed_making_is_made_again_by_the_next_caller():
    key = ("test-release-memory", "failing")
    calls = []

    def failing():
        calls.append("fail")
        raise RuntimeError("database went away")

    try:
        with pytest.raises(RuntimeError):
            release.remember(key, failing)
        assert release.remember(key, lambda: "made") == "made"
        assert release.remember(key, failing) == "made"  # remembered: not made a third time
        assert calls == ["fail"]
    finally:
        release.forget()


@pytest.mark.django_db
def test_processes_asking_at_once_wait_for_one_making(shibuya):
    """Across processes too (each caller here has its own database connections, as a server
    process has): the others wait for the one making a version, then read what it stored."""
    from renkei.tenants.models import Release

    scope = release.scope_for(shibuya.prefecture_id)
    version = scope.version_for(2025)
    made, started, finish = [], threading.Event(), threading.Event()

    def make(previous):
        made.append(threading.current_thread().name)
        started.set()
        finish.wait(10)
        return release.Protected.from_json(
            {"dims": [["area", ["131130"], {}]], "released": {"131130": 12}, "measures": {}}, 0, 0
        )

    answers = []

    def ask():
        try:
            answers.append(release._load_or_make(scope, "test-table", 2025, version, make))
        finally:
            connection.close()

    callers = [threading.Thread(target=ask, name=f"process-{n}") for n in range(3)]
    try:
        callers[0].start()
        assert started.wait(10)
        for caller in callers[1:]:
            caller.start()
        time.sleep(0.5)  # the others are waiting now, not making
        assert made == ["process-0"]
        finish.set()
        for caller in callers:
            caller.join(10)
        assert made == ["process-0"]
        assert [a.count(("131130",)).value for a in answers] == [12, 12, 12]
    finally:
        finish.set()
        in_own_connection(lambda: Release.objects.filter(table="test-table").delete())
