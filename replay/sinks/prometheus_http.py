"""What the pushgateway and remote-write sinks share: endpoint settings and how to request it.

Each section (`pushgateway`, `prometheus_remote_write`) takes `url`, `username`
and `password` (HTTP Basic) or `token` (Bearer), `ca_bundle`, `verify_tls`,
`timeout` and `retries`, from CLI flags, `<PREFIX>_<KEY>` environment variables,
the `--config` file section or the journal's live control section, in that order;
credentials only from the origin of the URL (the command's, or that journal section).
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import requests

from ..config import Secret, Settings, as_credential, as_number
from ..errors import ConfigError
from .http import Credentials, base_url, request_with_retries, tls_verify

__all__ = ["Endpoint", "endpoint_settings", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class Endpoint(Credentials):
    url: str  # without credentials, no trailing slash
    username: Optional[str] = None
    password: Optional[Secret] = None
    token: Optional[Secret] = None
    verify: Union[bool, str] = True  # requests' `verify`: a bool or a CA bundle path
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    def request(self, session: requests.Session, method: str, url: str, what: str,
                headers: Optional[Dict[str, str]] = None, **kwargs) -> requests.Response:
        """`request_with_retries` with this endpoint's credentials, TLS, timeout and retries."""
        return request_with_retries(session, method, url, what, label=url, retries=self.retries,
                                    timeout=self.timeout, headers={**self.auth_headers(), **(headers or {})},
                                    auth=self.basic_auth, verify=self.verify, **kwargs)


# Keys every endpoint section takes; each sink adds its own.
ENDPOINT_KEYS = ("url", "username", "password", "token", "ca_bundle", "verify_tls", "timeout", "retries")


def endpoint_settings(
    settings: Settings, section: str, env_prefix: str, cli: Optional[Dict[str, str]] = None,
    url_aliases: Sequence[str] = (), other_keys: Sequence[str] = (),
) -> Optional[Tuple[Endpoint, Callable[..., Any]]]:
    """The endpoint of `section` and a `pick(key, default)` for its other keys; None without a URL.

    `cli` maps section keys to CLI option names; `url_aliases` are other keys of
    the section that may hold the URL (chaostoolkit-prometheus' `pushgateway_url`);
    `other_keys` the sink's own keys. Errors name the key at fault (an unknown one too).
    """
    settings.check_section(section, (*ENDPOINT_KEYS, *url_aliases, *other_keys))
    cli = cli or {}

    def pick(key: str, default: Any = None) -> Any:
        return settings.pick(cli=cli.get(key), env=f"{env_prefix}_{key.upper()}", file=f"{section}.{key}",
                             default=default)

    url, url_key = None, "url"
    for key in ("url", *url_aliases):
        url, url_key = pick(key), key
        if url is not None:
            break
    if url is None:
        flags = settings.flags_given(cli.values())
        if flags:
            raise ConfigError(f"{section}.url", f"{flags} given but no URL")
        return None
    base = base_url(url, f"{section}.url")
    origin = settings.origin_of(cli=cli.get(url_key), env=f"{env_prefix}_{url_key.upper()}", file=f"{section}.{url_key}")

    def credential(key: str) -> Any:
        """Only from where the URL came from (the command, or the journal's own section)."""
        return settings.pick_from(origin, cli=cli.get(key), env=f"{env_prefix}_{key.upper()}",
                                  file=f"{section}.{key}")

    username = credential("username") or base.username
    password = credential("password") or base.password
    token = credential("token")
    verify = tls_verify(pick("verify_tls", True), pick("ca_bundle"), section)
    endpoint = Endpoint(
        url=base.url,
        username=as_credential(username, f"{section}.username") if username else None,
        password=Secret(as_credential(password, f"{section}.password")) if password else None,
        token=Secret(as_credential(token, f"{section}.token")) if token else None,
        verify=verify,
        timeout=as_number(pick("timeout", DEFAULT_TIMEOUT), f"{section}.timeout", float, 0, above=True),
        retries=as_number(pick("retries", DEFAULT_RETRIES), f"{section}.retries", int, 0),
    )
    return endpoint, pick
