"""Target configuration, resolved once into typed objects before anything is sent.

Precedence, highest first: CLI flags, environment, the `--config` file (these
three are the COMMAND's: the person running it), then the journal's: the
sections of the live controls its experiment declared, then its
`configuration` and `secrets` (chaosdb's `influxdb` and `grafana` keys).

A journal is untrusted input (anyone can hand one over), so where a value
comes from matters for credentials: a token, user name or password goes only
to a URL from the same origin (`Settings.origin_of`, `Settings.pick_from`).
The command's credentials never go to a server the journal names, and the
journal's never to a server the command names.

`{"type": "env", "key": ...}` references in a journal are resolved only where
they hold a credential (a key named token, password or username, or ending in
`_token`, `_password`, `_username`; any key of `secrets`): anywhere else they
stay an `EnvReference`, which every value check refuses (exit 4, naming the
key, never the value), so the environment cannot leak into a database name, a
URL, a tag or a label. `${name}` is filled from `--var`, then the journal's
configuration and secrets (as chaoslib does) in the journal's sections; the
`--config` file takes `${name}` from `--var` only.
"""
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from string import Template
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Tuple

from .errors import ConfigError
from .events import json_type_name

__all__ = ["COMMAND", "JOURNAL_CONFIGURATION", "JOURNAL_CONTROLS", "EnvReference", "Redactor", "Secret",
           "Settings", "Unresolved", "as_bool", "as_credential", "as_number", "as_text", "is_credential_key",
           "known_secrets", "load_config_file", "mask_url", "refuse_env_reference", "resolve_env_references",
           "split_authority", "substitute_variables"]

# Where a setting comes from; credentials go only to a URL of the same origin.
COMMAND = "command"  # flags, environment, --config
JOURNAL_CONTROLS = "journal controls"  # the live controls declared in the journal's experiment
JOURNAL_CONFIGURATION = "journal configuration"  # the journal's configuration and secrets

_CREDENTIAL_NAMES = frozenset({"token", "api_token", "password", "username"})
_CREDENTIAL_SUFFIXES = ("_token", "_password", "_username")
_NOT_A_CREDENTIAL = ("the journal's environment reference ({{\"type\": \"env\", \"key\": \"{name}\"}}) is resolved "
                     "only for tokens, passwords and user names (value not shown)")

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


class EnvReference:
    """A journal's `{"type": "env"}` reference where no credential is expected.

    It keeps the value (to redact it from error texts) but has no text form
    that shows it, and `as_text`, `as_number`, `as_bool` and `as_credential`
    refuse it, naming the key: the environment cannot leak into a database
    name, a URL, a tag or a label.
    """

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any):
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"EnvReference({self.name!r})"

    __str__ = __repr__

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, EnvReference) and (self.name, self.value) == (other.name, other.value)

    def __hash__(self) -> int:
        return hash(self.name)


def is_credential_key(name: Any) -> bool:
    """A key that holds a token, password or user name (`grafana_token`, `api_token`, `password`...)."""
    if not isinstance(name, str):
        return False
    name = name.lower()
    return name in _CREDENTIAL_NAMES or name.endswith(_CREDENTIAL_SUFFIXES)


def refuse_env_reference(value: Any, key: str) -> None:
    """ConfigError naming `key` if `value` is a journal's environment reference (not a credential)."""
    if isinstance(value, EnvReference):
        raise ConfigError(key, _NOT_A_CREDENTIAL.format(name=value.name))


# A URL's scheme and user information, up to the last `@` before a space or a quote.
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s'\"<>]*@")


