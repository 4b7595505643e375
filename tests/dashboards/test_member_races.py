"""Concurrent membership changes on the 管理 pages: real requests in parallel threads, each
with its own database connection. What they share is committed from a connection of its own
(the test's transaction would hide it from them) and removed at the end."""

from __future__ import annotations

import threading

import pytest
from concurrency_support import in_own_connection
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from renkei.accounts.models import Membership
from renkei.tenants.models import Municipality

pytestmark = pytest.mark.django_db

BASE = "/m/131130/manage/"


def test_two_admins_removing_each_other_at_once_leave_one():
    """Each removes the other, released together by a barrier."""
    user_model = get_user_model()

    def create():
        shibuya = Municipality.objects.get(code="131130")
        users = [user_model.objects.create_user(f"race-admin-{i}") for i in (1, 2)]
        return users, [
            Membership.objects.create(user=user, role="tenant_admin", municipality=shibuya)
            for user in users
        ]

    admins, memberships = in_own_connection(create)
    start = threading.Barrier(2)
    answers: list[int] = []

    def remove(me: int) -> None:
        browser = Client()
        browser.force_login(admins[me])
        start.wait()
        try:
            response = browser.post(BASE + f"members/{memberships[1 - me].pk}/remove/")
            answers.append(response.status_code)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=remove, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        # No deadlock (500): one removed, the other told why not - or, when the first had
        # committed before the second even entered the municipality, refused entry (403).
        assert sorted(answers) in ([302, 302], [302, 403]), answers
        left = in_own_connection(lambda: Membership.objects.filter(user__in=admins).count())
        assert left == 1
    finally:
        in_own_connection(
            lambda: user_model.objects.filter(pk__in=[user.pk for user in admins]).delete()
        )
