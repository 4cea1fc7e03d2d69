"""Loopback ports for the tests' own servers (webhook and SMTP receivers, Spark, moto)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
