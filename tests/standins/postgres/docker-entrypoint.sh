#!/bin/sh
# STAND-IN entrypoint of docker.io/library/postgres (tests only; tests/standins/postgres/build.sh).
# Written for the tests from the official image's documented contract (Docker Hub "postgres",
# docker-library/docs postgres/content.md: "Environment Variables", "Docker Secrets", "Initialization
# scripts", "Arbitrary --user Notes"), not from its script:
#   POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (required to initialise), POSTGRES_USER (default
#   postgres), POSTGRES_DB (default: the user's name), POSTGRES_INITDB_ARGS, PGDATA (default
#   /var/lib/postgresql/data); the database is initialised only when PGDATA is empty and left alone
#   otherwise; password authentication (scram-sha-256) for every host; listens on all addresses;
#   runs as uid 999 (postgres) or as the uid it is started with, if that can write PGDATA.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
for var in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB POSTGRES_INITDB_ARGS; do
  eval "file=\${${var}_FILE:-}"
  eval "value=\${${var}:-}"
  if [ -n "$file" ] && [ -n "$value" ]; then
    echo "error: both $var and ${var}_FILE are set (but are exclusive)" >&2; exit 1
  fi
  if [ -n "$file" ]; then
    value=$(cat "$file")
    eval "$var=\$value"
    export "${var?}"
  fi
done
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ "${1:-}" = postgres ] || [ "${1#-}" != "${1:-}" ]; then
  [ "${1#-}" != "${1:-}" ] && set -- postgres "$@"
  if [ "$(id -u)" = 0 ]; then   # as root: own the data directory, then run as postgres
    mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
      echo "Error: Database is uninitialized and superuser password is not specified." >&2
      echo "       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value." >&2
      exit 1
    fi
    mkdir -p "$PGDATA" && chmod 0700 "$PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
      ${POSTGRES_INITDB_ARGS:-} > /dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.auto.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
      pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start > /dev/null
      psql -v ON_ERROR_STOP=1 -h /tmp -U "$POSTGRES_USER" -d postgres -q \
        -c "CREATE DATABASE \"$POSTGRES_DB\"" > /dev/null
      pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
  fi
fi
exec "$@"
