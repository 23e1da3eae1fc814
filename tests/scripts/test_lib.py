"""scripts/lib.sh's helpers, run by bash as the scripts run them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib.sh"

# A service that takes `$2` seconds to stop cleanly after SIGTERM (a worker finishing its job, the drainer its batch),
# writing "<name> stopped <time>" to the log as it goes; started in its own process group, as run.sh starts them.
SERVICE = """
service() {
    setsid bash -c 'trap "sleep $2; echo \\"$1 stopped \\$(date +%s.%N)\\" >> \\"$3\\"; exit 0" TERM
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
sleep 0.3  # their traps set
stop_services redis "$redis" redis "$worker" worker "$drainer" drainer "$web" web
for pid in "$worker" "$drainer" "$web" "$redis"; do
    ! kill -0 "$pid" 2>/dev/null
done
"""
    started = time.monotonic()
    subprocess.run(["bash", "-c", script], check=True, timeout=30)
    took = time.monotonic() - started
    lines = [line.split() for line in log.read_text().splitlines()]
    assert sorted(name for name, _, _ in lines) == ["drainer", "redis", "web", "worker"]
    assert lines[-1][0] == "redis" and all(float(at) <= float(lines[-1][2]) for _, _, at in lines)
    assert took < 3.5, f"{took:.1f} s: stopped one after another (4.5 s and more)"
