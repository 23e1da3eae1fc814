"""Whether a process of this host is gone (`generator.processes`): what lets a worker retry a killed worker's job."""

from __future__ import annotations

import subprocess
import time

from generator import processes


def test_a_holder_is_gone_once_its_pid_is_free_a_zombie_or_another_process(gone_process):
    assert processes.holder_gone(gone_process)
    zombie = subprocess.Popen(["sleep", "60"])
    token = processes.process_token(zombie.pid)
    zombie.kill()  # not reaped yet: the out-of-memory killer's victim whose parent has not waited for it
    try:
        deadline = time.monotonic() + 10
        while not processes.holder_gone(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes.holder_gone(token)
    finally:
        zombie.wait()
    here = processes.process_token()
    assert not processes.holder_gone(here)
    assert processes.holder_gone(here.rpartition(" ")[0] + " 1")  # its pid given to a later process
    assert not processes.holder_gone("") and not processes.holder_gone("a lease of an older worker")
