"""What the HTTP sinks share: their URL, credentials and TLS settings, a retrying request, error texts.

Every sink's errors are one line for the user: `status_text` for an answer
that says no (`answer_problem` raises it, as Refused for refused credentials),
`connection_problem` for a server that could not be reached.
"""
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple, Union
from urllib.parse import unquote, urlsplit

import requests

from ..config import Secret, as_bool, as_text, mask_url, split_authority
from ..errors import ConfigError
from . import shorten

__all__ = ["Ambiguous", "BaseUrl", "Credentials", "Refused", "Unreachable", "answer_problem", "base_url",
           "connection_problem", "request_problem", "request_with_retries", "server_error", "status_text",
           "tls_verify", "BACKOFF_SECONDS"]

logger = logging.getLogger("chaostoolkit_replay.http")

BACKOFF_SECONDS = 0.5
_QUOTED_LINE_LIMIT = 160
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"]+")
_SSL_REASON = re.compile(r"(?:\[SSL(?:: [A-Z0-9_]+)?\] )?([^('\"\[]+?) \(_ssl\.c:\d+\)")


class Unreachable(Exception):
    """The server did not take the request and asking again now will not help; one line for the user."""


class Refused(Unreachable):
    """The server refused our credentials (401/403): asking again will not help."""


class Ambiguous(Exception):
    """A request that must not be sent twice lost its answer: it may or may not have taken effect."""


@dataclass(frozen=True)
class BaseUrl:
    """A configured base URL and the credentials written in it (`http://user:password@host`)."""

    url: str  # without credentials, no trailing slash
    username: Optional[str]
    password: Optional[str]


class Credentials:
    """How a target authenticates: its `token` as `<token_scheme> <token>`, else
    `username`/`password` as HTTP Basic. Mixed into the targets' configurations,
    which define those three fields."""

    token_scheme: ClassVar[str] = "Bearer"
    username: Optional[str]
    password: Optional[Secret]
    token: Optional[Secret]

    def auth_headers(self, masked: bool = False) -> Dict[str, str]:
        """The Authorization header a token needs; with `masked`, what `--dry-run` shows of either."""
        if self.token:
            return {"Authorization": f"{self.token_scheme} {'***' if masked else self.token.value}"}
        if self.username and masked:
            return {"Authorization": "Basic ***"}
        return {}

    @property
    def basic_auth(self) -> Optional[Tuple[str, str]]:
        """requests' `auth` (user, password) when there is a user and no token."""
        if self.username and not self.token:
            return (self.username, self.password.value if self.password else "")
        return None


# What requests refuses in a host name (a traceback when the request is built): found first.
_BAD_HOST_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f<>\"{}|\\^`]")


