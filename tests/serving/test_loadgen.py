"""bench_serve's load generator against a tiny real HTTP server: what it counts is what was answered."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from benchmarks.loadgen import ProtocolError, encode_post, run_clients

HOST = "127.0.0.1"
ANSWERS = {  # path: (status, body, extra header)
    "/scored": (200, b'{"probability": 0.25}', b""),
    "/broken": (500, b'{"detail": "boom"}', b""),
    "/nonsense": (200, b'{"probability": 7.0}', b""),
    "/chunked": (200, b'{"probability": 0.25}', b"Transfer-Encoding: chunked\r\n"),
}


@dataclass
class ServerLog:
    connections: int = 0
    bodies: list[bytes] = field(default_factory=list)


def load(paths: list[str], clients: int = 1, **options) -> tuple[list[float], int, ServerLog]:
    """Run the load generator for 0.2 s on requests to ``paths`` of a server answering ANSWERS
    (``/silent`` never answers); (latencies, failed, what the server saw)."""
    log = ServerLog()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1]) for line in head.split(b"\r\n") if b"Length" in line
                )
                log.bodies.append(await reader.readexactly(length))
                path = head.split(b" ")[1].decode()
                if path == "/silent":
                    continue
                status, body, extra = ANSWERS[path]
                writer.write(
                    b"HTTP/1.1 %d Whatever\r\ncontent-length: %d\r\n%s\r\n%s"
                    % (status, len(body), extra, body)
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def body_ok(body: bytes) -> bool:
        return 0 <= json.loads(body)["probability"] <= 1

    async def main() -> tuple[list[float], int, ServerLog]:
        server = await asyncio.start_server(answer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        requests = [encode_post(HOST, port, p, {"X-API-Key": "test"}, p.encode()) for p in paths]
        async with server:
            latencies, failed, _ = await run_clients(
                HOST, port, requests, clients, 0.2, body_ok, **options
            )
        return latencies, failed, log

    return asyncio.run(main())


def test_counts_200s_as_answered_and_a_500_as_failed_on_one_kept_connection():
    latencies, failed, log = load(["/scored", "/scored", "/broken"])
    sent = len(latencies)
    assert sent > 10
    assert failed == sum(i % 3 == 2 for i in range(sent))  # every third request: the 500
    assert log.connections == 1
    assert log.bodies == [[b"/scored", b"/scored", b"/broken"][i % 3] for i in range(sent)]


def test_a_200_whose_body_fails_the_check_is_a_failure():
    latencies, failed, log = load(["/nonsense"], clients=3, check_every=1)
    assert failed == len(latencies) > 0
    assert log.connections == 3


def test_an_unchecked_200_is_counted_without_parsing():
    latencies, failed, _ = load(["/nonsense"], check_every=5)
    assert failed == (len(latencies) + 4) // 5  # the first and every fifth were checked


def test_a_timed_out_request_fails_and_the_client_reconnects():
    latencies, failed, log = load(["/silent"], timeout=0.05)
    assert failed == len(latencies) >= 2
    assert log.connections == len(latencies)


def test_a_chunked_answer_stops_the_run_rather_than_being_misread():
    with pytest.raises(ProtocolError, match="Content-Length"):
        load(["/chunked"])
