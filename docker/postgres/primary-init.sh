#!/bin/bash
# Runs once, when the primary's data folder is first made (docker-entrypoint-initdb.d): the
# role the replica streams with, its password from the secret file, and its pg_hba line.
set -euo pipefail
password=$(cat /run/secrets/replication_password)
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -v password="$password" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
