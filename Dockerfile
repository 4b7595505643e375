# syntax=docker/dockerfile:1
#
# Renkei application image: one image for web (gunicorn), Celery worker, Celery beat
# and one-off commands (`renkei migrate`, `renkei onboard`, `renkei manage ...`).
#
#   docker build -t renkei:dev .
#   docker run --rm -p 8000:8000 --env-file prod.env renkei:dev
#
# No secret is baked into the image: DJANGO_SECRET_KEY, RENKEI_MASTER_KEY, DATABASE_URL
# and CELERY_BROKER_URL come from the environment at run time (ECS: Secrets Manager).
#
# The base image is pinned to an exact patch release; bump it deliberately (and in
# both stages). Pinning by digest as well (`...@sha256:<digest>`) is better still once
# the digest has been read from the registry: `docker buildx imagetools inspect <tag>`.

############################################################################
# builder: resolve and install the locked dependencies into a virtualenv.
############################################################################
FROM python:3.11.15-slim-bookworm AS builder

# pip byte-compiles what it installs: the runtime image starts without compiling and
# never writes .pyc files (PYTHONDONTWRITEBYTECODE, read-only root filesystem).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, so that code changes do not invalidate this layer.
# --require-hashes: every distribution must match a hash in the lock (supply chain).
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements.lock

# Then the project itself, without re-resolving anything.
COPY pyproject.toml README.md ./
COPY renkei ./renkei
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps .

############################################################################
# runtime: the slim base, the virtualenv, a non-root user. Nothing else.
############################################################################
FROM python:3.11.15-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="renkei" \
      org.opencontainers.image.description="Renkei (連携) school education data platform" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed uid/gid, so volume ownership and Kubernetes/ECS runAsUser are predictable.
RUN groupadd --system --gid 10001 renkei \
 && useradd --system --uid 10001 --gid renkei --no-create-home \
            --home-dir /var/lib/renkei --shell /usr/sbin/nologin renkei

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=renkei.site.settings \
    RENKEI_HOME=/var/lib/renkei \
    DEBUG=false

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY infra/gunicorn.conf.py ./infra/gunicorn.conf.py

# Static files are collected at build time (into RENKEI_HOME/static, STATIC_ROOT), as
# root, so that the running process (uid 10001) cannot modify them. The values given to
# this one command are throw-away, not ENV or ARG, and do not persist in the image:
# the secret key is a dummy, and DATABASE_URL only keeps settings from starting the
# embedded PostgreSQL (collectstatic never connects).
RUN mkdir -p /var/lib/renkei \
 && DJANGO_SECRET_KEY=build-only-not-a-secret \
    DATABASE_URL=postgresql://collectstatic@127.0.0.1:1/unused \
    renkei manage collectstatic --noinput \
 && chown renkei:renkei /var/lib/renkei

# The only writable paths when the root filesystem is read-only (ECS
# readonlyRootFilesystem). Declared as volumes so that ECS copies the image's content
# (collected static files, ownership, /tmp's sticky bit) into the task's volumes.
VOLUME ["/tmp", "/var/lib/renkei"]

USER 10001:10001

EXPOSE 8000

# python, not curl: the slim image has no curl. Same probe as the ALB and ECS checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Worker and beat override the command (beat keeps its schedule state in RENKEI_HOME,
# the only directory the runtime user may write besides /tmp):
#   celery -A renkei.site.celery:app worker --loglevel=INFO
#   celery -A renkei.site.celery:app beat --loglevel=INFO \
#          --schedule=/var/lib/renkei/celerybeat-schedule
CMD ["gunicorn", "-c", "infra/gunicorn.conf.py", "renkei.site.wsgi:application"]
