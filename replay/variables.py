"""`--var` and `--var-file`, read as `chaos run` reads them, but failing loudly.

chaoslib's own `merge_vars` only logs an unreadable var file and injects `.env`
files into the process environment; here a bad file is a configuration error
(exit 4) and `.env` values only reach the resolution of this replay.
"""
import json
import os
from typing import Any, Dict, Iterable, Tuple

from .errors import ConfigError


def load_variables(
    variables: Iterable[str], var_files: Iterable[str]
) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """(values for `${...}` substitution, environment overrides from .env files)."""
    values: Dict[str, Any] = {}
    env: Dict[str, str] = {}
    for path in var_files:
        _load_var_file(path, values, env)
    if not variables:
        return values, env
    # Imported when used: chaoslib and yaml are a fifth of chaos-replay's start-up.
    from chaoslib import convert_vars
    try:
        values.update(convert_vars(list(variables)))
    except ValueError as error:
        raise ConfigError("--var", str(error)) from None
    return values, env


def _load_var_file(path: str, values: Dict[str, Any], env: Dict[str, str]) -> None:
    key = f"--var-file {path}"
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
    except OSError as error:
        raise ConfigError(key, f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(key, f"not UTF-8 text (byte {error.start})") from None
    extension = os.path.splitext(path)[1].lower()
    if extension in (".json", ".yaml", ".yml"):
        import yaml
        try:
            data = json.loads(content) if extension == ".json" else yaml.safe_load(content)
        except (ValueError, yaml.YAMLError) as error:
            raise ConfigError(key, f"not valid {extension[1:].upper()}: {_first_line(error)}") from None
        except RecursionError:
            raise ConfigError(key, "nested too deeply") from None
        if data is None:
            return
        if not isinstance(data, dict):
            raise ConfigError(key, "expected an object with configuration/secrets keys")
        for section in ("configuration", "secrets"):
            part = data.get(section) or {}
            if not isinstance(part, dict):
                raise ConfigError(f"{key}: {section}", "expected an object")
            values.update(part)
        return
    for number, line in enumerate(content.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{key}: line {number}", "expected NAME=VALUE")
        env[name.strip()] = value.strip()


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
