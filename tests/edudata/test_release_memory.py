"""The release store's memory: one making per key at a time, however many ask at once."""

from __future__ import annotations

import threading

import pytest

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
