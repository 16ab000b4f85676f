"""Loopback backends that misbehave at the socket level, for the reliability tests.

`Blackhole` accepts TCP connections and never answers (a hung server, a
firewall that drops replies); `Refusing` holds a port bound without listening,
so every connection is refused at once (a server that is down) and no other
process can take the port meanwhile.
"""
import socket
import threading
from typing import List


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
