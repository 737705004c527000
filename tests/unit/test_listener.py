"""Issue 14: a listening socket stops admitting without resetting what it queued
(server/listener.py): a client already connected is served, a new one is refused, never
reset after it sent its request."""

from __future__ import annotations

import socket
import sys

import pytest

from server.listener import drain, listening_socket, queued, stop_admitting

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="socket filters are Linux's"
)


@linux_only
async def test_a_queued_connection_is_kept_and_a_new_one_is_not_established() -> None:
    server = listening_socket("127.0.0.1", 0)
    port = server.getsockname()[1]
    early = socket.create_connection(("127.0.0.1", port))
    early.sendall(b"GET / HTTP/1.1\r\n\r\n")
    try:
        assert stop_admitting(server)
        late = socket.socket()
        late.settimeout(0.3)
        with pytest.raises(TimeoutError):  # its SYN is dropped: no connection, nothing sent
            late.connect(("127.0.0.1", port))
        late.close()
        assert queued(server) == 1
        server.setblocking(True)
        taken, _ = server.accept()  # the queued one is still there, with its request
        assert taken.recv(100).startswith(b"GET / ")
        assert queued(server) == 0
        taken.close()
    finally:
        server.close()
        early.close()
    refused = socket.socket()
    with pytest.raises(ConnectionRefusedError):  # once closed, a client is refused
        refused.connect(("127.0.0.1", port))
    refused.close()


@linux_only
async def test_drain_returns_once_the_queue_is_empty() -> None:
    server = listening_socket("127.0.0.1", 0)
    try:
        await drain(server, settle_s=0.01, timeout_s=1)  # nothing queued: at once
        assert queued(server) == 0
    finally:
        server.close()
