#!/usr/bin/env bash
# `make run`: migrate, collect static files, make the demo admin, then run Redis, two RQ workers (generations and large
# print files; webhook deliveries), the scan drainer and the development server on http://127.0.0.1:$PORT/ (default
# 8000) until Ctrl-C, which stops everything this script started.
# Reads .env when there is one. SQLite (var/qart.sqlite3) unless DATABASE_URL says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=run
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

PY=.venv/bin/python
"$PY" -c 'import django' 2>/dev/null || die "$PY does not run or lacks Django; run: make venv"

if [ -f .env ]; then
    say "reading .env"
    set -a
    # shellcheck disable=SC1091
    . ./.env
    set +a
fi
export DJANGO_SETTINGS_MODULE=qartsite.settings
# A development machine: debug pages on unless .env or the environment says otherwise (settings default to off).
export DEBUG=${DEBUG:-1}
PORT=${PORT:-8000}
# HOST=0.0.0.0 makes the site reachable from other machines, phones on the same Wi-Fi included (labeling sessions);
# add the machine's address to ALLOWED_HOSTS then. Only on a network you trust: this is Django's development server.
HOST=${HOST:-127.0.0.1}
# bind: how runserver takes it (an IPv6 address in brackets); reach: where this script checks that it listens.
case "$HOST" in
0.0.0.0) bind=$HOST reach=127.0.0.1 ;;
:: | "[::]") bind="[::]" reach=127.0.0.1 ;;
*:*) bind="[${HOST#[}" bind="${bind%]}]" reach=$HOST ;;
*) bind=$HOST reach=$HOST ;;
esac
mkdir -p var var/log

ensure_system_packages redis-server libzbar0 libgs-common

port_in_use "$PORT" "$reach" && die "$reach:$PORT is already in use (another make run?); stop it or set PORT"

PIDS=()
NAMES=()
cleanup() {
    local rc=$? i
    trap - EXIT
    trap '' INT TERM HUP # finish cleaning up even when make passes the signal on a second time
    # ... and when our output is gone: `make run | tee log` loses its tee to the same Ctrl-C, and the first message
    # written to it (SIGPIPE, or an error under set -e) ended this script with every service left running.
    trap '' PIPE
    set +e
    if [ ${#PIDS[@]} -gt 0 ]; then
        say "stopping ${NAMES[*]}"
        # All at once, Redis last (stop_services).
        local services=()
        for i in "${!PIDS[@]}"; do
            services+=("${PIDS[i]}" "${NAMES[i]}")
        done
        stop_services redis "${services[@]}"
        say "stopped"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start NAME CMD...: run CMD in its own process group (so Ctrl-C reaches only this script, and stopping takes the
# whole group, runserver's autoreload child included).
start() {
    local name=$1
    shift
    if command -v setsid >/dev/null 2>&1; then
        setsid "$@" </dev/null &
    else
        "$@" </dev/null &
    fi
    PIDS+=("$!")
    NAMES+=("$name")
}

# keep NAME CMD...: `start`, and start CMD again whenever it exits (a worker killed, or out of memory), so one
# background service going down does not take the site down with it; Redis and the web server are not kept this way:
# when either stops, everything stops.
keep() {
    local name=$1
    shift
    start "$name" bash -c 'while :; do
        "$@" </dev/null
        echo "run: $0 exited (status $?); starting it again in 5 s" >&2
        sleep 5
    done' "$name" "$@"
}

# Redis: reuse whatever answers PING at REDIS_URL; start one on 127.0.0.1 when the URL points here and none answers.
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
requeue=""
read -r redis_host redis_port < <("$PY" -c '
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 6379)' "$redis_url")
redis_ping() {
    "$PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=1).ping()' "$redis_url" \
        >/dev/null 2>&1
}
if redis_ping; then
    say "reusing the Redis that answers at $redis_host:$redis_port"
else
    case "$redis_host" in
    127.0.0.1 | localhost | ::1) ;;
    *) die "no Redis answers at $redis_url, and it is not on this machine: start it, or unset REDIS_URL" ;;
    esac
    port_in_use "$redis_port" && die "127.0.0.1:$redis_port is in use but does not answer a Redis PING"
    say "starting redis-server on 127.0.0.1:$redis_port (log: var/log/redis.log)"
    start redis redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --dir "$PWD/var" --logfile "$PWD/var/log/redis.log"
    for _ in $(seq 1 50); do
        redis_ping && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || {
            tail -n 20 var/log/redis.log >&2 || true
            die "redis-server exited"
        }
        sleep 0.1
    done
    redis_ping || die "redis-server did not answer PING within 5 s (see var/log/redis.log)"
    requeue=1
fi

# The database, migrations, static files and the demo admin, in one process (scripts/run_prepare.py); with a Redis
# of our own, new and empty, it also queues again at once the generation jobs the last stop interrupted.
login=$("$PY" scripts/run_prepare.py ${requeue:+--requeue})
printf '%s\n' "$login"
admin_login=${login%%$'\n'*}  # its first line; a fresh install's second names the demo team
admin_login=${admin_login#Demo admin: }

# One worker for both queues (generations; large print files on "default"); its class runs jobs in-process and keeps
# the generation engine warm (the GPU when present, else the tiny preset unless QART_MODEL points at weights).
keep worker "$PY" manage.py rqworker gpu default --worker-class generator.worker.GenerationWorker
# Webhook deliveries: a light worker of their own; the scheduler runs their retries' back-off.
keep webhooks "$PY" manage.py rqworker webhooks --with-scheduler
# The short link only buffers scans (this process's spool file in var/spool/ first, the Redis stream where it cannot
# be written; QART_SCAN_BUFFER=stream the other way round); this stores them.
keep drainer "$PY" manage.py qart_drain_scans
start web "$PY" manage.py runserver "$bind:$PORT"

for _ in $(seq 1 300); do
    port_in_use "$PORT" "$reach" && break
    for i in "${!PIDS[@]}"; do
        kill -0 "${PIDS[i]}" 2>/dev/null || die "${NAMES[i]} exited during start-up"
    done
    sleep 0.1
done
port_in_use "$PORT" "$reach" || die "the web server did not listen on $reach:$PORT within 30 s"

cat >&2 <<MSG

  qart is running:  http://127.0.0.1:$PORT/$( [ "$HOST" = 127.0.0.1 ] || printf '  (listening on %s)' "$HOST")
  admin:            http://127.0.0.1:$PORT/admin/   ($admin_login)
  Ctrl-C stops ${NAMES[*]}.

MSG

# Wait until Ctrl-C (the traps) or until one of the services dies, which takes the others down too.
set +e
wait -n "${PIDS[@]}"
rc=$?
set -e
for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[i]}" 2>/dev/null || say "${NAMES[i]} exited (status $rc); stopping the rest"
done
exit 1
