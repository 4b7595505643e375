"""A real PgBouncer (Debian's ``pgbouncer``) in transaction mode in front of the test
PostgreSQL, on a free loopback port, with a pool smaller than the clients so that they share
server connections. Installed with apt-get when missing and running as root; otherwise the
tests skip with a message, except with CI=true, where they fail."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from apt_support import apt_install

PGBOUNCER = "/usr/sbin/pgbouncer"
POOL_SIZE = 2  # server connections per database: fewer than the clients of a test


def _install() -> str:
    reason = apt_install("pgbouncer")
    if not reason:
        # Debian starts a system-wide pgbouncer service on port 6432; the tests start their own.
        subprocess.run(["systemctl", "disable", "--now", "pgbouncer"], capture_output=True)
    return reason


def pgbouncer_path() -> str:
    if os.path.exists(PGBOUNCER):
        return PGBOUNCER
    reason = _install()
    if os.path.exists(PGBOUNCER):
        return PGBOUNCER
    message = (
        f"Debian's pgbouncer is not installed and could not be installed: "
        f"{reason or f'{PGBOUNCER} is still missing after apt-get'}; "
        f"install with apt-get install pgbouncer"
    )
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgBouncer:
    """One PgBouncer process; ``restart()`` kills it and starts another on the same port."""

    binary: str
    directory: Path
    port: int
    user: str | None  # the user it runs as (PgBouncer refuses to run as root)
    login: dict  # user and database to check that it answers
    process: subprocess.Popen | None = None

    @classmethod
    def start_in_front_of(cls, database: dict) -> PgBouncer:
        """In front of the server of Django's ``database`` settings (a unix socket directory
        or a host), trusting its clients and logging in with the settings' password. Its
        files are in a directory of its own under /tmp, which the user it runs as can reach."""
        host, port = database["HOST"] or "127.0.0.1", database["PORT"] or "5432"
        user = None
        if os.geteuid() == 0:
            # As the owner of the socket directory (the embedded server's), else nobody.
            owner = os.stat(host).st_uid if host.startswith("/") else None
            user = pwd.getpwuid(owner).pw_name if owner else "nobody"
        directory = Path(tempfile.mkdtemp(prefix="renkei-pgbouncer-"))
        (directory / "users.txt").write_text(
            f'"{database["USER"]}" "{database["PASSWORD"] or ""}"\n'
        )
        login = {"user": database["USER"], "dbname": database["NAME"]}
        bouncer = cls(pgbouncer_path(), directory, _free_port(), user, login)
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {bouncer.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {POOL_SIZE}\n"
            "max_client_conn = 100\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {directory / 'pgbouncer.log'}\n"
        )
        if user:
            uid = pwd.getpwnam(user).pw_uid
            for path in (directory, *directory.iterdir()):
                os.chown(path, uid, -1)
        bouncer.start()
        return bouncer

    def start(self) -> None:
        command = [self.binary, *(["-u", self.user] if self.user else []), "pgbouncer.ini"]
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, **self.login) as c:
                    c.execute("SELECT 1")
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"pgbouncer did not start (exit {self.process.poll()}):\n{self.log()}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)  # as a crash would: no goodbye to clients
            self.process.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
