#!/usr/bin/env bash
# Campaign dashboard at scale: one campaign with 1 M scan events over 365 days, on a throwaway PostgreSQL cluster.
#   bench/dashboard.sh [EVENTS=1000000] [PLACEMENTS=10]
# bench/dashboard.py makes the events with one INSERT ... SELECT generate_series (not the ORM one by one), builds the
# rollups, then times 5 warm requests of the campaign page (lifetime range), the campaign list and the placement page
# through Django's test client, and prints the medians. Figures go to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=dashboard-bench
. scripts/lib.sh

ensure_system_packages postgresql
WORK=$(mktemp -d /tmp/qart-dashboard.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    pg_stop "$WORK/pg"
    rm -rf "$WORK"
}
trap cleanup EXIT

pg_start "$WORK/pg"
export DATABASE_URL="postgres://qart@127.0.0.1:$PG_PORT/qart" DEBUG=0 SECURE_SSL_REDIRECT=0 \
    SECRET_KEY=bench-only-secret-key-0123456789-0123456789-0123456789
export ALLOWED_HOSTS=testserver STATIC_ROOT="$WORK/static" MEDIA_ROOT="$WORK/media" LOG_LEVEL=WARNING
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:1/0} # unused: the pages read no Redis
mkdir -p "$STATIC_ROOT" "$MEDIA_ROOT"
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python bench/dashboard.py --events "${1:-1000000}" --placements "${2:-10}"
