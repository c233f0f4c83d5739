#!/bin/sh
# Creates (if missing) and migrates Temporal's two PostgreSQL databases. Runs once per `docker compose up` in the
# temporalio/admin-tools image (service `temporal-schema`); every step is idempotent, so re-running it is safe and
# is also how the schema is upgraded after raising the Temporal image tags.
# Environment: POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, SQL_PASSWORD (read by temporal-sql-tool), TEMPORAL_DB,
# TEMPORAL_VISIBILITY_DB.
set -eu

host="${POSTGRES_HOST:-postgresql}"
port="${POSTGRES_PORT:-5432}"
user="${POSTGRES_USER:-temporal}"
schema_root=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at ${host}:${port}…"
until nc -z -w 5 "$host" "$port"; do sleep 1; done

for pair in "${TEMPORAL_DB:-temporal}:temporal" "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}:visibility"; do
  db="${pair%%:*}"
  kind="${pair##*:}"
  sql="temporal-sql-tool --plugin postgres12 --ep $host -p $port -u $user --db $db"
  echo "database ${db} (${kind} schema)"
  $sql create                      # no-op when it exists
  $sql setup-schema -v 0.0         # version tables only; skipped when a newer version is recorded
  $sql update-schema -d "${schema_root}/${kind}/versioned"   # applies every versioned migration not yet applied
done
echo "Temporal schema is up to date"
