"""What the pushgateway and remote-write sinks share: endpoint settings and a retrying request.

Each section (`pushgateway`, `prometheus_remote_write`) takes `url`, `username`
and `password` (HTTP Basic) or `token` (Bearer), `ca_bundle`, `verify_tls`,
`timeout` and `retries`, from CLI flags, `<PREFIX>_<KEY>` environment variables
or the `--config` file section, in that order.
"""
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

import requests

from ..config import Secret, Settings, mask_url
from ..errors import ConfigError
from .influx import _boolean, _connection_problem, _number, _status_text, _text

__all__ = ["Endpoint", "Unreachable", "endpoint_settings", "request_with_retries", "DEFAULT_TIMEOUT"]

logger = logging.getLogger("chaostoolkit_replay.prometheus")

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
_BACKOFF_SECONDS = 0.5


class Unreachable(Exception):
    """The server did not take the request; the message is one line for the user."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # without credentials, no trailing slash
    username: Optional[str] = None
    password: Optional[Secret] = None
    token: Optional[Secret] = None
    verify: Union[bool, str] = True  # requests' `verify`: a bool or a CA bundle path
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    def headers(self, masked: bool = False) -> Dict[str, str]:
        if self.token:
            return {"Authorization": "Bearer ***" if masked else f"Bearer {self.token.value}"}
        if self.username and masked:
            return {"Authorization": "Basic ***"}
        return {}

    @property
    def auth(self):
        if self.username and not self.token:
            return (self.username, self.password.value if self.password else "")
        return None


def endpoint_settings(
    settings: Settings, section: str, env_prefix: str, cli: Optional[Dict[str, str]] = None,
    url_aliases: Sequence[str] = (),
) -> Optional[Tuple[Endpoint, Callable[..., Any]]]:
    """The endpoint of `section` and a `pick(key, default)` for its other keys; None without a URL.

    `cli` maps section keys to CLI option names; `url_aliases` are other keys of
    the section that may hold the URL (chaostoolkit-prometheus' `pushgateway_url`).
    Errors name the key at fault.
    """
    cli = cli or {}

    def pick(key: str, default: Any = None) -> Any:
        return settings.pick(cli=cli.get(key), env=f"{env_prefix}_{key.upper()}", file=f"{section}.{key}",
                             default=default)

    url = pick("url")
    for alias in url_aliases:
        url = url if url is not None else pick(alias)
    if url is None:
        given = sorted(option for option in cli.values() if settings.cli.get(option) not in (None, (), []))
        if given:
            flags = ", ".join("--" + option.replace("_", "-") for option in given)
            raise ConfigError(f"{section}.url", f"{flags} given but no URL")
        return None
    url = _text(url, f"{section}.url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{section}.url", f"expected an http(s)://host[:port] URL, got {mask_url(url)!r}")
    username = pick("username") or parts.username
    password = pick("password") or parts.password
    token = pick("token")
    verify: Union[bool, str] = _boolean(pick("verify_tls", True), f"{section}.verify_tls")
    ca_bundle = pick("ca_bundle")
    if ca_bundle and verify:
        verify = _text(ca_bundle, f"{section}.ca_bundle")
    endpoint = Endpoint(
        url=mask_url(url).rstrip("/"),
        username=_text(username, f"{section}.username") if username else None,
        password=Secret(_text(password, f"{section}.password")) if password else None,
        token=Secret(_text(token, f"{section}.token")) if token else None,
        verify=verify,
        timeout=_number(pick("timeout", DEFAULT_TIMEOUT), f"{section}.timeout", float, 0, above=True),
        retries=_number(pick("retries", DEFAULT_RETRIES), f"{section}.retries", int, 0),
    )
    return endpoint, pick


def request_with_retries(
    session: requests.Session, endpoint: Endpoint, method: str, url: str, what: str,
    headers: Optional[Dict[str, str]] = None, **kwargs,
) -> requests.Response:
    """One request, retried with exponential backoff on connection errors and 5xx.

    Returns any response below 500; raises Unreachable with the last problem.
    """
    attempt = 0
    while True:
        attempt += 1
        last = attempt > endpoint.retries
        try:
            response = session.request(method, url, headers={**endpoint.headers(), **(headers or {})},
                                       auth=endpoint.auth, timeout=(endpoint.timeout, endpoint.timeout),
                                       verify=endpoint.verify, **kwargs)
        except requests.exceptions.SSLError as error:
            raise Unreachable(f"{what}: TLS error: {_connection_problem(error)}") from None
        except (requests.ConnectionError, requests.Timeout) as error:
            problem = _connection_problem(error)
            if last:
                raise Unreachable(f"{what}: {problem} ({attempt} attempt(s))") from None
        else:
            if response.status_code < 500:
                return response
            problem = _status_text(response)
            if last:
                raise Unreachable(f"{what}: {problem} ({attempt} attempt(s))")
        logger.debug("%s %s: %s, retrying", mask_url(url), what, problem)
        time.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1))
