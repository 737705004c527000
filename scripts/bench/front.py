"""Debian's nginx on loopback in front of the benchmark's server (issue 14, "Shedding load
instead of collapsing"): the gross excess of a rush refused by the reverse proxy, in C,
before the server's Python ever reads it.

The same rules as ``docker/nginx.conf``: upstream keep-alive; a ``limit_req`` on the till's
new work only (``POST /v1/quote``; never on ``/v1/redemptions``, whose retries must reach
the server's idempotency, nor on sign-in), a fixed rate with a short burst answered at once
(``nodelay``); what is over it gets the server's own refusal, 503 ``server_busy`` with
``Retry-After: 1`` and the same JSON body (``server/admission.py``, ``server/web.py``), so
a till (``client/till.py``) treats it exactly as the server's. Behind the proxy the server's
adaptive gate stays: the proxy's rate is static.

Each refusal is written to ``shed.log`` (buffered) so that the report can tell the
proxy's 503s from the server's, whose bodies are the same.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# the body the server answers when its gate refuses a till's request (ServerBusy, error_from)
BUSY_BODY = (
    '{"error":{"code":"server_busy","message":"The server is busy; try again in a moment.",'
    '"details":{"retry_after_s":1}}}'
)

NGINX = "/usr/sbin/nginx"


def conf(*, listen: int, upstream: int, rate: int, burst: int, prefix: Path,
         workers: int = 1) -> str:  # fmt: skip
    """An nginx.conf for ``nginx -p PREFIX -c CONF``: loopback only, no daemon."""
    return f"""\
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 16384;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
  worker_connections 8192;
}}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  # the key is empty (not counted) for anything but a POST: one bucket for the whole host
  map $request_method $till_new_work {{
    POST host;
    default "";
  }}
  limit_req_zone $till_new_work zone=till_new_work:1m rate={rate}r/s;
  limit_req_status 503;
  limit_req_log_level info;
  log_format refused '$msec';
  upstream servers {{
    server 127.0.0.1:{upstream};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{listen};
    client_max_body_size 64m;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_next_upstream error timeout;
    location / {{
      proxy_pass http://servers;
    }}
    location = /v1/quote {{
      limit_req zone=till_new_work burst={burst} nodelay;
      error_page 503 @server_busy;
      proxy_pass http://servers;
    }}
    location @server_busy {{  # only limit_req's refusals: the server's own 503s pass as they are
      access_log {prefix}/shed.log refused buffer=64k flush=1s;
      default_type "application/json; charset=utf-8";
      add_header Retry-After 1 always;
      return 503 '{BUSY_BODY}';
    }}
  }}
}}
"""


@dataclass
class Front:
    process: subprocess.Popen[bytes]
    prefix: Path

    def pids(self) -> list[int]:
        """The master and its workers."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            pids += [int(p) for p in children.read_text().split()]
        return pids

    def refusals(self) -> list[float]:
        """When (Unix time) the proxy refused each request so far; its buffered log is
        flushed within 1 s, and on ``stop``."""
        try:
            lines = (self.prefix / "shed.log").read_text().split()
        except OSError:
            return []
        return [float(t) for t in lines]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: the log buffers are written
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def version() -> str:
    """``nginx/1.22.1``: what ``nginx -v`` says (on stderr)."""
    nginx = shutil.which("nginx") or NGINX
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    return done.stderr.strip().removeprefix("nginx version: ")


def start(*, listen: int, upstream: int, rate: int, burst: int, prefix: Path,
          workers: int = 1) -> Front:  # fmt: skip
    """nginx in the foreground (``daemon off``), checked with ``nginx -t`` first; returns
    once it accepts connections."""
    nginx = shutil.which("nginx") or NGINX
    if not Path(nginx).exists():
        raise SystemExit("no nginx: apt-get install -y nginx (Debian's; the service stays off)")
    prefix.mkdir(parents=True, exist_ok=True)
    path = prefix / "nginx.conf"
    text = conf(listen=listen, upstream=upstream, rate=rate, burst=burst, prefix=prefix,
                workers=workers)  # fmt: skip
    path.write_text(text)
    subprocess.run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(path)], check=True)
    with (prefix / "stderr.log").open("ab") as stderr:  # the child keeps its own copy
        process = subprocess.Popen(
            [nginx, "-p", str(prefix), "-c", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", listen), timeout=1).close()
            return Front(process, prefix)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(
                    "nginx did not start: " + (prefix / "error.log").read_text(errors="replace")
                    if (prefix / "error.log").exists()
                    else "nginx did not start"
                ) from None
            time.sleep(0.05)


def kill_quietly(front: Front | None) -> None:
    if front is not None:
        with contextlib.suppress(OSError):
            front.stop()


__all__ = ["BUSY_BODY", "Front", "conf", "kill_quietly", "start", "version"]
