"""Gunicorn configuration for the Renkei web process.

Used by the container image:

    gunicorn -c infra/gunicorn.conf.py renkei.site.wsgi:application

Every value can be overridden from the environment (gunicorn also reads
GUNICORN_CMD_ARGS). This file must stay importable without Django or Renkei: the
application is imported lazily, inside the hooks, in each worker.

OpenTelemetry: the tracer and meter providers start *after* fork (``post_fork``),
because the SDK's batch processors run background threads that do not survive a
fork, and are flushed when a worker exits (``worker_exit``) so the last spans of a
recycled worker are not lost.
"""

from __future__ import annotations

import os


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# --- Socket -------------------------------------------------------------------
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# The ALB (or compose) is the only client; trust its X-Forwarded-* headers.
# Set FORWARDED_ALLOW_IPS to the load balancer's subnets to narrow it further.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# --- Workers ------------------------------------------------------------------
# Fargate reports the host's CPUs through os.cpu_count(), so size explicitly.
workers = _int_env("WEB_CONCURRENCY", 2)
worker_class = "gthread"
threads = _int_env("GUNICORN_THREADS", 4)
# Recycle workers now and then so slow leaks cannot accumulate.
max_requests = _int_env("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int_env("GUNICORN_MAX_REQUESTS_JITTER", 200)
timeout = _int_env("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Must exceed the load balancer's idle timeout (ALB default 60 s), otherwise the
# ALB reuses a connection gunicorn has just closed and the client sees a 502.
keepalive = _int_env("GUNICORN_KEEPALIVE", 75)
# Heartbeat files in memory, not on the (read-only) container filesystem.
worker_tmp_dir = "/dev/shm"  # noqa: S108 - tmpfs is the point

# --- Logging ------------------------------------------------------------------
# No personal data in log lines: the path without its query string (%(U)s), no
# client address, no user agent, no referer.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = "%(m)s %(U)s %(s)s %(B)s %(M)sms rid=%({x-amzn-trace-id}i)s"

proc_name = "renkei-web"


# --- Hooks --------------------------------------------------------------------
def on_starting(server):
    """Refuse to start with a missing or published secret, in one line naming it. Only an
    instance on loopback without DATABASE_URL may use keys generated under RENKEI_HOME."""
    import sys

    from renkei.platform import deploy_secrets

    hosts = [a[0] for a in server.cfg.address if isinstance(a, tuple)]
    hosts += ["unix-socket" for a in server.cfg.address if not isinstance(a, tuple)]
    try:
        deploy_secrets.refuse_to_start(bind_hosts=hosts)
    except deploy_secrets.MissingSecret as e:
        sys.exit(str(e))


def post_fork(server, worker):
    """Start OpenTelemetry in the worker process, never in the arbiter."""
    try:
        from renkei.platform.telemetry import setup_telemetry
    except ImportError:
        server.log.warning("renkei.platform.telemetry is not importable; telemetry off")
        return
    try:
        setup_telemetry(service_name="renkei-web")
    except Exception:
        # Serving requests matters more than exporting spans.
        server.log.exception("OpenTelemetry setup failed in worker %s", worker.pid)


def worker_exit(server, worker):
    """Flush and shut down the worker's OpenTelemetry providers."""
    try:
        from renkei.platform.telemetry import shutdown_telemetry
    except ImportError:
        return
    try:
        shutdown_telemetry()
    except Exception:
        server.log.exception("OpenTelemetry shutdown failed in worker %s", worker.pid)