def base_url(value: Any, key: str) -> BaseUrl:
    """An http(s)://host[:port] URL from the configuration; ConfigError naming `key` otherwise.

    User and password written in the URL are taken out (percent-decoded) and
    sent as credentials, never as part of the URL; the user information ends at
    the last `@` (`split_authority`). Errors show the URL without it.
    """
    url = as_text(value, key)
    split = split_authority(url)
    parts = None
    if split is not None and split[2]:
        scheme, userinfo, host, rest = split
        try:
            parts = urlsplit(f"{scheme}://{host}{rest}")
        except ValueError:
            parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"expected an http(s)://host[:port] URL, got {mask_url(url)!r}")
    if _BAD_HOST_CHARACTERS.search(parts.hostname):
        raise ConfigError(key, f"the host holds a space or another character no host name has, in {mask_url(url)!r}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(key, f"expected a port from 1 to 65535 in {mask_url(url)!r}")
    username = password = None
    if userinfo is not None:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
    return BaseUrl(f"{scheme}://{host}{rest}".rstrip("/"), username, password)


def tls_verify(verify_tls: Any, ca_bundle: Any, section: str, prefix: str = "") -> Union[bool, str]:
    """requests' `verify` from a section's `<prefix>verify_tls` and `<prefix>ca_bundle`: a bool or a CA bundle path."""
    verify: Union[bool, str] = as_bool(verify_tls, f"{section}.{prefix}verify_tls")
    if ca_bundle and verify:
        verify = as_text(ca_bundle, f"{section}.{prefix}ca_bundle")
    return verify


def request_with_retries(
    session: requests.Session, method: str, url: str, what: str, *, label: str, retries: int,
    timeout: float, idempotent: bool = True, **kwargs,
) -> requests.Response:
    """One request, retried with exponential backoff (from BACKOFF_SECONDS) on connection errors and 5xx.

    Returns any response below 500; raises Unreachable with the last problem
    (at once on a TLS error or anything else asking again will not mend: a
    bad URL or CA bundle, endless redirects). A request that is not
    `idempotent` is retried only when it surely did not reach the server (no connection, or a 5xx:
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
            raise Unreachable(f"{what}: {request_problem(error)}") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            problem = connection_problem(error)
            if not idempotent and not _surely_not_sent(error):
                raise Ambiguous(f"{what}: {problem}") from None
            if last:
                raise Unreachable(f"{what}: {problem} ({attempt} attempt(s))") from None
        except (requests.RequestException, OSError, ValueError) as error:
            raise Unreachable(f"{what}: {request_problem(error)}") from None
        else:
            if response.status_code < 500:
                return response
            problem = status_text(response)
            if last:
                raise Unreachable(f"{what}: {problem} ({attempt} attempt(s))")
        logger.debug("%s %s: %s, retrying", label, what, problem)
        time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))


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
    return shorten(str(text), _QUOTED_LINE_LIMIT) or response.reason or ""


def status_text(response: requests.Response) -> str:
    """`HTTP <status> <server's reason>`."""
    return f"HTTP {response.status_code} {server_error(response)}".rstrip()


def answer_problem(what: str, response: requests.Response, hint: str = "") -> Unreachable:
    """The error to raise for an answer that says no: Refused for refused credentials."""
    error = Refused if response.status_code in (401, 403) else Unreachable
    return error(f"{what}: {status_text(response)}{hint}")


def connection_problem(error: requests.RequestException) -> str:
    """The root cause (`Connection refused`, `Read timed out`) without urllib3's wrapping."""
    text = str(error)
    cause = _ERRNO_TEXT.search(text)
    if cause:
        return cause.group(1).strip()
    if isinstance(error, requests.Timeout):
        return "timed out"
    return shorten(_URL_IN_TEXT.sub(lambda url: mask_url(url.group(0)), text), _QUOTED_LINE_LIMIT)


def _tls_problem(error: requests.exceptions.SSLError) -> str:
    """OpenSSL's reason (`certificate verify failed: unable to get local issuer
    certificate`), which urllib3's wrapping would push past the line's end."""
    reason = _SSL_REASON.search(str(error))
    return reason.group(1) if reason else connection_problem(error)


def request_problem(error: Exception) -> str:
    """A request that could not be made, on one line without credentials.

    requests and http.client quote a header they refuse, and that may be the
    Authorization header: only the kind of problem is told then.
    """
    if isinstance(error, requests.exceptions.InvalidHeader):
        return "a header value requests refuses (InvalidHeader)"
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS error: {_tls_problem(error)}"
    if isinstance(error, ValueError) and not isinstance(error, requests.RequestException):
        # Older requests let a header ending in a line break through to http.client,
        # whose ValueError quotes the value.
        return "a header or URL value http.client refuses (ValueError)"
    if isinstance(error, OSError) and not isinstance(error, requests.RequestException):
        # requests' OSError for a CA bundle that is not there says so with its path.
        return shorten(error.strerror or str(error), _QUOTED_LINE_LIMIT)
    return f"{connection_problem(error)} ({type(error).__name__})"
