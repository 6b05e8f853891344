#!/bin/sh
# The container's entry point: create the vault on the volume at its first start
# (`echoctl init`, with its starter feeds), then run `echoctl ARGS` (by default
# `serve --listen 127.0.0.1:8383`) as PID 1, so SIGTERM reaches it.
set -eu
vault="${ECHO_VAULT:-/var/lib/echo/vault}"
if [ ! -f "$vault/echo.toml" ]; then
    echoctl init "$vault"
fi
exec echoctl --vault "$vault" "$@"
