#!/usr/bin/env bash
# `make test`: ruff, then the whole pytest suite twice: on a throwaway PostgreSQL cluster and on SQLite, both with a
# throwaway Redis. The tests that store media in a bucket (marker `s3`) run once, in the PostgreSQL pass, against a
# throwaway SeaweedFS S3 server. Everything lives in temporary folders and is stopped and removed on exit, pass or fail.
# Extra pytest arguments: PYTEST_ARGS="-k demo -x" (from make) or as arguments to this script.
# FAST=1 (`make test-fast`): the quick local loop: SQLite only, without the tests that start a worker process or
# Chromium, the fault drills and the S3 server's tests (markers `worker`, `browser`, `drill` and `s3`).
# Ignores .env on purpose: the suite must not depend on a developer's local settings.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=test
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

PY=.venv/bin/python
"$PY" -c 'import django' 2>/dev/null || die "$PY does not run or lacks Django; run: make venv"

pytest_args=()
if [ -n "${PYTEST_ARGS:-}" ]; then
    eval "pytest_args=($PYTEST_ARGS)"
fi
pytest_args+=("$@")

# chromium: Debian's browser for tests/e2e (Playwright drives it; Playwright's own browsers are never downloaded).
FAST=${FAST:-}
if [ -n "$FAST" ]; then
    ensure_system_packages redis-server libzbar0 libgs-common
    pytest_args=(-m "not worker and not browser and not drill and not s3" "${pytest_args[@]}")
else
    ensure_system_packages redis-server postgresql libzbar0 chromium libgs-common
    PG_BIN=$(pg_bindir) || die "PostgreSQL's initdb/pg_ctl not found"
fi

# Settings come only from here: drop anything inherited that would point the suite at real services.
unset DATABASE_URL REDIS_URL SECRET_KEY ALLOWED_HOSTS CSRF_TRUSTED_ORIGINS SITE_ROOT MEDIA_ROOT STATIC_ROOT
unset QART_DEMO_USER QART_DEMO_PASSWORD
unset QART_TEST_PG_BIN QART_TEST_PG_DATA QART_TEST_PG_OPTIONS QART_TEST_PG_USER
unset MEDIA_STORAGE MEDIA_S3_ENDPOINT_URL MEDIA_S3_BUCKET MEDIA_S3_REGION MEDIA_S3_ACCESS_KEY_ID \
    MEDIA_S3_SECRET_ACCESS_KEY MEDIA_S3_ADDRESSING_STYLE MEDIA_S3_PREFIX
unset QART_TEST_S3_ENDPOINT_URL QART_TEST_S3_BUCKET QART_TEST_S3_ACCESS_KEY_ID QART_TEST_S3_SECRET_ACCESS_KEY
export DEBUG=1 DJANGO_SETTINGS_MODULE=qartsite.settings

echo "== ruff check ."
.venv/bin/ruff check .

# Short paths under /tmp: PostgreSQL's unix socket path must stay under ~100 bytes.
WORK=$(mktemp -d /tmp/qart-test.XXXXXX)
chmod 755 "$WORK"
REDIS_PID=""
PG_STARTED=""

cleanup() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM HUP # finish cleaning up even when make passes the signal on a second time
    [ -n "$PG_STARTED" ] && pg_stop "$WORK/pg"
    s3_stop
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ -z "$FAST" ]; then
    pg_start "$WORK/pg"
    PG_STARTED=1
    # The fault drill tests/drills/test_postgresql_stopped.py stops this cluster mid-test and starts it again.
    export QART_TEST_PG_BIN=$PG_BIN QART_TEST_PG_DATA=$WORK/pg/data QART_TEST_PG_OPTIONS=$PG_OPTIONS
    export QART_TEST_PG_USER=$PG_USER # empty: this user; else the user the cluster runs as (runuser)
fi

REDIS_PORT=$(free_port 63799)
echo "== Redis $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$WORK" \
    --logfile "$WORK/redis.log" </dev/null &
REDIS_PID=$!
for _ in $(seq 1 50); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || {
        cat "$WORK/redis.log" >&2
        die "redis-server exited"
    }
    sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || die "redis-server did not answer PING"

export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export MEDIA_ROOT="$WORK/media" STATIC_ROOT="$WORK/static"
mkdir -p "$MEDIA_ROOT" "$STATIC_ROOT" # WhiteNoise warns about a missing STATIC_ROOT on every request

if [ -z "$FAST" ]; then
    s3_start "$WORK/s3"
fi

# run_suite NAME DATABASE_URL [PYTEST_ARG...]: pytest on that database. "No tests collected" (exit 5) counts as a
# failure.
declare -A RESULT=()
FAILED=0
run_suite() {
    local name=$1 url=$2 rc=0
    shift 2
    echo "== pytest on $name"
    DATABASE_URL=$url .venv/bin/pytest "$@" "${pytest_args[@]}" </dev/null || rc=$?
    case $rc in
    0) RESULT[$name]="passed" ;;
    5) RESULT[$name]="FAILED: pytest collected no tests (exit 5)" ;;
    *) RESULT[$name]="FAILED (pytest exit $rc)" ;;
    esac
    [ "$rc" -eq 0 ] || FAILED=1
}
[ -z "$FAST" ] && run_suite PostgreSQL "postgres://qart@127.0.0.1:$PG_PORT/qart"
if [ -z "$FAST" ]; then
    run_suite SQLite "sqlite:///$WORK/qart.sqlite3" -m "not s3" # the S3 tests ran in the PostgreSQL pass
else
    run_suite SQLite "sqlite:///$WORK/qart.sqlite3"
fi

echo "== summary"
echo "   ruff:       passed"
[ -z "$FAST" ] && echo "   PostgreSQL: ${RESULT[PostgreSQL]}"
echo "   SQLite:     ${RESULT[SQLite]}"
exit "$FAILED"
