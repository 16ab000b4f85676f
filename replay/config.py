"""Target configuration, resolved once into typed objects before anything is sent.

Precedence, highest first: CLI flags, environment, the `--config` file, the
journal's experiment `configuration` and `secrets` (chaosdb's `influxdb` and
`grafana` keys, `prometheus_base_url`). `{"type": "env", "key": ...}`
references are resolved from the environment; `${name}` from `--var`, then the
journal's configuration and secrets, as chaoslib does.
"""
import json
import os
import unicodedata
from dataclasses import dataclass
from string import Template
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from .errors import ConfigError

__all__ = ["Secret", "Settings", "as_bool", "as_credential", "as_number", "as_text", "load_config_file",
           "mask_url", "resolve_env_references", "split_authority", "substitute_variables"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Secret:
    """A credential. Its text form is masked so it cannot leak by accident."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


def split_authority(url: str) -> Optional[Tuple[str, Optional[str], str, str]]:
    """`scheme://userinfo@host:port/rest` as (scheme, userinfo or None, host:port, rest); None
    without `://`.

    The user information ends at the LAST `@`: a password may hold `#`, `/`, `?`
    or `@` unencoded (`http://admin:1234/x@host` is user `admin`, password
    `1234/x`, host `host`; urlsplit would see host `admin`, port `1234`).
    So a base URL's path may not hold an `@`.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return None
    userinfo, at, after = rest.rpartition("@")
    ends = [index for index in (after.find(character) for character in "/?#") if index >= 0]
    end = min(ends, default=len(after))
    return scheme, userinfo if at else None, after[:end], after[end:]


def mask_url(url: str) -> str:
    """The URL without its user information, for messages and labels; never raises.

    Everything before the last `@` of the authority goes, whatever it holds
    (see `split_authority`); a text that is not a URL loses everything up to
    its last `@`.
    """
    parts = split_authority(url)
    if parts is None:
        return url.rpartition("@")[2]
    scheme, userinfo, host, rest = parts
    return url if userinfo is None else f"{scheme}://{host}{rest}"


def as_text(value: Any, key: str) -> str:
    """A configuration value that must be a string (a number is taken as its text)."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ConfigError(key, f"expected a string, got {type(value).__name__}")
    return str(value)


def as_credential(value: Any, key: str) -> str:
    """A token, user name or password, checked before it goes into an HTTP header.

    A stray newline or other control character (`$(cat token-file)`, a
    pasted value) would make requests fail with a message quoting the
    header, credential included; a character beyond Latin-1 cannot be sent
    at all. The error names the key, never the value.
    """
    text = as_text(value, key)
    if any(character.isspace() and character != " " or unicodedata.category(character).startswith("C")
           for character in text):
        raise ConfigError(key, "contains a newline, tab or other control character (value not shown)")
    if text != text.strip():
        raise ConfigError(key, "starts or ends with a space (value not shown)")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(key, "contains a character HTTP headers cannot carry, beyond Latin-1 "
                               "(value not shown)") from None
    return text


def as_bool(value: Any, key: str) -> bool:
    """A boolean, the integer 0 or 1, or its text from the environment or a file (true/false,
    yes/no, on/off, 1/0).

    0 and 1 because chaosdb wrote and tested `only_actions` as integers (its
    `configure_control` stores `"only_actions": 0` in the configuration, hence
    in every journal), and JSON users write flags that way.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(key, f"expected true or false, got {value!r}")


def as_number(value: Any, key: str, kind=float, minimum: float = 0, above: bool = False) -> Any:
    """`value` as `kind` (int or float), at least `minimum` (more than it with `above`)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if number < minimum or (above and number == minimum):
        bound = f"more than {minimum:g}" if above else f"at least {minimum:g}"
        raise ConfigError(key, f"expected {bound}, got {value!r}")
    return number


def load_config_file(path: Optional[str]) -> Dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise ConfigError("--config", f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            "--config", f"{path}: line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("--config", f"{path}: expected a JSON object")
    return data


def resolve_env_references(value: Any, env: Mapping[str, str]) -> Any:
    """Replace chaostoolkit's `{"type": "env", "key": ...}` references, recursively."""
    if isinstance(value, dict):
        if value.get("type") == "env" and "key" in value:
            name = value["key"]
            if name in env:
                return env[name]
            return value.get("default")
        return {k: resolve_env_references(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_references(v, env) for v in value]
    return value


def substitute_variables(value: Any, variables: Mapping[str, Any], key: str) -> Any:
    """Replace `${name}` as chaoslib does; a value that is only `${name}` keeps its type."""
    if isinstance(value, dict):
        return {k: substitute_variables(v, variables, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_variables(v, variables, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _substitute(value, variables, key)
    return value


def _substitute(text: str, variables: Mapping[str, Any], key: str) -> Any:
    whole = text.strip()
    if whole.startswith("${") and whole.endswith("}") and whole.count("${") == 1:
        name = whole[2:-1]
        if name in variables:
            return variables[name]
    try:
        return Template(text).safe_substitute(variables)
    except ValueError as error:
        raise ConfigError(key, f"bad ${{...}} substitution: {error}") from None


def _lookup_values(configuration: Mapping[str, Any], secrets: Mapping[str, Any]) -> Dict[str, Any]:
    """What chaoslib substitutes `${name}` with: configuration values, then secrets by name."""
    values = {k: v for k, v in configuration.items() if not isinstance(v, (dict, list))}
    for scope in secrets.values():
        if isinstance(scope, dict):
            values.update({k: v for k, v in scope.items() if not isinstance(v, (dict, list))})
    return values


class Settings:
    """Every source of target configuration for one journal, by precedence.

    Sinks read what they need through `pick`, which returns the first value
    found from CLI flags, environment, config file, then the journal.
    """

    def __init__(
        self,
        cli: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        file: Optional[Mapping[str, Any]] = None,
        configuration: Optional[Mapping[str, Any]] = None,
        secrets: Optional[Mapping[str, Any]] = None,
        variables: Optional[Mapping[str, Any]] = None,
    ):
        self.cli = dict(cli or {})
        self.env = dict(os.environ if env is None else env)
        configuration = resolve_env_references(dict(configuration or {}), self.env)
        secrets = resolve_env_references(dict(secrets or {}), self.env)
        # Explicit --var values win over the journal's own, as with `chaos run --var`.
        lookup = {**_lookup_values(configuration, secrets), **dict(variables or {})}
        self.configuration = substitute_variables(configuration, lookup, "configuration")
        self.secrets = substitute_variables(secrets, lookup, "secrets")
        self.file = substitute_variables(dict(file or {}), lookup, "--config")

    def pick(
        self,
        *,
        cli: Optional[str] = None,
        env: Optional[str] = None,
        file: Optional[str] = None,
        journal: Optional[str] = None,
        default: Any = None,
    ) -> Any:
        """First value found; `file` and `journal` are dotted paths."""
        if cli and self.cli.get(cli) not in (None, (), []):
            return self.cli[cli]
        if env and self.env.get(env) not in (None, ""):
            return self.env[env]
        if file:
            value = _dig(self.file, file)
            if value is not None:
                return value
        if journal:
            value = _dig(self.configuration, journal)
            if value is not None:
                return value
        return default

    def flags_given(self, options: Iterable[str]) -> str:
        """Those of the CLI `options` that were given, as `--flag, --flag` ('' if none)."""
        given = sorted(option for option in options if self.cli.get(option) not in (None, (), []))
        return ", ".join("--" + option.replace("_", "-") for option in given)

    def secret(self, name: str) -> Optional[Any]:
        """A secret by name from any scope of the journal's `secrets`."""
        for scope in self.secrets.values():
            if isinstance(scope, dict) and scope.get(name) is not None:
                return scope[name]
        return None


def _dig(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current
