#!/usr/bin/env bash
# Container health check that starts no Node process: one HTTP/1.0 GET to this container's own endpoint over bash's
# /dev/tcp (the node:*-bookworm-slim image has bash, not curl or wget). Healthy = the answer is 200.
#   healthcheck.sh worker           GET /healthz on $WORKER_HTTP_PORT: the worker process is alive (its /readyz says
#                                   whether it polls and passed the start-up checks; see deploy/README.md)
#   healthcheck.sh ingress          GET /readyz on $PORT (default 3000): Temporal accepts workflow starts
#   healthcheck.sh <port> [<path>]  any local endpoint (default path /healthz)
# Exit 0 healthy; 1 not, with one line saying why (docker inspect shows it); 2 bad usage.
set -u

case "${1:-}" in
  worker) port="${WORKER_HTTP_PORT:-0}" path=/healthz name=WORKER_HTTP_PORT ;;
  ingress) port="${PORT:-3000}" path=/readyz name=PORT ;;
  *[!0-9]* | '') echo "usage: healthcheck.sh worker|ingress|<port> [<path>]" >&2 && exit 2 ;;
  *) port="$1" path="${2:-/healthz}" name=port ;;
esac
if [[ ! "$port" =~ ^[0-9]+$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
  echo "unhealthy: ${name}=${port} is no port to check (0 turns the endpoint off)"
  exit 1
fi

# The process binds HOST (0.0.0.0 in compose), so the loopback reaches it. A refused connection fails here at once.
if ! exec 3<>"/dev/tcp/127.0.0.1/${port}"; then
  echo "unhealthy: nothing answers on port ${port}"
  exit 1
fi 2>/dev/null
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" >&3

# Bounded reads: a process that accepts but never answers is unhealthy, not a hung check.
if ! IFS= read -r -t 4 status <&3; then
  echo "unhealthy: GET ${path} on port ${port}: no answer"
  exit 1
fi
status="${status%$'\r'}"
if [[ "$status" =~ ^HTTP/1\.[01]\ 200([[:space:]]|$) ]]; then
  exit 0
fi
# Not 200: skip the headers and show the start of the body (/readyz says which check failed).
while IFS= read -r -t 4 line <&3 && [[ "${line%$'\r'}" != '' ]]; do :; done
body=''
IFS= read -r -t 4 -n 300 body <&3 || true
echo "unhealthy: GET ${path} on port ${port}: ${status:-empty answer}${body:+ — ${body}}"
exit 1
