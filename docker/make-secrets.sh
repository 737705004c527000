#!/bin/sh
# Makes docker/secrets/* for compose.yaml (once; never commit them): random passwords and
# keys, the URLs that carry the database password, and the QR code key (base64 of 32 random
# bytes, the HMAC key of rule U5; server/settings.py qr_key_from_file). The
# real-name app's public key (idp_public_key) comes from the city: a placeholder key is
# made here so that the stack starts.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets && chmod 700 secrets
umask 077
rand() { openssl rand -base64 "$1" | tr -d '\n'; }
[ -s secrets/postgres_password ] || rand 24 | tr '+/' '-_' > secrets/postgres_password
[ -s secrets/replication_password ] || rand 24 | tr '+/' '-_' > secrets/replication_password
pw=$(cat secrets/postgres_password)
printf 'postgresql://vouchers:%s@postgres:5432/vouchers' "$pw" > secrets/database_url
printf 'postgresql://vouchers:%s@postgres-replica:5432/vouchers' "$pw" > secrets/database_replica_url
[ -s secrets/id_hash_key ] || rand 32 > secrets/id_hash_key
[ -s secrets/access_token_secret ] || rand 32 > secrets/access_token_secret
[ -s secrets/qr_key_a ] || rand 32 > secrets/qr_key_a
if [ ! -s secrets/idp_public_key ]; then
  openssl ecparam -name prime256v1 -genkey -noout | openssl ec -pubout -out secrets/idp_public_key
fi
# compose (without swarm) bind-mounts each file as it is: the containers' users (postgres,
# uid 10001) must be able to read it; the folder (0700) keeps other users of this host out
chmod 644 secrets/*
echo "secrets in $(pwd)/secrets"
