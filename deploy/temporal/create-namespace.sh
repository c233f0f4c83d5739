#!/bin/sh
# Waits until the Temporal frontend is serving, then creates the namespace ApprovalPlus uses (if missing). Runs once
# per `docker compose up` in the temporalio/admin-tools image (service `temporal-namespace`). The worker registers its
# search attributes itself at start (app/stack.ts → ensureSearchAttributes), so nothing else is needed here.
# Environment: TEMPORAL_ADDRESS, NAMESPACE, RETENTION.
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${NAMESPACE:-default}"

echo "waiting for the Temporal frontend at ${address}…"
tries=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Temporal at ${address} did not become healthy within 5 minutes" >&2
    exit 1
  fi
  sleep 5
done

if temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
  echo "namespace ${namespace} exists"
else
  temporal operator namespace create --address "$address" --namespace "$namespace" --retention "${RETENTION:-30d}"
  echo "namespace ${namespace} created (closed workflows kept ${RETENTION:-30d})"
fi
