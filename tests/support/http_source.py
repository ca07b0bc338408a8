"""A real HTTP server over a directory, with ``Range`` and ``ETag``: where ``http://``
references live in tests. It counts the ranged requests it answered, so a test can see
that a mount read a reference by ranges."""

from __future__ import annotations

import email.utils
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["NO_RANGES", "HttpSource", "serving"]

#: Files in a folder of this name are served as by a server that ignores ``Range``.
NO_RANGES = "no-ranges"

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class HttpSource:
    def __init__(self, root: Path, server: ThreadingHTTPServer) -> None:
        self.root = root
        self.server = server
        self.ranged_requests = 0
        self.requests = 0

    def url(self, relative: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/{relative}"


def _handler(source: HttpSource) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a test reads the counters, not a log."""

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            source.requests += 1
            path = source.root / self.path.lstrip("/").split("?")[0]
            if not path.is_file():
                self.send_response(HTTPStatus.NOT_FOUND)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            info = path.stat()
            start, end = 0, info.st_size
            status = HTTPStatus.OK
            wanted = _RANGE.match(self.headers.get("Range", ""))
            if wanted and path.parent.name == NO_RANGES:
                wanted = None  # a server without range support: the whole body, 200
            if wanted:
                source.ranged_requests += 1
                start = int(wanted.group(1))
                end = min(int(wanted.group(2)) + 1 if wanted.group(2) else end, info.st_size)
                status = HTTPStatus.PARTIAL_CONTENT
            self.send_response(status)
            self.send_header("ETag", f'"{info.st_mtime_ns:x}-{info.st_size:x}"')
            self.send_header("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start))
            if status is HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{info.st_size}")
            self.end_headers()
            if body:
                with open(path, "rb") as stream:
                    os.sendfile(self.wfile.fileno(), stream.fileno(), start, end - start)

    return Handler


@contextmanager
def serving(root: Path) -> Iterator[HttpSource]:
    """Serve ``root`` on a free local port until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    source = HttpSource(root, server)
    server.RequestHandlerClass = _handler(source)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield source
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
