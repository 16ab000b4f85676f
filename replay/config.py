"""Target configuration, resolved once into typed objects before anything is sent.

Precedence, highest first: CLI flags, environment, the `--config` file, the
journal's experiment `configuration` and `secrets` (chaosdb's `influxdb` and
`grafana` keys, `prometheus_base_url`). `{"type": "env", "key": ...}`
references are resolved from the environment; `${name}` from `--var`, then the
journal's configuration and secrets, as chaoslib does.
"""
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from string import Template
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from .errors import ConfigError
from .events import json_type_name

__all__ = ["Secret", "Settings", "Unresolved", "as_bool", "as_credential", "as_number", "as_text", "load_config_file",
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


@dataclass(frozen=True)
class Unresolved:
    """An `{"type": "env", "key": ...}` reference that cannot be resolved (its variable is
    not set and it has no default, or its key is no variable name): an error naming it
    if a target uses the value, nothing otherwise."""

    # Not a tuple: code that accepts lists or tuples of strings must not take it for one.
    problem: str
    location: str


def _usable(value: Any, key: str) -> Any:
    """`value`, unless it is an unresolved reference or holds an unresolved `${name}`."""
    if isinstance(value, Unresolved):
        raise ConfigError(key, f"{value.problem} ({value.location})")
    if isinstance(value, str) and "${" in value:
        unresolved = _PLACEHOLDER.search(value)
        if unresolved:
            raise ConfigError(key, f"{unresolved.group(0)} is not defined: give it with --var "
                                   f"{unresolved.group(1)}=VALUE or --var-file")
    return value


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def as_text(value: Any, key: str, numbers: bool = True) -> str:
    """A configuration value that must be a string (a number is taken as its text, unless
    `numbers` is false), and text: no lone surrogate, no unresolved `${name}`."""
    value = _usable(value, key)
    if not isinstance(value, (str, int) if numbers else str) or isinstance(value, bool):
        raise ConfigError(key, f"expected a string, got {type(value).__name__}")
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(key, "not text: holds a lone UTF-16 surrogate (value not shown)") from None
    return text


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
    value = _usable(value, key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(key, f"expected true or false, got {value!r}")


def as_number(value: Any, key: str, kind=float, minimum: float = 0, above: bool = False) -> Any:
    """`value` as `kind` (int or float), finite, at least `minimum` (more than it with `above`)."""
    value = _usable(value, key)
    try:
        if isinstance(value, bool):
            raise TypeError
        number = kind(value)
        if not math.isfinite(number):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(key, f"expected {'an integer' if kind is int else 'a finite number'}, "
                               f"got {value!r:.40}") from None
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
    except UnicodeDecodeError:
        raise ConfigError("--config", f"{path}: not UTF-8 text") from None
    except (ValueError, RecursionError):  # a number of over 4,300 digits, or nesting
        raise ConfigError("--config", f"{path}: a number too long or objects nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError("--config", f"{path}: expected a JSON object")
    unknown = sorted(set(data) - set(CONFIG_SECTIONS))
    if unknown:
        # chaosdb's `influxdb` here would otherwise be ignored, and nothing sent.
        raise ConfigError("--config", f"{path}: unknown section {unknown[0]!r} (known: {', '.join(CONFIG_SECTIONS)})")
    return data


# The sections of a `--config` file, one per sink.
CONFIG_SECTIONS = ("grafana", "influx", "openmetrics", "prometheus_remote_write", "pushgateway")


def resolve_env_references(value: Any, env: Mapping[str, str], location: str = "configuration") -> Any:
    """Replace chaostoolkit's `{"type": "env", "key": ...}` references, recursively; an unset
    variable without a default becomes an `Unresolved` (an error only where it is used)."""
    if isinstance(value, dict):
        if value.get("type") == "env" and "key" in value:
            name = value["key"]
            if not isinstance(name, str) or not name:
                return Unresolved(f"an env reference whose key is not a variable name but {json_type_name(name)}",
                                  f"{location}.key")
            if name in env:
                return env[name]
            if "default" in value:
                return value["default"]
            return Unresolved(f"environment variable {name} is not set", location)
        return {k: resolve_env_references(v, env, f"{location}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_references(v, env, f"{location}[{i}]") for i, v in enumerate(value)]
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
    values = {k: v for k, v in configuration.items() if not isinstance(v, (dict, list, Unresolved))}
    for scope in secrets.values():
        if isinstance(scope, dict):
            values.update({k: v for k, v in scope.items() if not isinstance(v, (dict, list, Unresolved))})
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
        try:
            configuration = resolve_env_references(dict(configuration or {}), self.env, "configuration")
            secrets = resolve_env_references(dict(secrets or {}), self.env, "secrets")
            # Explicit --var values win over the journal's own, as with `chaos run --var`.
            lookup = {**_lookup_values(configuration, secrets), **dict(variables or {})}
            self.configuration = substitute_variables(configuration, lookup, "configuration")
            self.secrets = substitute_variables(secrets, lookup, "secrets")
            self.file = substitute_variables(dict(file or {}), lookup, "--config")
        except RecursionError:
            raise ConfigError("experiment.configuration", "nested too deeply to be read") from None

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

    def check_section(self, name: str, known: Iterable[str]) -> None:
        """The `--config` section `name` (or a live control's) is an object of `known` keys:
        a typo (`databse`) or a section that is a URL string is an error naming it."""
        section = self.file.get(name)
        if section is None:
            return
        if not isinstance(section, dict):
            raise ConfigError(name, f"expected an object of settings, got {type(section).__name__}")
        known = sorted(known)
        for key in section:
            if key not in known:
                raise ConfigError(f"{name}.{key}", "unknown key (known: " + ", ".join(known) + ")")

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
