"""A PostgreSQL primary and its streaming replica, each a real server on loopback (issue 14).

Both run the PostgreSQL binaries the ``pgserver`` package ships (the embedded database's own):
``initdb`` makes the primary, ``pg_basebackup --write-recovery-conf`` copies it into a standby
that streams the primary's WAL, as an operator would set one up. Each listens on 127.0.0.1 on
a port of its own (no Unix socket), standing in for two hosts. Tests stop, start and pause the
replica to watch what the server does; ``close`` stops both and removes their data.

As root (containers, CI) PostgreSQL refuses to run, so the servers run as the system user
pgserver uses for the embedded database (``pgserver``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import warnings
from pathlib import Path

SYSTEM_USER = "pgserver"


def _binaries() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import without XDG_RUNTIME_DIR
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StreamingPair:
    """A primary and one hot standby streaming from it, under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.primary_dir = data_dir / "primary"
        self.replica_dir = data_dir / "replica"
        self.primary_port = _free_port()
        self.replica_port = _free_port()
        self.bin = _binaries()
        self._user = SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, database: str = "postgres", *, replica: bool = False) -> str:
        port = self.replica_port if replica else self.primary_port
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def start(self) -> None:
        """initdb, the primary started, the base backup taken, the standby started."""
        self.close()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            self._give_to_system_user()
        self._run("initdb", "-D", self.primary_dir, "-U", "postgres", "--auth=trust", "-E", "utf8")
        self._pg_ctl(self.primary_dir, self.primary_port, "-c", "wal_level=replica")
        self._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary_port),
            "-U",
            "postgres",
            "-D",
            self.replica_dir,
            "--write-recovery-conf",  # standby.signal and primary_conninfo: a streaming standby
            "--wal-method=stream",
            "--checkpoint=fast",
        )
        self.start_replica()

    def start_replica(self) -> None:
        self._pg_ctl(self.replica_dir, self.replica_port, "-c", "hot_standby=on")

    def stop_replica(self, *, immediate: bool = False) -> None:
        self._stop(self.replica_dir, immediate=immediate)

    def close(self) -> None:
        """Stop both servers (if running) and remove their data."""
        for folder in (self.replica_dir, self.primary_dir):
            if (folder / "postmaster.pid").exists():
                self._stop(folder, immediate=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _pg_ctl(self, folder: Path, port: int, *options: str) -> None:
        server_options = " ".join(
            (
                "-h 127.0.0.1",
                f"-p {port}",
                "-c unix_socket_directories=''",  # loopback TCP only: a "host" of its own
                "-c fsync=off",  # a test server: a crash of the machine is not under test
                *options,
            )
        )
        log = folder.parent / f"{folder.name}.log"
        self._run(
            "pg_ctl", "-D", folder, "-l", log, "-o", server_options, "-w", "-t", "60", "start"
        )

    def _stop(self, folder: Path, *, immediate: bool) -> None:
        with contextlib.suppress(RuntimeError):  # not running: nothing to stop
            mode = "immediate" if immediate else "fast"
            self._run("pg_ctl", "-D", folder, "-m", mode, "-w", "-t", "60", "stop")

    def _run(self, program: str, *args: str | Path) -> None:
        command = [str(self.bin / program), *map(str, args)]
        done = subprocess.run(  # noqa: S603 - the shipped binaries, our own arguments
            command, capture_output=True, text=True, timeout=120, user=self._user, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")

    def _give_to_system_user(self) -> None:
        """The data folder belongs to the system user, and its parents let it through."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists
        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
