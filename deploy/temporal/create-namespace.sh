#!/bin/sh
# Waits until the Temporal frontend is serving, creates the namespace ApprovalPlus uses (if missing), then registers
# the search attributes its workflows set (those missing). Runs once per `docker compose up` in the
# temporalio/admin-tools image (service `temporal-namespace`), before any worker or ingress starts; every step is
# idempotent. This is the one place they are registered: workers only check them (scaled workers registering at the
# same time race each other, and Temporal Cloud refuses OperatorService adds — there, use tcld or the Cloud UI).
# Environment: TEMPORAL_ADDRESS, NAMESPACE, RETENTION, SEARCH_ATTRIBUTES ("Name=Type …", types as the CLI spells them:
# Keyword, Datetime, …; the list is workflows/definitions.ts SEARCH_ATTRIBUTES, checked by test/compose.test.ts).
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${NAMESPACE:-default}"
retention="${RETENTION:-30d}"
attributes="${SEARCH_ATTRIBUTES:?set SEARCH_ATTRIBUTES to the Name=Type pairs to register}"

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
  temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention"
  echo "namespace ${namespace} created (closed workflows kept ${retention})"
fi

# The registered custom attributes, as JSON: "Name": "INDEXED_VALUE_TYPE_KEYWORD", one per line. A namespace just
# created is "not found" until the frontend's namespace cache refreshes (about 10 s), so this waits for it.
tries=0
until existing="$(temporal operator search-attribute list --address "$address" --namespace "$namespace" -o json 2>&1)"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "cannot list the search attributes of namespace ${namespace}: ${existing}" >&2
    exit 1
  fi
  sleep 1
done
create_args=''
added=''
for pair in $attributes; do
  name="${pair%%=*}"
  type="${pair#*=}"
  if [ -z "$name" ] || [ "$name" = "$pair" ] || [ -z "$type" ]; then
    echo "SEARCH_ATTRIBUTES: '${pair}' is not Name=Type" >&2
    exit 1
  fi
  enum="INDEXED_VALUE_TYPE_$(printf '%s' "$type" | tr '[:lower:]' '[:upper:]')"
  if printf '%s\n' "$existing" | grep -Eq "\"${name}\": *\"${enum}\""; then
    echo "search attribute ${name} (${type}) exists"
  elif printf '%s\n' "$existing" | grep -Eq "\"${name}\": *\""; then
    # Another type cannot be changed in place; the workflows' upserts would fail on it.
    echo "search attribute ${name} exists in namespace ${namespace} with another type than ${type}:" >&2
    printf '%s\n' "$existing" | grep -E "\"${name}\": *\"" >&2
    exit 1
  else
    create_args="${create_args} --name ${name} --type ${type}"
    added="${added} ${name} (${type})"
  fi
done
if [ -n "$create_args" ]; then
  # shellcheck disable=SC2086 # word splitting of the --name/--type pairs is intended
  temporal operator search-attribute create --address "$address" --namespace "$namespace" $create_args
  echo "search attributes registered:${added}"
fi
