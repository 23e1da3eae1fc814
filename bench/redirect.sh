#!/usr/bin/env bash
# Short-link redirect throughput: gunicorn + PostgreSQL + Redis on this machine, wrk on loopback, the scan drainer
# (manage.py qart_drain_scans) storing scans while wrk runs.
#   bench/redirect.sh [SECONDS=20] [CONNECTIONS=16] [WORKERS=2] [ROUNDS=3]   (one gunicorn sync worker per core)
# In ROUNDS pairs, measures a trivial Django view that answers the same 302 without touching the database
# (bench/urls.py, same gunicorn and middleware), then the short link; prints both, each pair's ratio and the median
# (target >= 0.80) and p99 (target < 25 ms),
# the drainer's backlog when wrk stops, then lets the drainer finish and checks that every 302 produced exactly one
# stored scan event.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=redirect-bench
. scripts/lib.sh

SECONDS_RUN=${1:-20}
CONNECTIONS=${2:-16}
WORKERS=${3:-2}
ROUNDS=${4:-3}
PY=.venv/bin/python
ensure_system_packages postgresql redis-server wrk
WORK=$(mktemp -d /tmp/qart-bench.XXXXXX)
chmod 755 "$WORK"
GUNICORN_PID=""
DRAINER_PID=""
REDIS_PID=""
cleanup() {
    [ -n "$GUNICORN_PID" ] && kill "$GUNICORN_PID" 2>/dev/null && wait "$GUNICORN_PID" 2>/dev/null
    [ -n "$DRAINER_PID" ] && kill "$DRAINER_PID" 2>/dev/null && wait "$DRAINER_PID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    pg_stop "$WORK/pg"
    rm -rf "$WORK"
}
trap cleanup EXIT
fail_log() { tail -n 30 "$WORK/gunicorn.log" "$WORK/drainer.log" "$WORK/pg/server.log" >&2 2>/dev/null || true; }
trap 'fail_log' ERR

pg_start "$WORK/pg"
redis_start "$WORK"
export REDIS_URL QART_SPOOL_DIR="$WORK/spool"
export DATABASE_URL="postgres://qart@127.0.0.1:$PG_PORT/qart" DEBUG=0 SECURE_SSL_REDIRECT=0 \
    SECRET_KEY=bench-only-secret-key-0123456789-0123456789-0123456789
