"""Who a process is, for another process of the same host to tell whether it is gone: a generation worker's lease
names its holder (`generator.leases`), and RQ's registry cleaning lock names its holder too (`generator.cleaning`),
so that a worker killed (SIGKILL: the out-of-memory killer) holding either is not waited for."""

from __future__ import annotations

import os


def process_token(pid: int | str = "self") -> str:
    """Who process `pid` is, for another process to tell whether it is gone (`holder_gone`): "<boot id> <PID namespace>
    <pid> <start time>". The boot id and the namespace say where the pid means something: two containers may share a
    host name (host networking) but not a PID namespace, and a host's pids start again at each boot; the start time
    tells the process from a later one given its pid. "" where Linux's /proc does not say (then no process can tell).

    Args:
        pid (`int` or `str`, *optional*, defaults to "self"): the process; this one by default.

    Returns:
        `str`: the token, or "".
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            boot_id = boot.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")  # the namespace in which `pid` is counted: this process's
        number = os.getpid() if pid == "self" else int(pid)
        _, started = _process_state(number)
    except (OSError, ValueError, IndexError):
        return ""
    return f"{boot_id} {namespace} {number} {started}"


def holder_gone(token: str) -> bool:
    """Whether the process that `token` (`process_token`) names is certainly gone: it ran on this boot of this host, in
    this PID namespace, and no process of that pid and start time runs now (a zombie, killed and not reaped yet, counts
    as gone). False whenever that cannot be told: a process elsewhere (another host or container), a token of another
    form, or no /proc here; such a holder keeps its lease until it expires.

    Args:
        token (`str`): a lease holder's `process_token`.

    Returns:
        `bool`: True only when the process is gone.
    """
    here = process_token()
    boot_id, namespace, pid, started = (token.split(" ") + ["", "", "", ""])[:4]
    if not here or here.split(" ")[:2] != [boot_id, namespace] or not pid.isdigit() or int(pid) <= 0:
        return False
    try:
        # Asked of the kernel, not of /proc: a /proc mounted with hidepid (systemd's ProtectProc) hides the processes
        # of other users, and a worker of another user would have been taken for gone.
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # there, another user's
    try:
        state, now_started = _process_state(int(pid))
    except (OSError, ValueError, IndexError):
        return False  # hidden from this process, or gone a moment ago: the next look tells
    return state in ("Z", "X") or now_started != started  # a zombie, or a later process given the same pid


def _process_state(pid: int) -> tuple[str, str]:
    """(state, start time in clock ticks since boot) of process `pid`, from /proc/<pid>/stat.

    Raises:
        FileNotFoundError: no process has that pid.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()  # after the command's name, which may hold spaces
    return fields[0], fields[19]  # stat's 3rd and 22nd fields
