"""Helpers for the raw-layer tests: small synthetic raw files, closed ports, a local web server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from readmit_kedro.landing import RAW_FILENAME, SIDECAR_FILENAME


def closed_port() -> int:
    """A local TCP port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_raw(raw_dir: Path, frame: pd.DataFrame, data_source: str = "synthetic") -> Path:
    """A raw layer built by hand (e.g. rows shuffled), with a sidecar that matches its bytes."""
    payload = frame.to_csv(index=False, lineterminator="\r\n").encode()
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / RAW_FILENAME
    path.write_bytes(gzip.compress(payload, mtime=0))
    sidecar = {
        "data_source": data_source,
        "origin": "handmade",
        "sha256_uncompressed": hashlib.sha256(payload).hexdigest(),
        "rows": len(frame),
        "acquired_at": "2024-01-01T00:00:00+00:00",
    }
    (raw_dir / SIDECAR_FILENAME).write_text(json.dumps(sidecar))
    return path


def read_landed(root: Path) -> pd.DataFrame:
    """All landed extracts in month order, read the way the bronze pipeline reads them."""
    frames = [
        pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False)
        for p in sorted(root.glob("diabetic_data_*.csv.gz"))
    ]
    return pd.concat(frames, ignore_index=True)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 serving a temp folder: (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
