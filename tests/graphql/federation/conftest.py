"""Fixtures of the federation tests: a committed world (fed_world.py), an HTTP server on
127.0.0.1 running the real WSGI stack, and a helper that runs the schema as a principal.

The world's municipalities are committed (the fan-out's threads and the server's threads
have their own connections and see committed rows only), so they are removed as soon as the
last test of this directory has run: tests elsewhere in the session never see them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fed_world import build_world, drop_world

HERE = Path(__file__).parent


class _WorldHandle:
    """Builds the world on first use, drops it when this directory's tests are done."""

    def __init__(self, blocker):
        self.blocker = blocker
        self.world = None

    def ensure(self):
        """Build the world (call only outside a test transaction)."""
        if self.world is None:
            with self.blocker.unblock():
                self.world = build_world()
        return self.world

    def drop(self) -> None:
        if self.world is None:
            return
        from renkei.graphql.federation import fanout

        fanout.shutdown_pool()  # no worker connection may outlive the world (or the database)
        with self.blocker.unblock():
            drop_world()
        self.world = None


_HANDLE: _WorldHandle | None = None


@pytest.fixture(scope="session")
def fed_world_handle(django_db_setup, django_db_blocker):
    global _HANDLE
    _HANDLE = _WorldHandle(django_db_blocker)
    yield _HANDLE
    _HANDLE.drop()


@pytest.fixture(scope="session")
def fed_world(fed_world_handle):
    """Built outside any test transaction (session scope comes first), so it is committed."""
    return fed_world_handle.ensure()


@pytest.fixture
def world(fed_world, fed_world_handle, db):
    assert fed_world_handle.world is fed_world, (
        "the federation world was already removed: the tests of tests/graphql/federation "
        "must run one after another (no reordering plugin)"
    )
    return fed_world


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After the last test of this directory, remove the committed world."""
    if _HANDLE is not None and (nextitem is None or Path(str(nextitem.path)).parent != HERE):
        _HANDLE.drop()


@pytest.fixture(scope="session")
def fed_server(fed_world):
    """The whole Django stack (middleware, routing, views) on a real socket, in a thread.

    Its request threads have their own database connections, so they see the committed
    world, not a test's uncommitted rows. Base URL like http://127.0.0.1:54321.
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def run():
    """run(query, user=None | principal=..., variables=None) -> ExecutionResult."""
    from renkei.accounts import policy
    from renkei.graphql.federation.schema import FederationContext, schema

    def execute(query, user=None, *, principal=None, variables=None, auth_error=None):
        if principal is None:
            principal = policy.principal_for(user) if user is not None else policy.ANONYMOUS
        context = FederationContext(principal=principal, auth_error=auth_error)
        return schema.execute_sync(query, variable_values=variables, context_value=context)

    return execute