class Redactor:
    """Replaces the run's known secrets by `***` in texts (an activity's error, a mark's fields).

    An http action to `http://user:${token}@host/` that fails puts the token
    in chaoslib's error text: it must not reach a journal extension, a side
    file, a server or the terminal. Values shorter than MIN_LENGTH are not
    redacted (they would turn common words into `***`).
    """

    MIN_LENGTH = 4
    MASK = "***"

    def __init__(self, values: Iterable[Any] = ()):
        self._values: Tuple[str, ...] = ()
        self.add(values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def add(self, values: Iterable[Any]) -> None:
        known = set(self._values)
        for value in values:
            if isinstance(value, Secret):
                value = value.value
            if isinstance(value, EnvReference):
                value = value.value
            if isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) >= self.MIN_LENGTH:
                known.add(str(value))
        # Longest first: a secret that contains another is masked whole.
        self._values = tuple(sorted(known, key=len, reverse=True))

    def finds(self, text: str) -> bool:
        """Whether `text` holds something to mask (a known secret, a URL with user information)."""
        if "@" in text and "://" in text and _URL_USERINFO.search(text):
            return True
        return any(value in text for value in self._values)

    def text(self, text: str) -> str:
        """`text` with every known secret masked; a secret cut off at a shortened text's
        end (`…`) is masked too, and so is the user information of any URL in it
        (`http://user:token@host` -> `http://***@host`), known or not."""
        if "@" in text and "://" in text:
            text = _URL_USERINFO.sub(r"\1***@", text)
        for value in self._values:
            if value in text:
                text = text.replace(value, self.MASK)
        if text.endswith("…"):
            head = text[:-1]
            for value in self._values:
                for length in range(len(value) - 1, self.MIN_LENGTH - 1, -1):
                    if head.endswith(value[:length]):
                        return head[:-length] + self.MASK + "…"
        return text

    def value(self, value: Any) -> Any:
        """Strings masked, in lists and mappings too; anything else as it is."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(item) for item in value)
        return value


def known_secrets(configuration: Mapping[str, Any], secrets: Mapping[str, Any]) -> list:
    """A run's known secrets: every value of its secrets, the credential values of its
    configuration (keys named like tokens and passwords; user names are not secret there) and the
    passwords written in its URLs. Values already resolved (`Settings`) or not (env references
    are resolved here from nothing: only what was resolved counts)."""
    found: list = []

    def walk(value: Any, key: Any, all_values: bool) -> None:
        if isinstance(value, EnvReference):
            found.append(value.value)
        elif isinstance(value, Mapping):
            for name, item in value.items():
                walk(item, name, all_values)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, key, all_values)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            if all_values or (is_credential_key(key) and not str(key).lower().endswith("username")):
                found.append(value)
            elif isinstance(value, str) and "@" in value:
                userinfo = (split_authority(value) or (None, None))[1]
                if userinfo and ":" in userinfo:
                    found.append(userinfo.partition(":")[2])

    walk(configuration, None, False)
    walk(secrets, None, True)
    return found


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
    """`value`, unless it is an unresolved reference, a journal's environment reference
    (`EnvReference`: not a credential's place) or holds an unresolved `${name}`."""
    if isinstance(value, Unresolved):
        raise ConfigError(key, f"{value.problem} ({value.location})")
    refuse_env_reference(value, key)
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
    """Replace chaostoolkit's `{"type": "env", "key": ...}` references, recursively, by
    `EnvReference`s: `substitute_variables` turns those in a credential's place into their
    value. A variable that is not set gives the reference's default, else an `Unresolved`
    (an error only where it is used)."""
    if isinstance(value, dict):
        if value.get("type") == "env" and "key" in value:
            name = value["key"]
            if not isinstance(name, str) or not name:
                return Unresolved(f"an env reference whose key is not a variable name but {json_type_name(name)}",
                                  f"{location}.key")
            if name in env:
                return EnvReference(name, env[name])
            if "default" in value:
                return value["default"]  # the journal's own value, not the environment's
            return Unresolved(f"environment variable {name} is not set", location)
        return {k: resolve_env_references(v, env, f"{location}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_references(v, env, f"{location}[{i}]") for i, v in enumerate(value)]
    return value


def _unwrap(value: Any) -> Any:
    """Every EnvReference replaced by its value (the journal's secrets: credentials all)."""
    if isinstance(value, EnvReference):
        return value.value
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def substitute_variables(value: Any, variables: Mapping[str, Any], key: str, name: Any = None,
                         credential_variables: Optional[Mapping[str, Any]] = None) -> Any:
    """Replace `${name}` as chaoslib does; a value that is only `${name}` keeps its type.

    A variable that is an `EnvReference` fills a credential key with its value;
    anywhere else the result is an `EnvReference`, refused when used. At
    credential keys only `credential_variables` are used (default: all).
    """
    if isinstance(value, dict):
        return {k: substitute_variables(v, variables, f"{key}.{k}", k, credential_variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_variables(v, variables, f"{key}[{i}]", name, credential_variables)
                for i, v in enumerate(value)]
    credential = is_credential_key(name)
    if isinstance(value, str) and "${" in value:
        usable = credential_variables if credential and credential_variables is not None else variables
        return _substitute(value, usable, key, credential)
    if isinstance(value, EnvReference) and credential:
        return value.value
    return value


def _substitute(text: str, variables: Mapping[str, Any], key: str, credential: bool) -> Any:
    whole = text.strip()
    if whole.startswith("${") and whole.endswith("}") and whole.count("${") == 1:
        name = whole[2:-1]
        if name in variables:
            found = variables[name]
            return found.value if credential and isinstance(found, EnvReference) else found
    plain = {name: found.value if isinstance(found, EnvReference) else found for name, found in variables.items()}
    try:
        result = Template(text).safe_substitute(plain)
    except ValueError as error:
        raise ConfigError(key, f"bad ${{...}} substitution: {error}") from None
    if not credential:
        for match in Template.pattern.finditer(text):
            found = variables.get(match.group("named") or match.group("braced"))
            if isinstance(found, EnvReference):
                return EnvReference(found.name, result)
    return result


def _lookup_values(configuration: Mapping[str, Any], secrets: Mapping[str, Any]) -> Dict[str, Any]:
    """What chaoslib substitutes `${name}` with: configuration values, then secrets by name."""
    values = {k: v for k, v in configuration.items() if not isinstance(v, (dict, list, Unresolved))}
    for scope in secrets.values():
        if isinstance(scope, dict):
            values.update({k: v for k, v in scope.items() if not isinstance(v, (dict, list, Unresolved))})
    return values


class Settings:
    """Every source of target configuration for one journal, by precedence, with its origin.

    Sinks read what they need through `pick`, which returns the first value
    found from CLI flags, environment, config file, the journal's live control
    sections, then its configuration. Credentials are read with `pick_from`,
    from the layers of the origin their URL came from (`origin_of`).

    `controls` are the sections of the journal's live controls (`{"influx":
    {...}, "grafana": [...]}`); `file` is the command's `--config`. In a live
    control, the experiment's control arguments are its `controls` and the
    run's environment its `env`.
    """

    def __init__(
        self,
        cli: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        file: Optional[Mapping[str, Any]] = None,
        configuration: Optional[Mapping[str, Any]] = None,
        secrets: Optional[Mapping[str, Any]] = None,
        variables: Optional[Mapping[str, Any]] = None,
        controls: Optional[Mapping[str, Any]] = None,
    ):
        self.cli = dict(cli or {})
        self.env = dict(os.environ if env is None else env)
        try:
            configuration = resolve_env_references(dict(configuration or {}), self.env, "configuration")
            secrets = resolve_env_references(dict(secrets or {}), self.env, "secrets")
            controls = resolve_env_references(dict(controls or {}), self.env, "controls")
            # Explicit --var values win over the journal's own, as with `chaos run --var`.
            variables = dict(variables or {})
            lookup = {**_lookup_values(configuration, secrets), **variables}
            self.configuration = substitute_variables(configuration, lookup, "configuration")
            # Read only through `secret`, for a credential of the journal's own servers.
            self.secrets = _unwrap(substitute_variables(secrets, lookup, "secrets"))
            self.controls = substitute_variables(controls, lookup, "controls")
            # The command's own file: the journal's configuration may fill in its settings, but
            # never a credential there (the journal's secrets go to the journal's servers only).
            self.file = substitute_variables(dict(file or {}), {**_lookup_values(configuration, {}), **variables},
                                             "--config", credential_variables=variables)
        except RecursionError:
            raise ConfigError("experiment.configuration", "nested too deeply to be read") from None

    def _layers(self, cli: Optional[str], env: Optional[str], file: Optional[str],
                journal: Optional[str]) -> Iterator[Tuple[str, Any]]:
        """(origin, value) of every layer that has a value, highest precedence first."""
        if cli and self.cli.get(cli) not in (None, (), []):
            yield COMMAND, self.cli[cli]
        if env and self.env.get(env) not in (None, ""):
            yield COMMAND, self.env[env]
        if file:
            value = _dig(self.file, file)
            if value is not None:
                yield COMMAND, value
            value = _dig(self.controls, file)
            if value is not None:
                yield JOURNAL_CONTROLS, value
        if journal:
            value = _dig(self.configuration, journal)
            if value is not None:
                yield JOURNAL_CONFIGURATION, value

    def pick(self, *, cli: Optional[str] = None, env: Optional[str] = None, file: Optional[str] = None,
             journal: Optional[str] = None, default: Any = None) -> Any:
        """First value found; `file` (a path in `--config`, and in the journal's live control
        sections) and `journal` (a path in its configuration) are dotted paths."""
        for _, value in self._layers(cli, env, file, journal):
            return value
        return default

    def origin_of(self, *, cli: Optional[str] = None, env: Optional[str] = None, file: Optional[str] = None,
                  journal: Optional[str] = None) -> Optional[str]:
        """Where `pick` with the same arguments takes its value from (None: nowhere)."""
        for origin, _ in self._layers(cli, env, file, journal):
            return origin
        return None

    def pick_from(self, origin: Optional[str], *, cli: Optional[str] = None, env: Optional[str] = None,
                  file: Optional[str] = None, journal: Optional[str] = None, default: Any = None) -> Any:
        """`pick` from the layers of `origin` only: a credential for a URL of that origin."""
        for found, value in self._layers(cli, env, file, journal):
            if found == origin:
                return value
        return default

    def flags_given(self, options: Iterable[str]) -> str:
        """Those of the CLI `options` that were given, as `--flag, --flag` ('' if none)."""
        given = sorted(option for option in options if self.cli.get(option) not in (None, (), []))
        return ", ".join("--" + option.replace("_", "-") for option in given)

    def check_section(self, name: str, known: Iterable[str]) -> None:
        """The `--config` section `name` (or a live control's) is an object of `known` keys:
        a typo (`databse`) or a section that is a URL string is an error naming it."""
        known = sorted(known)
        for section in (self.file.get(name), self.controls.get(name)):
            if section is None:
                continue
            if not isinstance(section, dict):
                raise ConfigError(name, f"expected an object of settings, got {type(section).__name__}")
            for key in section:
                if key not in known:
                    raise ConfigError(f"{name}.{key}", "unknown key (known: " + ", ".join(known) + ")")

    def secret(self, name: str) -> Optional[Any]:
        """A secret by name from any scope of the journal's `secrets` (for the journal's own servers)."""
        for scope in self.secrets.values():
            if isinstance(scope, dict) and scope.get(name) is not None:
                return scope[name]
        return None

    def known_secrets(self) -> list:
        """The journal's secret values, credentials and env references, for a `Redactor`."""
        return known_secrets({"configuration": self.configuration, "controls": self.controls}, self.secrets)


def _dig(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current
