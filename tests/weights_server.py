"""A loopback HTTP server for the weights tests: tiny checkpoints, and ways for a transfer to go wrong.

Files are served at ``/<mode>/<filename>``; the mode says how:

- ``ok``: the file, with ``Content-Length``;
- ``nolength``: the file without ``Content-Length`` (the client cannot know the total);
- ``corrupt``: as many bytes as the file, but not the file (one byte flipped in the middle);
- ``truncated``: announces the full length, sends half, closes the connection;
- ``stallbody``: announces the full length, sends half, then stays silent;
- ``slow``: the file in 8 pieces, 50 ms apart (so that two clients overlap);
- ``404``: not found, whatever the file.

Only 127.0.0.1; nothing from the internet. Not a test module (no ``test_`` prefix): both weights test files
import it.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import time
from pathlib import Path

import torch

from backbone_viz.files.weights import WeightsFile

MODES = ("ok", "nolength", "corrupt", "truncated", "stallbody", "slow", "404")


def tiny_checkpoint(*, seed: int = 0, shape: tuple[int, int] = (300, 600)) -> bytes:
    """An untrained ``nn.Linear`` state dict as ``torch.save`` bytes (about 720 KB for the default shape:
    a few 256 KiB chunks, so progress has steps)."""
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(*shape).state_dict(), buffer)
    return buffer.getvalue()


def named(data: bytes, stem: str = "tiny") -> str:
    """A torchvision-style file name for ``data``: ``<stem>-<first 8 hex digits of its SHA-256>.pth``."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


class WeightsServer:
    """Serves registered files in the modes above; counts GET requests per file name.

    Use as a context manager; ``url`` is ``http://127.0.0.1:<port>``.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.gets: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="weights-server",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def add(self, data: bytes, stem: str = "tiny", *, mode: str = "ok") -> WeightsFile:
        """Serve ``data`` and return its WeightsFile, whose ``url`` uses ``mode``."""
        filename = named(data, stem)
        self.files[filename] = data
        return WeightsFile(filename=filename, url=f"{self.url}/{mode}/{filename}", size_bytes=len(data))

    def count(self, filename: str) -> int:
        """How many GET requests asked for ``filename`` (any mode)."""
        with self._lock:
            return sum(1 for name in self.gets if name == filename)

    def __enter__(self) -> WeightsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()  # releases handlers parked in "stallbody"
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class name
                pass  # keep pytest output clean

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = self.path.strip("/").split("/")
                mode, filename = (parts[0], parts[-1]) if len(parts) >= 2 else ("404", "")
                with server._lock:
                    server.gets.append(filename)
                data = server.files.get(filename)
                if mode == "404" or mode not in MODES or data is None:
                    self.send_error(404, "no such file")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if mode != "nolength":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if mode == "corrupt":
                        middle = len(data) // 2
                        self.wfile.write(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
                    elif mode == "truncated":
                        self.wfile.write(data[: len(data) // 2])
                        self.close_connection = True
                    elif mode == "stallbody":
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        server.stop.wait(10)
                    elif mode == "slow":
                        step = -(-len(data) // 8)
                        for start in range(0, len(data), step):
                            self.wfile.write(data[start : start + step])
                            self.wfile.flush()
                            time.sleep(0.05)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as some tests make it do

        return Handler


def silent_port() -> tuple[socket.socket, int]:
    """A port that accepts connections (the kernel queues them) but never answers. Close the socket after."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, sock.getsockname()[1]


def refused_port() -> int:
    """A loopback port with nothing listening (connecting is refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leftovers(directory: Path, *, keep: tuple[str, ...] = ()) -> list[str]:
    """Every name in ``directory`` except ``keep`` (temporary files, lock files, wrong files)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)
