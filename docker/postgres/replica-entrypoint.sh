#!/bin/bash
# The streaming replica: on first start, a base backup of the primary with its recovery
# settings (pg_basebackup --write-recovery-conf, a replication slot so the primary keeps the
# WAL it has not sent); then PostgreSQL as a hot standby. Runs as the postgres user.
set -euo pipefail
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD
  PGPASSWORD=$(cat "$REPLICATION_PASSWORD_FILE")
  until pg_isready -h "$PRIMARY_HOST" -U replicator; do sleep 1; done
  pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" \
    --write-recovery-conf --wal-method=stream --checkpoint=fast \
    --create-slot --slot=replica1 --progress
  chmod 700 "$PGDATA"
  unset PGPASSWORD
fi
exec postgres -c hot_standby=on
