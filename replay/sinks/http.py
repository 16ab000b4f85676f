"""What the HTTP sinks share: their URL and TLS settings, a retrying request, error texts.

Every sink's errors are one line for the user: `status_text` for an answer
that says no, `connection_problem` for a server that could not be reached.
"""
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Optional, Union
from urllib.parse import urlsplit

import requests

from ..config import as_bool, as_text, mask_url
from ..errors import ConfigError

__all__ = ["Ambiguous", "BaseUrl", "Unreachable", "base_url", "connection_problem", "request_with_retries",
           "server_error", "status_text", "tls_verify", "BACKOFF_SECONDS"]

logger = logging.getLogger("chaostoolkit_replay.http")

BACKOFF_SECONDS = 0.5
_QUOTED_LINE_LIMIT = 160
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class Unreachable(Exception):
    """The server did not take the request and asking again now will not help; one line for the user."""


class Ambiguous(Exception):
    """A request that must not be sent twice lost its answer: it may or may not have taken effect."""


@dataclass(frozen=True)
class BaseUrl:
    """A configured base URL and the credentials written in it (`http://user:password@host`)."""

    url: str  # without credentials, no trailing slash
    username: Optional[str]
    password: Optional[str]


def base_url(value: Any, key: str) -> BaseUrl:
    """An http(s)://host[:port] URL from the configuration; ConfigError naming `key` otherwise."""
    url = as_text(value, key)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"expected an http(s)://host[:port] URL, got {mask_url(url)!r}")
    return BaseUrl(mask_url(url).rstrip("/"), parts.username, parts.password)


def tls_verify(verify_tls: Any, ca_bundle: Any, section: str) -> Union[bool, str]:
    """requests' `verify` from a section's `verify_tls` and `ca_bundle`: a bool or a CA bundle path."""
    verify: Union[bool, str] = as_bool(verify_tls, f"{section}.verify_tls")
    if ca_bundle and verify:
        verify = as_text(ca_bundle, f"{section}.ca_bundle")
    return verify


def request_with_retries(
    session: requests.Session, method: str, url: str, what: str, *, label: str, retries: int,
    timeout: float, backoff: float = BACKOFF_SECONDS, idempotent: bool = True, **kwargs,
) -> requests.Response:
    """One request, retried with exponential backoff on connection errors and 5xx.

    Returns any response below 500; raises Unreachable with the last problem
    (at once on a TLS error). A request that is not `idempotent` is retried
    only when it surely did not reach the server (no connection, or a 5xx:
    nothing done); when its answer is lost it raises Ambiguous, since sending
    it again could do it twice. `what` names the request in messages, `label`
    the target in the debug log; `kwargs` go to `session.request`.
    """
    attempt = 0
    while True:
        attempt += 1
        last = attempt > retries
        try:
            response = session.request(method, url, timeout=(timeout, timeout), **kwargs)
        except requests.exceptions.SSLError as error:
            raise Unreachable(f"{what}: TLS error: {connection_problem(error)}") from None
        except (requests.ConnectionError, requests.Timeout) as error:
            problem = connection_problem(error)
            if not idempotent and not _surely_not_sent(error):
                raise Ambiguous(f"{what}: {problem}") from None
            if last:
                raise Unreachable(f"{what}: {problem} ({attempt} attempt(s))") from None
        else:
            if response.status_code < 500:
                return response
            problem = status_text(response)
            if last:
                raise Unreachable(f"{what}: {problem} ({attempt} attempt(s))")
        logger.debug("%s %s: %s, retrying", label, what, problem)
        time.sleep(backoff * 2 ** (attempt - 1))


def _surely_not_sent(error: requests.RequestException) -> bool:
    """No connection was made, so the request never reached the server."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return type(reason).__name__ == "NewConnectionError"


def server_error(response: requests.Response) -> str:
    """The server's reason on one short line: JSON `error` (InfluxDB 1.x) or `message`
    (InfluxDB 2.x, Grafana), else the body, else the HTTP reason."""
    try:
        body = response.json()
        text = body.get("error") or body.get("message") or response.text
    except (ValueError, AttributeError):
        text = response.text
    text = " ".join(str(text).split()) or response.reason or ""
    return _shortened(text)


def status_text(response: requests.Response) -> str:
    """`HTTP <status> <server's reason>`: the delivery engine spots refused credentials by it."""
    return f"HTTP {response.status_code} {server_error(response)}".rstrip()


def connection_problem(error: requests.RequestException) -> str:
    """The root cause (`Connection refused`, `Read timed out`) without urllib3's wrapping."""
    text = str(error)
    cause = _ERRNO_TEXT.search(text)
    if cause:
        return cause.group(1).strip()
    if isinstance(error, requests.Timeout):
        return "timed out"
    return _shortened(" ".join(text.split()))


def _shortened(text: str) -> str:
    return text if len(text) <= _QUOTED_LINE_LIMIT else text[: _QUOTED_LINE_LIMIT - 1] + "…"
