"""Loopback backends that misbehave, for the reliability tests.

`Blackhole` accepts TCP connections and never answers (a hung server, a
firewall that drops replies); `Refusing` holds a port bound without listening,
so every connection is refused at once (a server that is down) and no other
process can take the port meanwhile; `Answering` answers every HTTP request
as the test says (a login page, a redirect, a 429), optionally dripping it
one byte at a time.
"""
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Tuple, Union

from tests.loopback import serve_in_background, stop_serving


class Blackhole:
    """Accepts connections, reads nothing, answers nothing, until closed."""

    def __init__(self):
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(128)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._held: List[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return len(self._held)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            with self._lock:
                self._held.append(connection)

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for connection in self._held:
                connection.close()

    def __enter__(self) -> "Blackhole":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Refusing:
    """A reserved loopback port where every connection is refused."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "Refusing":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it was read


# The raw bytes of a whole answer, or (status, headers, body) to build one.
Answer = Union[bytes, Tuple[int, Dict[str, str], bytes]]


class Answering:
    """An HTTP/1.1 server answering every request with `respond(request) -> Answer`.

    With `drip` > 0 the answer is written one byte every `drip` seconds (a
    server, or a proxy, that never quite finishes); a dict gives each method
    its own. Every request is kept in `received`.
    """

    def __init__(self, respond: Callable[[Received], Answer], drip: Union[float, Dict[str, float]] = 0.0):
        self.received: List[Received] = []
        self._closed = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except OSError:  # the client gave up: what it was sent does not matter
                    self.close_connection = True

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(self.command, self.path, dict(self.headers), self.rfile.read(length),
                                   time.monotonic())
                server.received.append(request)
                answer = respond(request)
                if not isinstance(answer, bytes):
                    status, headers, body = answer
                    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}",
                            *(f"{name}: {value}" for name, value in headers.items())]
                    answer = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
                pause = drip.get(self.command, 0.0) if isinstance(drip, dict) else drip
                if pause <= 0:
                    self.wfile.write(answer)
                    return
                for index in range(len(answer)):
                    if server._closed.wait(pause):
                        break
                    self.wfile.write(answer[index:index + 1])
                    self.wfile.flush()
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        serve_in_background(self._httpd, "answering")

    def close(self) -> None:
        self._closed.set()
        stop_serving(self._httpd)

    def __enter__(self) -> "Answering":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
