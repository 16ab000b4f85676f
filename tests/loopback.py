"""Serving a test's own HTTP server on loopback, in a background thread.

`http.server`'s `serve_forever` looks for a shutdown request once per
`poll_interval`, 0.5 s by default: every `shutdown()` then waits up to half a
second, and the suite closes a few hundred such servers. A 0.05 s poll makes
closing one cost a few milliseconds and changes nothing a test can see.
"""
import threading
from http.server import ThreadingHTTPServer

POLL_SECONDS = 0.05


def serve_in_background(httpd: ThreadingHTTPServer, name: str) -> threading.Thread:
    """Start serving `httpd` in a daemon thread; stop it with `stop_serving(httpd)`."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                              name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(httpd: ThreadingHTTPServer) -> None:
    """Stop the serving thread and close the listening socket."""
    httpd.shutdown()
    httpd.server_close()
