"""Issue 9, item 10: each route's body limit holds while the body is read, a refused body is
not drained, and large bodies reach only the upload routes, after authentication.

The requests are written by hand on a real socket so that a test controls how much of a
chunked body is sent and can see the answer arrive before the body is finished: the body is
never terminated, so an answer at all proves the server stopped reading at its limit.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.e2e.conftest import World
from tests.e2e.test_registry_import import HEADER, cert

# generous: only a server that waits for a body that never ends gets anywhere near it
ANSWER_WAIT_S = 20.0
CHUNK = 4096


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    closed: bool  # the server closed the connection after answering


async def _open(client: TestClient[Any, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    server = client.server
    return await asyncio.open_connection(server.host, server.port)


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _send_chunks(writer: asyncio.StreamWriter, total: int) -> int:
    """``total`` bytes of an unfinished chunked body; the bytes really handed to the socket."""
    sent = 0
    try:
        while sent < total:
            size = min(CHUNK, total - sent)
            writer.write(f"{size:x}\r\n".encode() + b"x" * size + b"\r\n")
            await writer.drain()
            sent += size
    except ConnectionError:
        pass  # the server answered and closed: what a refused body should get
    return sent


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    async def read() -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            rest = await asyncio.wait_for(reader.read(1), 5)
        except ConnectionError:
            rest = b""
        except TimeoutError:
            rest = b"open"
        return Answer(int(status_line.split()[1]), headers, json.loads(body or b"null"), not rest)

    return await asyncio.wait_for(read(), ANSWER_WAIT_S)


async def test_a_chunked_body_past_the_json_limit_is_refused_before_it_ends(
    client: TestClient[Any, Any],
) -> None:
    # item 10: unauthenticated sign-in, a chunked body 8 KB past the 16 KB limit, never ended
    limit = 16 * 1024
    reader, writer = await _open(client)
    try:
        writer.write(
            _head(
                "/v1/auth/staff",
                {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            )
        )
        sent = await _send_chunks(writer, limit + 8 * 1024)
        answer = await _read_answer(reader)
    finally:
        writer.close()
    assert sent <= limit + 8 * 1024
    assert answer.status == 413
    assert answer.body["error"]["code"] == "body_too_large"
    assert answer.body["error"]["details"]["limit_bytes"] == limit
    assert answer.headers["connection"] == "close"
    assert answer.closed


async def test_a_body_declared_too_large_is_refused_on_its_content_length(
    client: TestClient[Any, Any],
) -> None:
    # item 10: 60 MB announced, nothing sent: the answer comes without reading a byte
    reader, writer = await _open(client)
    try:
        writer.write(
            _head(
                "/v1/auth/staff",
                {"Content-Type": "application/json", "Content-Length": str(60 * 1024 * 1024)},
            )
        )
        await writer.drain()
        answer = await _read_answer(reader)
    finally:
        writer.close()
    assert (answer.status, answer.body["error"]["code"]) == (413, "body_too_large")
    assert answer.closed


async def test_an_unauthenticated_upload_is_refused_without_reading_it(
    client: TestClient[Any, Any],
) -> None:
    # item 10: large bodies only after authentication; the rest of the body is not drained
    reader, writer = await _open(client)
    try:
        writer.write(
            _head(
                "/v1/registry/imports",
                {"Content-Type": "text/csv", "Transfer-Encoding": "chunked"},
            )
        )
        await _send_chunks(writer, 256 * 1024)
        answer = await _read_answer(reader)
    finally:
        writer.close()
    assert (answer.status, answer.body["error"]["code"]) == (401, "unauthenticated")
    assert answer.headers["connection"] == "close"
    assert answer.closed


async def test_an_upload_past_its_own_limit_is_refused_while_it_streams(world: World) -> None:
    # item 10: a campaign file is at most 1 MB, even for a city operator
    city = await world.staff("city_operator")
    reader, writer = await _open(world.client)
    try:
        writer.write(
            _head(
                "/v1/campaigns",
                {**city, "Content-Type": "application/toml", "Transfer-Encoding": "chunked"},
            )
        )
        await _send_chunks(writer, 1024 * 1024 + 64 * 1024)
        answer = await _read_answer(reader)
    finally:
        writer.close()
    assert (answer.status, answer.body["error"]["code"]) == (413, "body_too_large")
    assert answer.body["error"]["details"]["limit_bytes"] == 1024 * 1024
    assert answer.closed


async def test_an_authenticated_upload_larger_than_a_json_body_is_accepted(world: World) -> None:
    # item 10: the app-wide cap is a JSON body's, yet the upload routes take their own size
    city = await world.staff("city_operator")
    person = await world.citizen()
    numbers = [cert() for _ in range(400)]
    rows = "".join(
        f"{n},东昌府区,住宅,是,1200000.00,300000.00,2024-09-01,{person.id_number}\n"
        for n in numbers
    )
    data = (HEADER + rows).encode()
    assert len(data) > 2 * world.settings.max_body_bytes

    async def stream() -> Any:
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]

    r = await world.client.post(
        "/v1/registry/imports",
        data=stream(),
        params={"dry_run": "true"},
        headers={**city, "Content-Type": "text/csv"},
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["inserted"] == 400


async def test_a_json_body_at_the_limit_still_reads_and_keeps_the_connection(
    client: TestClient[Any, Any],
) -> None:
    # item 10: the limit is not off by one, and an ordinary refusal keeps the connection alive
    padding = 16 * 1024 - len(b'{"username": "nobody", "password": ""}')
    body = json.dumps({"username": "nobody", "password": "p" * padding}).encode()
    assert len(body) == 16 * 1024
    r = await client.post("/v1/auth/staff", data=body, headers={"Content-Type": "application/json"})
    assert r.status == 400  # read and parsed: the password is longer than any password
    assert r.headers.get("Connection", "").lower() != "close"
