#!/usr/bin/env bash
# Several drainers on one busy team: scans/s by 1, 2 and 3 drainer processes, and what their batches wait for
# (the placements' row locks, the campaigns' and the team's advisory locks), on a throwaway PostgreSQL cluster and
# Redis.
#   bench/drainers.sh [SCANS=20000] [DRAINERS=1,2,3] [--layouts 3,5] [--repeat 3]
# bench/drainers.py seeds the teams, fills the stream, starts the drainers and prints one table row per run.
# Figures go to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=drainers-bench
. scripts/lib.sh

ensure_system_packages postgresql redis-server
WORK=$(mktemp -d /tmp/qart-drainers.XXXXXX)
chmod 755 "$WORK"
REDIS_PID=""
cleanup() {
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    pg_stop "$WORK/pg"
    rm -rf "$WORK"
}
trap cleanup EXIT

pg_start "$WORK/pg"
redis_start "$WORK"
export REDIS_URL QART_SPOOL_DIR="$WORK/spool" QART_SCAN_BUFFER=stream
export DATABASE_URL="postgres://qart@127.0.0.1:$PG_PORT/qart" DEBUG=0 SECURE_SSL_REDIRECT=0 \
    SECRET_KEY=bench-only-secret-key-0123456789-0123456789-0123456789
export ALLOWED_HOSTS=127.0.0.1 STATIC_ROOT="$WORK/static" MEDIA_ROOT="$WORK/media" LOG_LEVEL=WARNING
mkdir -p "$STATIC_ROOT" "$MEDIA_ROOT" "$QART_SPOOL_DIR"
.venv/bin/python manage.py migrate --noinput -v 0
echo "== $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD)"
QART_BENCH_PG_DATA="$WORK/pg/data" .venv/bin/python bench/drainers.py --scans "${1:-20000}" \
    --drainers "${2:-1,2,3}" --work "$WORK" "${@:3}"
echo "== load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
