"""A loopback HTTP server that records every request and answers like a healthy backend.

The security tests need to know exactly what reached a server: which
`Authorization` header, which path and query, which body. The real servers
(tests/influx_server.py, tests/prometheus_servers.py) and the Grafana stand-in
validate what they get, but do not keep every header of every request; this
one keeps everything and accepts anything, so a test can point several
targets (InfluxDB, Grafana, a pushgateway) at one or more recorders and ask
what each received.

Answers are what our sinks take as success: `GET` -> 200 `[]` (an empty
Grafana look-up), `POST`/`PATCH`/`PUT` -> 200 `{"id": n, "message": ...,
"results": [{}]}` (a Grafana annotation added, an InfluxDB query result),
except `POST .../write` and `/api/v2/write` -> 204 as InfluxDB does, and
`PUT /metrics/...` -> 200 with no body as the pushgateway does (a body would be
a login page's, not delivered); `DELETE` -> 202.
"""
import base64
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.loopback import serve_in_background, stop_serving


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived."""

    method: str
    target: str  # the raw request target: path and query, still percent-encoded
    headers: Dict[str, str]  # names lower-cased
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> Dict[str, List[str]]:
        return parse_qs(urlsplit(self.target).query)

    @property
    def authorization(self) -> Optional[str]:
        return self.headers.get("authorization")

    @property
    def basic_credentials(self) -> Optional[str]:
        """`user:password` of an HTTP Basic header, decoded."""
        header = self.authorization or ""
        if not header.startswith("Basic "):
            return None
        return base64.b64decode(header[len("Basic "):]).decode("latin-1")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def everything(self) -> str:
        """Every byte a server could keep of this request, decoded as far as possible."""
        return " ".join([self.method, self.target, unquote(self.target), json.dumps(self.headers),
                         self.basic_credentials or "", self.text])


class RecordingServer:
    """Records every request; `requests` is the list so far (thread-safe copies)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: List[Recorded] = []
        self._ids = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with recorder._lock:
                    recorder._requests.append(Recorded(self.command, self.path,
                                                       {k.lower(): v for k, v in self.headers.items()}, body))
                    recorder._ids += 1
                    number = recorder._ids
                path = urlsplit(self.path).path
                if self.command == "GET":
                    self._answer(200, b"[]")
                elif self.command == "DELETE":
                    self._answer(202, b"")
                elif path.endswith("/write"):
                    self._answer(204, b"")
                elif self.command == "PUT" and path.startswith("/metrics/"):
                    self._answer(200, b"")
                else:
                    self._answer(200, json.dumps({"id": number, "message": "Annotation added",
                                                  "results": [{}]}).encode())

            def _answer(self, status: int, body: bytes):
                self.send_response(status)
                if status != 204:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 204:
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = serve_in_background(self._server, "recording-server")

    @property
    def requests(self) -> List[Recorded]:
        with self._lock:
            return list(self._requests)

    def everything(self) -> str:
        """All that arrived, as one text to search for a value that must not be there."""
        return "\n".join(request.everything() for request in self.requests)

    def close(self) -> None:
        stop_serving(self._server)

    def __enter__(self) -> "RecordingServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture
def recorders():
    """A factory of recording servers, all closed at the end of the test."""
    started: List[RecordingServer] = []

    def start() -> RecordingServer:
        server = RecordingServer()
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
