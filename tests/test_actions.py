"""Every write is an action: a function named ``do_*`` that takes its actor and records an
audit event (renkei.platform.audit). This reads the source and lists the model writes outside
actions, and the actions that record nothing; both lists must be empty.

A write is a call of a model or queryset method that changes rows (``save``, ``delete``,
``create``, ``update``, ``bulk_*``, ``get_or_create``, ``update_or_create``). The few
writes that are not actions of a person say why in ``NOT_ACTIONS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "renkei"
ALWAYS_WRITES = {"bulk_create", "bulk_update", "get_or_create", "update_or_create"}
QUERYSET_CALLS = {"filter", "exclude", "all", "select_for_update", "select_related", "none"}

# (module, function) -> why its writes are not actions with an audit event of their own.
NOT_ACTIONS = {
    ("accounts/tokens.py", "_touch"): (
        "last_used_at, bookkeeping of a read (at most every LAST_USED_RESOLUTION)"
    ),
    ("edudata/access.py", "log_pupil_read"): "the access log is itself the trail of reads",
    ("edudata/metrics/release.py", "_store"): "a cache of released figures, derived data",
    ("edudata/metrics/release.py", "_keep"): "the same cache: a release kept for a new version",
    ("edudata/metrics/release.py", "_forget_older"): "the same cache: its outdated versions",
    ("demo/seed.py", "_ensure_users.user"): (
        "the demo's own user accounts and second factors (accounts are Django's, made by an "
        "operator in Django's admin, which keeps its own log)"
    ),
    ("edudata/rollups.py", "bump_data_version"): "derived: follows every change of the data",
    ("tenants/models.py", "Prefecture.for_code"): (
        "a prefecture's row comes with its first municipality, inside do_onboard_municipality"
    ),
    ("tenants/models.py", "Municipality.save"): "the model's own save, called by the actions",
    ("tenants/schema.py", "create_tenant_schema"): (
        "the migration records of a new schema, inside do_onboard_municipality"
    ),
    ("platform/audit.py", "record"): "the audit event itself",
    ("connectors/jobs.py", "_claim"): "the job queue's bookkeeping (the run records its action)",
    ("connectors/jobs.py", "_run"): "a run that broke is marked failed: the record of do_import",
    ("connectors/jobs.py", "run_pending"): "the job queue's bookkeeping: a job done leaves it",
    ("connectors/jobs.py", "start_embedded_worker"): (
        "the job queue's bookkeeping: jobs a dead process claimed are put back"
    ),
    ("connectors/jobs.py", "reclaim_abandoned"): (
        "the job queue's bookkeeping: jobs a dead worker claimed are put back"
    ),
    ("connectors/inbox.py", "_complete"): (
        "the inbox's memory of sizes between two looks (each file taken is queued by "
        "do_queue_import, which records it)"
    ),
}
# The import's rows: everything here runs under do_import, whose "import.start" event names
# the run, and the run (ImportRun) records what it read, accepted and rejected.
IMPORT_BODY = {"connectors/pipeline.py", "connectors/roster.py", "connectors/staging.py"}


def _is_write(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    name, receiver = func.attr, ast.unparse(func.value)
    if name in ALWAYS_WRITES:
        return True
    on_queryset = ".objects" in receiver or (
        isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Attribute)
        and func.value.func.attr in QUERYSET_CALLS
    )
    if name == "create" or name == "update":
        return on_queryset
    if name == "delete":  # a model's or a queryset's delete() takes no arguments
        return not call.args and (on_queryset or isinstance(func.value, ast.Name))
    if name == "save":
        return not receiver.endswith("storage")  # file storage, not a model
    return False


class _Scanner(ast.NodeVisitor):
    def __init__(self, module: str):
        self.module = module
        self.scope: list[str] = []
        self.writes: list[tuple[str, int, str, str]] = []  # module, line, function, call
        self.actions: dict[str, set[str]] = {}  # action name -> the names it calls
        self.recorders: set[str] = set()  # helpers that call audit.record

    def _visit_scope(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = _visit_scope

    def visit_FunctionDef(self, node):
        calls = {
            ast.unparse(c.func).split(".")[-1] for c in ast.walk(node) if isinstance(c, ast.Call)
        }
        if node.name.startswith("do_"):
            self.actions[f"{self.module}:{node.name}"] = calls
        elif "record" in calls:
            self.recorders.add(node.name)  # a helper that writes an action's event
        self._visit_scope(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node):
        if _is_write(node) and not any(s.startswith("do_") for s in self.scope):
            self.writes.append((self.module, node.lineno, ".".join(self.scope), ast.unparse(node)))
        self.generic_visit(node)


def _scan() -> list[_Scanner]:
    scanners = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if "/migrations/" in module:
            continue
        scanner = _Scanner(module)
        scanner.visit(ast.parse(path.read_text(encoding="utf-8")))
        scanners.append(scanner)
    return scanners


def test_no_model_write_outside_an_action():
    outside = [
        f"{module}:{line} in {function or '<module>'}: {call}"
        for scanner in _scan()
        for module, line, function, call in scanner.writes
        if (module, function) not in NOT_ACTIONS and module not in IMPORT_BODY
    ]
    assert outside == [], "writes outside actions (make them a do_* action):\n" + "\n".join(outside)


def _records(calls: set[str], recorders: set[str]) -> bool:
    """Calls audit.record, a helper that does, or another action."""
    return bool(calls & ({"record"} | recorders)) or any(c.startswith("do_") for c in calls)


def test_every_action_records_an_audit_event():
    scanners = _scan()
    recorders = {name for s in scanners for name in s.recorders}
    actions = {
        name: _records(calls, recorders) for s in scanners for name, calls in s.actions.items()
    }
    assert "connectors/pipeline.py:do_import" in actions
    assert len(actions) >= 13  # the scan found the actions at all
    assert [name for name, records in actions.items() if not records] == []


def test_the_exemptions_are_still_there():
    found = {(module, function) for s in _scan() for module, _, function, _ in s.writes}
    assert set(NOT_ACTIONS) <= found, "an exemption no longer matches a write: remove it"


def test_the_check_finds_a_write_outside_an_action():
    source = (
        "def grant(user, municipality):\n"
        "    Membership.objects.create(user=user, municipality=municipality)\n"
        "def do_grant(user):\n"
        "    Membership.objects.create(user=user)\n"
        "def rename(setting):\n"
        "    setting.save()\n"
        "    ConnectorSetting.objects.filter(pk=1).update(enabled=False)\n"
        "    counts.update({'a': 1})\n"
        "    storage.save('131130', 'key', b'')\n"
        "    api.delete('/imports/{run_id}')\n"
        "    membership.delete()\n"
    )
    scanner = _Scanner("example.py")
    scanner.visit(ast.parse(source))
    assert [(line, function) for _, line, function, _ in scanner.writes] == [
        (2, "grant"),
        (6, "rename"),
        (7, "rename"),
        (11, "rename"),
    ]
    assert set(scanner.actions) == {"example.py:do_grant"}
    assert not _records(scanner.actions["example.py:do_grant"], scanner.recorders)
