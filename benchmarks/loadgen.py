"""A minimal HTTP/1.1 keep-alive load generator for bench_serve's concurrent single requests.

httpx's connection pool cost more CPU per request than the server it measured (both on the same
2 cores), so at concurrency 32 the benchmark timed its client. Here each simulated client owns
one connection and sends bytes encoded once per record; an answer is framed by its
Content-Length and its status counted, and every ``check_every``-th 200 of a client (its first
included) has its body checked by the caller, so what is counted are real answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence


class ProtocolError(RuntimeError):
    """An answer this client cannot frame (chunked, no Content-Length, no HTTP/1.1 status
    line): the run stops rather than guess where the next answer begins."""


def encode_post(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """A whole JSON POST as bytes, encoded once and sent as often as wanted."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        *(f"{name}: {value}" for name, value in headers.items()),
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection stays open) of the next answer on ``reader``."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head[:-4].split("\r\n")
    if not status_line.startswith("HTTP/1.1 "):
        raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "transfer-encoding" in headers or "content-length" not in headers:
        raise ProtocolError(f"only Content-Length framing is read, got headers {headers}")
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line[9:12]), body, headers.get("connection") != "close"


class KeepAliveConnection:
    """One simulated client's connection: opened on first use, and again after an error (its
    state is then unknown) or an answer that closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one pre-encoded request."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        try:
            writer.write(request)
            await writer.drain()
            status, body, keep_alive = await read_response(reader)
        except BaseException:  # a timeout cancels mid-answer too
            self.drop()
            raise
        if not keep_alive:
            self.drop()
        return status, body

    def drop(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.drop()
            with contextlib.suppress(OSError):  # the server may have reset it: nothing to wait
                await writer.wait_closed()


async def run_clients(
    host: str,
    port: int,
    requests: Sequence[bytes],
    clients: int,
    seconds: float,
    body_ok: Callable[[bytes], bool],
    *,
    timeout: float = 10.0,
    check_every: int = 20,
) -> tuple[list[float], int, float]:
    """(latencies in ms, failed requests, wall seconds) of ``clients`` loops for ``seconds``.

    Client ``k`` sends requests ``k``, ``k + clients``, ... in turn. A request fails on a status
    other than 200, a checked body ``body_ok`` refuses, a timeout or a connection error; its
    latency counts all the same, as a request the service did not answer well.
    """
    latencies: list[float] = []
    failed = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def client(offset: int) -> None:
        nonlocal failed
        connection = KeepAliveConnection(host, port)
        answered, i = 0, offset
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    status, body = await asyncio.wait_for(
                        connection.post(requests[i % len(requests)]), timeout
                    )
                    ok = status == 200 and (answered % check_every != 0 or body_ok(body))
                    answered += status == 200
                except (OSError, asyncio.IncompleteReadError):  # TimeoutError is an OSError
                    ok = False
                latencies.append((time.perf_counter() - sent) * 1000)
                failed += not ok
                i += clients
        finally:
            await connection.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies, failed, time.perf_counter() - started
