"""scripts/lib.sh's helpers, run by bash as the scripts run them."""

from __future__ import annotations

import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib.sh"

# A service that takes `$2` seconds to stop cleanly after SIGTERM (a worker finishing its job, the drainer its batch),
# writing "<name> ready <time>" once its trap is set, "<name> term <time>" to the log when the signal comes and
# "<name> stopped <time>" as it goes; started in its own process group, as run.sh starts them.
SERVICE = """
service() {
    setsid bash -c 'trap "echo \\"$1 term \\$(date +%s.%N)\\" >> \\"$3\\"; sleep $2;
                          echo \\"$1 stopped \\$(date +%s.%N)\\" >> \\"$3\\"; exit 0" TERM
                    echo "$1 ready $(date +%s.%N)" >> "$3"
                    while :; do sleep 0.05; done' service "$1" "$2" "$3" </dev/null &
}
"""


def test_stop_services_stops_all_at_once_and_the_last_one_after_the_others(tmp_path):
    # One after another, `make run`'s stop took the sum of every service's clean shutdown (9.5-12.3 s idle).
    log = tmp_path / "log"
    script = f"""set -euo pipefail
SCRIPT_NAME=test
. {LIB}
{SERVICE}
service worker 1.5 {log}; worker=$!
service drainer 1.5 {log}; drainer=$!
service web 1.5 {log}; web=$!
service redis 0 {log}; redis=$!
# Whatever happens below, no service outlives the test (one that did kept running on a developer's machine).
trap 'kill -KILL "$worker" "$drainer" "$web" "$redis" 2>/dev/null || true' EXIT
# Their traps set: a signal before that killed a service without a line (a fixed 0.3 s wait raced a loaded machine).
until [ "$(grep -c ' ready ' {log} 2>/dev/null)" = 4 ]; do sleep 0.05; done
stop_services redis "$redis" redis "$worker" worker "$drainer" drainer "$web" web
# Every one gone, and reaped. (`! kill -0` does not stop a `set -e` script: bash exempts a command under `!`.)
for pid in "$worker" "$drainer" "$web" "$redis"; do
    if kill -0 "$pid" 2>/dev/null; then echo "$pid is still running" >&2; exit 1; fi
done
"""
    subprocess.run(["bash", "-c", script], check=True, timeout=30)
    events = {(name, what): float(at) for name, what, at in (line.split() for line in log.read_text().splitlines())}
    others = ("worker", "drainer", "web")
    assert set(events) == {(name, what) for name in (*others, "redis") for what in ("ready", "term", "stopped")}
    # At once: every service was told to stop before any of them had finished stopping (one after another, the next
    # is told only once the one before has stopped, 1.5 s later).
    assert max(events[name, "term"] for name in others) < min(events[name, "stopped"] for name in others)
    # Redis last: told to stop only once the others had stopped.
    assert events["redis", "term"] >= max(events[name, "stopped"] for name in others)
