"""A throw-away HTTP server on 127.0.0.1 for tests that download: plain files, truncated transfers and a
Hugging Face Hub look-alike (``/<repo>/resolve/<revision>/<file>`` with the Hub's metadata headers)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class LocalServer:
    """Serves ``files`` (url path -> bytes). ``truncate[path] = n`` sends only the first n bytes but announces the
    full length; ``hub_etag[path]`` overrides the sha256 the Hub headers announce. ``requests`` logs every path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}
        self.hub_etag: dict[str, str] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _headers(self) -> bytes | None:
                server.requests.append(f"{self.command} {self.path}")
                body = server.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if "/resolve/" in self.path:  # what huggingface_hub reads from the Hub
                    sha = server.hub_etag.get(self.path, hashlib.sha256(body).hexdigest())
                    self.send_header("ETag", f'"{sha}"')
                    self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()
                return body

            def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
                self._headers()

            def do_GET(self) -> None:  # noqa: N802
                body = self._headers()
                if body is not None:
                    self.wfile.write(body[:server.truncate.get(self.path, len(body))])
                    self.wfile.flush()
                    if self.path in server.truncate:
                        self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


def serve() -> Iterator[LocalServer]:
    """A started server, stopped afterwards (use as a pytest fixture body)."""
    with LocalServer() as server:
        yield server
