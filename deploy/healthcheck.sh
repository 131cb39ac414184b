#!/bin/bash
# Container health check for the entrawatch image: GET /livez on the admin port and succeed on 200.
# Uses bash's /dev/tcp so the runtime image needs no curl or wget. The admin server must listen on
# 127.0.0.1 or 0.0.0.0 (the image's default `admin_listen` is 0.0.0.0:9898); set ENTRAWATCH_ADMIN_PORT
# when it listens elsewhere. `entrawatch-healthcheck /readyz` checks readiness the same way.
set -euo pipefail

port="${ENTRAWATCH_ADMIN_PORT:-9898}"
path="${1:-/livez}"

exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" >&3
status=""
IFS=' ' read -r -t 5 _ status _ <&3 || true
exec 3<&-
if [ "$status" != "200" ]; then
  echo "entrawatch-healthcheck: GET ${path} on port ${port} answered '${status:-nothing}'" >&2
  exit 1
fi
