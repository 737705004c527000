"""Where the CPU went during a window: per-process user+system time from ``/proc``.

Processes are grouped: the roles the caller names by pid (server, load generator, pgbench,
py-spy), PostgreSQL backends of the benchmark's database, other PostgreSQL processes (WAL
writer, checkpointer, autovacuum, other databases), Redis, and everything else. Linux only;
elsewhere the snapshots are empty and the report says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


@dataclass
class Snapshot:
    # pid: (group, user s, system s)
    per_pid: dict[int, tuple[str, float, float]] = field(default_factory=dict)
    machine_busy: float = 0.0  # seconds of CPU busy, all cores
    machine_total: float = 0.0  # seconds of CPU time, all cores (busy + idle)


def _cpu_seconds(pid: int) -> tuple[str, float, float] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[11]) / _TICK, int(fields[12]) / _TICK


def _cmdline(pid: int) -> str:
    try:
        return (
            (_PROC / str(pid) / "cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
        )
    except OSError:
        return ""


def _group(pid: int, comm: str, roles: dict[int, str], database: str) -> str:
    if pid in roles:
        return roles[pid]
    if comm == "postgres" or comm.startswith("postgres"):
        # a backend's title is "postgres: [CLUSTER: ]USER DATABASE HOST(PORT) STATE"
        parts = _cmdline(pid).split()
        if parts and parts[0] == "postgres:":
            parts = parts[1:]
            if parts and parts[0].endswith(":"):  # Debian adds the cluster name, "15/main:"
                parts = parts[1:]
            # a client's address: "HOST(PORT)" over TCP, "[local]" over a Unix socket
            if (
                len(parts) >= 3
                and parts[1] == database
                and ("(" in parts[2] or parts[2] == "[local]")
            ):
                return "postgres backends"
            if parts and parts[0] in ("walwriter", "checkpointer"):
                return "postgres WAL writer + checkpointer"
        return "postgres other (bgwriter, autovacuum, other databases)"
    if comm.startswith("redis-server"):
        return "redis-server"
    if not _cmdline(pid):  # kernel threads have no command line (block I/O, softirqs...)
        return "kernel threads (I/O, network)"
    return "other processes"


def snapshot(roles: dict[int, str], database: str) -> Snapshot:
    snap = Snapshot()
    if not _PROC.is_dir():
        return snap
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        got = _cpu_seconds(pid)
        if got is None:
            continue
        comm, user, system = got
        snap.per_pid[pid] = (_group(pid, comm, roles, database), user, system)
    try:
        cpu = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in cpu[:8]]
        idle = values[3] + values[4]
        snap.machine_total = sum(values) / _TICK
        snap.machine_busy = (sum(values) - idle) / _TICK
    except (OSError, ValueError, IndexError):
        pass
    return snap


def top_others(before: Snapshot, after: Snapshot, n: int = 5) -> list[tuple[str, float]]:
    """The biggest CPU users in the "other processes" group: (command, CPU seconds)."""
    found: list[tuple[float, int]] = []
    for pid, (group, user, system) in after.per_pid.items():
        if group != "other processes":
            continue
        start = before.per_pid.get(pid)
        used = user + system - ((start[1] + start[2]) if start is not None else 0.0)
        if used > 0.05:
            found.append((used, pid))
    found.sort(reverse=True)
    return [(_cmdline(pid)[:80] or f"pid {pid}", round(used, 2)) for used, pid in found[:n]]


def merge(older: Snapshot, newer: Snapshot) -> Snapshot:
    """The latest figures seen of every process, also of those that exited since ``older``
    (a pgbench client's backends are gone when pgbench ends)."""
    out = Snapshot(dict(older.per_pid), newer.machine_busy, newer.machine_total)
    out.per_pid.update(newer.per_pid)
    return out


def usage(before: Snapshot, after: Snapshot) -> dict[str, dict[str, float]]:
    """CPU seconds per group between two snapshots (``cpu``, of which ``sys`` in the
    kernel), plus the machine's busy time and capacity over all cores."""
    groups: dict[str, dict[str, float]] = {}
    for pid, (group, user, system) in after.per_pid.items():
        start = before.per_pid.get(pid)
        if start is not None and start[0] == group:
            user, system = user - start[1], system - start[2]
        if user + system > 0:
            g = groups.setdefault(group, {"cpu": 0.0, "sys": 0.0})
            g["cpu"] += user + system
            g["sys"] += system
    out = dict(sorted(groups.items(), key=lambda kv: -kv[1]["cpu"]))
    busy = after.machine_busy - before.machine_busy
    out["machine busy (all cores)"] = {"cpu": busy, "sys": 0.0}
    out["machine capacity (all cores)"] = {
        "cpu": after.machine_total - before.machine_total,
        "sys": 0.0,
    }
    return {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in out.items()}


def busy_fraction(seconds: float = 1.0) -> float:
    """How busy the whole machine is over ``seconds`` (0..1), all cores together."""
    import time

    a = snapshot({}, "")
    time.sleep(seconds)
    b = snapshot({}, "")
    total = b.machine_total - a.machine_total
    return (b.machine_busy - a.machine_busy) / total if total > 0 else 0.0


def top_consumers(seconds: float = 1.0, n: int = 3) -> list[tuple[str, float]]:
    """The processes using the most CPU over ``seconds``: (command line, cores)."""
    import time

    def ticks() -> dict[int, float]:
        out: dict[int, float] = {}
        for entry in _PROC.iterdir():
            if entry.name.isdigit():
                got = _cpu_seconds(int(entry.name))
                if got is not None:
                    out[int(entry.name)] = got[1] + got[2]
        return out

    a = ticks()
    time.sleep(seconds)
    b = ticks()
    used = sorted(((b[p] - a.get(p, b[p]), p) for p in b), reverse=True)[:n]
    return [(_cmdline(p)[:100] or str(p), round(c / seconds, 2)) for c, p in used if c > 0]


def context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of a process so far; (0, 0) if unknown.
    Involuntary ones are preemptions: e.g. a write to a socket wakes the reader, which
    takes the core."""
    vol = invol = 0
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return vol, invol
