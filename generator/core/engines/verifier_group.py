"""Imported first by the verifier pool's fork server (`ranking.verifier_pool`): the server, and every verifier process
it forks, leave the GPU worker's process group for one of their own.

A stop is signalled to the worker's whole process group (`make run`'s stop_group: SIGTERM, after which the worker
finishes its job, SIGTERM again, SIGKILL; a terminal's Ctrl-C): its first SIGTERM ended the fork server and the
verifier processes too, and a job verifying its candidates then failed (BrokenProcessPool: the pool takes the server's
end for its processes'), spending one of its attempts. Out of that group they end with the worker instead: the server
once the worker's end of its pipe closes, the verifiers by `ranking._start_verifier`'s watch, or when the pool shuts
down or terminates them.

Nothing else is done on import, and only in the fork server: another process importing every module keeps its group.
"""

from __future__ import annotations

import os
import sys
from multiprocessing import forkserver


def _in_fork_server() -> bool:
    """Whether this import is the fork server's preload (`multiprocessing.forkserver.main` is on the stack)."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


if _in_fork_server():
    os.setpgrp()
