# ECHO's container image: `echoctl serve` as a non-root user, the vault on a volume.
# Unbuilt on the development machine (no container engine runs there); checked
# offline by tests/test_deploy.py (dockerfile-parse, hadolint). README.md, "Deployment".
#
#   docker build -t echo-archive .
#   docker run -d --name echo -v echo-vault:/var/lib/echo echo-archive
#
# ECHO listens on the container's loopback (127.0.0.1:8383): until the vault has an
# API key or a user (issue 11's authentication), `echoctl serve` refuses any other
# address, so publishing the port (-p) reaches nothing. The HEALTHCHECK runs inside the
# container, where loopback works; deploy/compose.yaml puts Prometheus in the same
# network namespace to scrape /metrics.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ECHO_VAULT=/var/lib/echo/vault \
    PATH=/opt/echo/venv/bin:$PATH

# A fixed uid/gid, so a bind-mounted vault can be chowned to it on the host.
RUN groupadd --system --gid 10001 echo \
    && useradd --system --uid 10001 --gid echo --home-dir /var/lib/echo \
       --no-create-home --shell /usr/sbin/nologin echo \
    && mkdir -p /var/lib/echo \
    && chown echo:echo /var/lib/echo \
    && chmod 0700 /var/lib/echo

WORKDIR /opt/echo
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/echo/venv \
    && /opt/echo/venv/bin/pip install --no-cache-dir /opt/echo \
    && rm -rf /opt/echo/src
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/echo-entrypoint

USER 10001:10001
VOLUME ["/var/lib/echo"]
WORKDIR /var/lib/echo

# `echoctl serve` stops gracefully on SIGTERM within [service] grace (30 s) plus at
# most 50 s to archive what runs in flight fetched and close: stop it with a timeout
# of 90 s (compose's stop_grace_period; `docker stop -t 90`).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8383/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["/usr/local/bin/echo-entrypoint"]
CMD ["serve", "--listen", "127.0.0.1:8383"]
