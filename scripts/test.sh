#!/usr/bin/env bash
# `make test`: ruff, then the whole pytest suite twice, side by side: on a throwaway PostgreSQL cluster and on SQLite,
# each with its own throwaway Redis (SERIAL=1: one pass after the other). The tests that store media in a bucket (marker `s3`) run once, in the PostgreSQL pass, against a
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
REDIS_PIDS=()
PG_STARTED=""
BESIDE_PID="" # the SQLite pass while it runs beside the PostgreSQL pass

cleanup() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM HUP # finish cleaning up even when make passes the signal on a second time
    if [ -n "$BESIDE_PID" ]; then # stopped before it finished: show how far it got
        stop_group "$BESIDE_PID" "the SQLite pass"
        echo "== the SQLite pass, stopped (its last lines)"
        tail -n 40 "$WORK/sqlite.log" 2>/dev/null || true
    fi
    [ -n "$PG_STARTED" ] && pg_stop "$WORK/pg"
    s3_stop
    local pid
    for pid in "${REDIS_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
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

# start_redis NAME: a throwaway Redis for one pass (its own server: the passes run side by side); sets REDIS_URL.
start_redis() {
    local name=$1 port pid
    port=$(free_port $((63799 + ${#REDIS_PIDS[@]} * 10)))
    echo "== Redis $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$port for the $name pass"
    mkdir -p "$WORK/redis-$name"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$WORK/redis-$name" \
        --logfile "$WORK/redis-$name/redis.log" </dev/null &
    pid=$!
    REDIS_PIDS+=("$pid")
    for _ in $(seq 1 50); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
        kill -0 "$pid" 2>/dev/null || {
            cat "$WORK/redis-$name/redis.log" >&2
            die "redis-server exited"
        }
        sleep 0.1
    done
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] || die "redis-server did not answer PING"
    REDIS_URL="redis://127.0.0.1:$port/0"
}

if [ -z "$FAST" ]; then
    s3_start "$WORK/s3"
fi

# run_suite NAME DATABASE_URL [PYTEST_ARG...]: pytest on that database, with its own Redis, media and static
# folders. "No tests collected" (exit 5) counts as a failure. Prints the result line and the 15 slowest tests (the
# suite must stay under 45 minutes in CI: this says where its time goes); exits with pytest's status.
run_suite() {
    local name=$1 url=$2 rc=0
    shift 2
    mkdir -p "$WORK/$name/media" "$WORK/$name/static" # WhiteNoise warns about a missing STATIC_ROOT on every request
    echo "== pytest on $name"
    DATABASE_URL=$url REDIS_URL=${PASS_REDIS[$name]} MEDIA_ROOT=$WORK/$name/media STATIC_ROOT=$WORK/$name/static \
        .venv/bin/pytest --durations=15 "$@" "${pytest_args[@]}" </dev/null || rc=$?
    return "$rc"
}
declare -A RESULT=() PASS_REDIS=()
FAILED=0
result() {
    case $2 in
    0) RESULT[$1]="passed" ;;
    5) RESULT[$1]="FAILED: pytest collected no tests (exit 5)" ;;
    *) RESULT[$1]="FAILED (pytest exit $2)" ;;
    esac
    [ "$2" -eq 0 ] || FAILED=1
}

start_redis SQLite
PASS_REDIS[SQLite]=$REDIS_URL
unset REDIS_URL
if [ -n "$FAST" ]; then
    rc=0
    run_suite SQLite "sqlite:///$WORK/qart.sqlite3" || rc=$?
    result SQLite "$rc"
else
    start_redis PostgreSQL
    PASS_REDIS[PostgreSQL]=$REDIS_URL
    unset REDIS_URL
    # The passes share nothing but the machine, so they run side by side (most of a test's time is waiting on
    # processes, servers and the browser): the SQLite pass's output is kept in a file and printed after the
    # PostgreSQL pass's. SERIAL=1 runs them one after the other.
    sqlite_args=(SQLite "sqlite:///$WORK/qart.sqlite3" -m "not s3") # the S3 tests run in the PostgreSQL pass
    if [ -n "${SERIAL:-}" ]; then
        rc=0
        run_suite PostgreSQL "postgres://qart@127.0.0.1:$PG_PORT/qart" || rc=$?
        result PostgreSQL "$rc"
        rc=0
        run_suite "${sqlite_args[@]}" || rc=$?
        result SQLite "$rc"
    else
        echo "== pytest on SQLite runs beside the PostgreSQL pass; its output follows that pass's"
        setsid bash -c "$(declare -f run_suite); $(declare -p PASS_REDIS pytest_args); WORK=$WORK; \
            run_suite \"\$@\"" run_suite "${sqlite_args[@]}" >"$WORK/sqlite.log" 2>&1 </dev/null &
        BESIDE_PID=$!
        rc=0
        run_suite PostgreSQL "postgres://qart@127.0.0.1:$PG_PORT/qart" || rc=$?
        result PostgreSQL "$rc"
        rc=0
        wait "$BESIDE_PID" || rc=$?
        BESIDE_PID=""
        cat "$WORK/sqlite.log"
        result SQLite "$rc"
    fi
fi

echo "== summary"
echo "   ruff:       passed"
[ -z "$FAST" ] && echo "   PostgreSQL: ${RESULT[PostgreSQL]}"
echo "   SQLite:     ${RESULT[SQLite]}"
exit "$FAILED"
