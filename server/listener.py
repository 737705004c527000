"""A listening socket that can stop taking connections without dropping any (issue 14).

Closing a listening socket resets the connections the kernel has already accepted for it but
the server has not yet picked up (its accept queue): a client whose connect() succeeded and
who sent its request then gets a reset, not an answer, and cannot know whether the request
was served. So a host being stopped first *stops admitting*: a socket filter (classic BPF,
``SO_ATTACH_FILTER``, Linux) drops every new SYN, so no new connection is established; the
server goes on accepting until the queue is empty; only then is the socket closed. A client
whose SYN was dropped retries it (after about a second) and is then refused: it never sent
anything. Elsewhere the filter is unavailable and the socket is simply closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import socket
import struct
import sys

log = logging.getLogger(__name__)

_SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>
# the filter sees the TCP header: drop a segment whose flags have SYN without ACK (a new
# connection), keep everything else (the last ACK of a handshake under way, data)
_DROP_NEW_CONNECTIONS = b"".join(
    struct.pack("HBBI", code, jt, jf, k)
    for code, jt, jf, k in (
        (0x30, 0, 0, 13),  # ldb [13]          A = TCP flags
        (0x54, 0, 0, 0x12),  # and #SYN|ACK
        (0x15, 0, 1, 0x02),  # jeq #SYN, drop, keep
        (0x06, 0, 0, 0),  # drop:  ret #0
        (0x06, 0, 0, 0xFFFFFFFF),  # keep:  ret #-1
    )
)
_TCPI_UNACKED = 24
_POLL_S = 0.005  # struct tcp_info: of a listening socket, the length of its accept queue


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def stop_admitting(sock: socket.socket) -> bool:
    """No new connection is established on ``sock`` from now on (those in its accept queue
    stay there). False where the kernel offers no socket filter."""
    if not sys.platform.startswith("linux"):
        return False
    program = ctypes.create_string_buffer(_DROP_NEW_CONNECTIONS)
    fprog = struct.pack("HL", len(_DROP_NEW_CONNECTIONS) // 8, ctypes.addressof(program))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        log.warning("cannot filter the listening socket: connections it queued may be reset")
        return False
    return True


def queued(sock: socket.socket) -> int:
    """Connections established and waiting in ``sock``'s accept queue (0 when unknown)."""
    with contextlib.suppress(OSError, AttributeError, struct.error):
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return int(struct.unpack_from("I", info, _TCPI_UNACKED)[0])
    return 0


async def drain(sock: socket.socket, *, settle_s: float = 0.05, timeout_s: float = 5.0) -> None:
    """Stop admitting and wait until the server (still serving ``sock``) has taken every
    connection from the queue, handshakes under way included (``settle_s``: a few round
    trips). The caller then closes the socket: no client is reset."""
    if not stop_admitting(sock):
        return
    await asyncio.sleep(settle_s)
    for _ in range(int(timeout_s / _POLL_S)):  # the queue only shrinks now
        if not queued(sock):
            return
        await asyncio.sleep(_POLL_S)
    log.warning("connections still queued after %s s: they will be reset", timeout_s)