export ALLOWED_HOSTS=127.0.0.1 STATIC_ROOT="$WORK/static" MEDIA_ROOT="$WORK/media" DB_CONN_MAX_AGE=600
export LOG_LEVEL=WARNING
mkdir -p "$STATIC_ROOT" "$MEDIA_ROOT"
"$PY" manage.py migrate --noinput -v 0
slug=$("$PY" manage.py shell -v 0 -c '
from qartsite.models import Team
from campaigns.models import Campaign, Placement
team = Team.objects.create(name="Bench")
campaign = Campaign.objects.create(team=team, name="Bench", destination="https://shop.example.com/offer")
print(Placement.objects.create(campaign=campaign, name="Poster").slug)')

# At idle priority (SCHED_IDLE, as deployed beside web processes: README): the buffer absorbs a burst and the drainer
# takes only the CPU the web processes leave, so under saturation it stores the backlog afterwards (reported below).
chrt --idle 0 "$PY" manage.py qart_drain_scans >"$WORK/drainer.log" 2>&1 &
DRAINER_PID=$!

PORT=$(free_port 8811)
DJANGO_SETTINGS_MODULE=bench.settings ${GUNICORN:-.venv/bin/gunicorn} qartsite.wsgi -b "127.0.0.1:$PORT" -w "$WORKERS" --access-logfile /dev/null \
    --error-logfile "$WORK/gunicorn.log" &
GUNICORN_PID=$!
for _ in $(seq 1 100); do port_in_use "$PORT" && break; sleep 0.1; done
UA='Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'
curl -s --retry 30 --retry-connrefused --retry-delay 1 --retry-all-errors -m 10 -o /dev/null -w "warm-up: %{http_code} -> %{redirect_url} %{errormsg}\n" -A "$UA" "http://127.0.0.1:$PORT/r/$slug"
count_events() { "$PY" manage.py shell -v 0 -c 'from campaigns.models import ScanEvent; print(ScanEvent.objects.count())'; }
for _ in $(seq 1 50); do [ "$(count_events)" -ge 1 ] && break; sleep 0.2; done # the warm-up's scan, drained
before=$(count_events)

# CPU seconds (user + system) used so far by processes: the figures below say where a request's CPU goes, which on a
# shared box is steadier than requests/s (other load slows both runs, but does not add to these processes' CPU).
cpu_of() { # PID...: their CPU seconds and their live children's
    local pid total=0
    for pid in "$@"; do
        for p in "$pid" $(pgrep -P "$pid" || true); do
            total=$(awk -v t="$total" -v hz="$(getconf CLK_TCK)" '{print t + ($14 + $15) / hz}' "/proc/$p/stat" 2>/dev/null || echo "$total")
        done
    done
    echo "$total"
}
pg_pids() { pgrep -f "postgres.*$WORK/pg|postgres: " -d ' ' || true; }
# measure NAME URL: wrk against URL; writes $WORK/wrk-NAME.txt and $WORK/cpu-NAME.txt (CPU µs per request by process)
measure() {
    local name=$1 url=$2 g0 r0 d0 p0 requests
    g0=$(cpu_of "$GUNICORN_PID"); r0=$(cpu_of "$REDIS_PID"); d0=$(cpu_of "$DRAINER_PID"); p0=$(cpu_of $(pg_pids))
    TIMEFORMAT='%U %S'
    { time wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_RUN}s" --latency -H "User-Agent: $UA" "$url" >"$WORK/wrk-$name.txt"; } \
        2>"$WORK/time-$name.txt"
    requests=$(awk '/requests in/ {print $1}' "$WORK/wrk-$name.txt")
    awk -v n="$requests" -v g="$(cpu_of "$GUNICORN_PID")" -v g0="$g0" -v r="$(cpu_of "$REDIS_PID")" -v r0="$r0" \
        -v d="$(cpu_of "$DRAINER_PID")" -v d0="$d0" -v p="$(cpu_of $(pg_pids))" -v p0="$p0" \
        '{w = $1 + $2; printf "gunicorn %.0f, redis %.0f, drainer %.0f, postgres %.0f, wrk %.0f, total %.0f\n", (g - g0) / n * 1e6, (r - r0) / n * 1e6, (d - d0) / n * 1e6, (p - p0) / n * 1e6, w / n * 1e6, (g - g0 + r - r0 + d - d0 + p - p0 + w) / n * 1e6}' \
        "$WORK/time-$name.txt" >"$WORK/cpu-$name.txt"
    cat "$WORK/wrk-$name.txt"
    echo "== CPU µs per request: $(cat "$WORK/cpu-$name.txt")"
}
cpu_total() { awk -F'total ' '{print $2}' "$WORK/cpu-$1.txt"; }

# ROUNDS pairs, each the trivial view then the short link: other load on a shared box moves requests/s by +-20 % from
# minute to minute, so the ratio is taken within each pair and the median of the pairs is reported.
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
p99() { # in ms, whatever unit wrk chose
    awk '$1 == "99%" {v = $2; u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        printf "%.2f", v * (u == "us" ? 0.001 : u == "s" ? 1000 : u == "m" ? 60000 : 1)}' "$1"
}
ratios=() cpu_ratios=() link_p99s=()
backlog() { echo $(( $(redis-cli -p "$REDIS_PORT" xlen qart:scans) + $(cat "$WORK"/spool/* 2>/dev/null | wc -l) )); }
if [ "${DRAIN_DURING:-1}" = 0 ]; then # diagnosis: the web processes alone while wrk runs; the drainer stores it all after
    echo "== DRAIN_DURING=0: no drainer while wrk runs"
    kill "$DRAINER_PID"
    wait "$DRAINER_PID" || true
    DRAINER_PID=""
fi
for round in $(seq 1 "$ROUNDS"); do
    # The drainer first stores the previous round's backlog (up to 60 s), or its CPU would count against the baseline.
    for _ in $(seq 1 120); do [ -z "$DRAINER_PID" ] || [ "$(backlog)" -eq 0 ] && break; sleep 0.5; done
    echo "== round $round of $ROUNDS: a trivial 302 view, ${SECONDS_RUN}s, $CONNECTIONS connections, 1 thread; gunicorn $WORKERS sync workers; $(nproc) cores"
    measure "baseline-$round" "http://127.0.0.1:$PORT/bench/302"
    echo "== round $round of $ROUNDS: the short link /r/<slug>, the same load"
    measure "link-$round" "http://127.0.0.1:$PORT/r/$slug"
    ratio=$(awk -v a="$(rate "$WORK/wrk-link-$round.txt")" -v b="$(rate "$WORK/wrk-baseline-$round.txt")" 'BEGIN {printf "%.2f", a / b}')
    cpu_ratio=$(awk -v a="$(cpu_total "baseline-$round")" -v b="$(cpu_total "link-$round")" 'BEGIN {printf "%.2f", a / b}')
    ratios+=("$ratio") cpu_ratios+=("$cpu_ratio") link_p99s+=("$(p99 "$WORK/wrk-link-$round.txt")")
    echo "== round $round: short link $(rate "$WORK/wrk-link-$round.txt") req/s, p99 $(p99 "$WORK/wrk-link-$round.txt") ms; trivial view $(rate "$WORK/wrk-baseline-$round.txt") req/s, p99 $(p99 "$WORK/wrk-baseline-$round.txt") ms; ratio $ratio, by CPU $cpu_ratio"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "== ratio, median of $ROUNDS rounds: $(median "${ratios[@]}") (rounds: ${ratios[*]}; target >= 0.80)"
echo "== CPU per request, trivial view / short link, median: $(median "${cpu_ratios[@]}") (rounds: ${cpu_ratios[*]}; what the ratio would be on a box with nothing else running)"
echo "== short link p99, median: $(median "${link_p99s[@]}") ms (rounds: ${link_p99s[*]}; target < 25 ms)"
echo "== drainer backlog when wrk stopped: $(redis-cli -p "$REDIS_PORT" xlen qart:scans) on the stream, $(cat "$WORK"/spool/* 2>/dev/null | wc -l) in spool files"
# The running drainer (idle priority, the cores now to itself) stores the backlog, timed: what it sustains once the
# burst is over. Then it is stopped, and what it held is stored as a restart would.
if [ -n "$DRAINER_PID" ]; then
    backlog_at_stop=$(backlog)
    drain_started=$(date +%s.%N)
    for _ in $(seq 1 1200); do [ "$(backlog)" -eq 0 ] && break; sleep 0.25; done
    echo "== the backlog's drain: $backlog_at_stop events in $(awk -v a="$drain_started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s by the running drainer ($(backlog) left)"
    kill "$DRAINER_PID"
    wait "$DRAINER_PID" || true
    DRAINER_PID=""
fi
"$PY" manage.py qart_drain_scans --once --claim-idle 0 # also what the stopped drainer held
# check_stored EVENTS_BEFORE WRK_OUTPUT...: every 302 of those wrk runs stored exactly one scan event, none left spooled.
check_stored() { # EVENTS_BEFORE WRK_OUTPUT...
    local requests errors redirects stored spooled before=$1
    shift
    requests=$(cat "$@" | awk '/requests in/ {n += $1} END {print n}')
    errors=$(cat "$@" | awk '/Non-2xx or 3xx/ {n += $NF} END {print n + 0}')
    redirects=$((requests - ${errors:-0}))
    stored=$(($(count_events) - before))
    spooled=$(find "$WORK/spool" -type f 2>/dev/null | wc -l || true)
    echo "== requests completed: $requests; 302s: $redirects; scan events stored: $stored; spool files left: $spooled"
    # wrk counts only completed responses; a request cut off when the run ends may still be stored.
    if [ "${errors:-0}" -ne 0 ] || [ "$stored" -lt "$redirects" ] || [ "$stored" -gt $((redirects + $# * CONNECTIONS)) ] ||
        [ "$spooled" -ne 0 ]; then
        echo "MISMATCH: events stored ($stored) differ from 302 responses ($redirects), or not every answer was a 302" >&2
        exit 1
    fi
    echo "== every 302 stored exactly one event (up to $CONNECTIONS in flight at the end of each run)"
}
check_stored "$before" "$WORK"/wrk-link-*.txt

# The same load while PostgreSQL is stopped for 10 s and started again: redirects must keep flowing (from the link
# copies), every scan must still be stored once the drainer reaches the database again, and no request may wait.
chrt --idle 0 "$PY" manage.py qart_drain_scans >>"$WORK/drainer.log" 2>&1 &
DRAINER_PID=$!
before=$(count_events)
OUTAGE_RUN=$((SECONDS_RUN > 20 ? SECONDS_RUN : 20))
echo "== outage: ${OUTAGE_RUN}s of load, PostgreSQL stopped from 5 s to 15 s"
wrk -t1 -c"$CONNECTIONS" -d"${OUTAGE_RUN}s" --latency -H "User-Agent: $UA" "http://127.0.0.1:$PORT/r/$slug" \
    >"$WORK/wrk-outage.txt" &
WRK_PID=$!
sleep 5
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null
sleep 10
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 60 -o "$PG_OPTIONS" start >/dev/null
wait "$WRK_PID"
cat "$WORK/wrk-outage.txt"
echo "== slowest request during the outage run: $(awk '/Latency/ {print $4; exit}' "$WORK/wrk-outage.txt") (target: none over 1 s)"
kill "$DRAINER_PID"
wait "$DRAINER_PID" || true
DRAINER_PID=""
"$PY" manage.py qart_drain_scans --once --claim-idle 0 # also what the stopped drainer held
check_stored "$before" "$WORK/wrk-outage.txt"
