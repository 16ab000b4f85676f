"""Prometheus query probes: `chaosprometheus.probes`, same functions and arguments.

Moving an experiment from chaostoolkit-prometheus is a change of module only::

    "provider": {"type": "python", "module": "chaosreplay.probes.prometheus",
                 "func": "query", "arguments": {"query": "up", "when": "2 minutes ago"}}

The base URL comes from `configuration.prometheus_base_url`; the probes return
Prometheus' JSON payload as-is and raise `ActivityFailed` with the server's
error. Unlike the original they never hang (a client timeout of
`DEFAULT_TIMEOUT` seconds unless `timeout` or `configuration.prometheus_timeout`
says otherwise), take HTTP Basic (`prometheus_username`/`prometheus_password`)
or Bearer (`prometheus_token`) credentials from the activity's secrets, verify
TLS against `prometheus_ca_bundle` when given (`prometheus_verify_tls: false`
turns verification off), and pick a step when none is given so that a long
range stays under Prometheus' limit of 11,000 points per series.

Times: "now", "<n> <unit>s ago" (seconds, minutes, hours, days, weeks; also
s/sec/m/min/h/hr/d/w), ISO-8601 (naive means UTC), or Unix epoch seconds.
"""
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Mapping, Optional, Union

import requests
from chaoslib.exceptions import ActivityFailed
from dateutil.parser import isoparse

from ..config import as_credential
from ..errors import ConfigError
from ..sinks import shorten
from ..sinks.http import request_problem, tls_verify

__all__ = ["query", "query_interval", "parse_time", "auto_step", "DEFAULT_TIMEOUT", "MAX_POINTS"]

DEFAULT_TIMEOUT = 10.0
# Prometheus refuses a range query of more than 11,000 points per series;
# the automatic step keeps a margin.
MAX_POINTS = 10_000
_ERROR_TEXT_LIMIT = 300

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s+ago\s*$", re.IGNORECASE)
_EPOCH = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


def query(query: str, when: Optional[str] = None, timeout: Optional[float] = None,
          configuration: Optional[Mapping[str, Any]] = None,
          secrets: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Evaluate `query` at `when` (default: now) through `/api/v1/query`."""
    params = {"query": query}
    if when is not None:
        params["time"] = _seconds_text(parse_time(when))
    return _get("/api/v1/query", params, timeout, configuration, secrets)


def query_interval(query: str, start: str, end: str, step: Optional[Union[int, float, str]] = None,
                   timeout: Optional[float] = None, configuration: Optional[Mapping[str, Any]] = None,
                   secrets: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Evaluate `query` from `start` to `end` through `/api/v1/query_range`.

    `step` in seconds (or a Prometheus duration such as "30s"); without one,
    the smallest whole number of seconds that keeps the range under MAX_POINTS.
    """
    start_at, end_at = parse_time(start), parse_time(end)
    if end_at < start_at:
        raise ActivityFailed(f"Prometheus query_interval: end {end!r} is before start {start!r}")
    if step is None:
        step = auto_step(start_at, end_at)
    params = {"query": query, "start": _seconds_text(start_at), "end": _seconds_text(end_at), "step": str(step)}
    return _get("/api/v1/query_range", params, timeout, configuration, secrets)


def auto_step(start: datetime, end: datetime) -> int:
    """Seconds between points: 1 (the original default) until the range would exceed MAX_POINTS."""
    return max(1, math.ceil((end - start).total_seconds() / MAX_POINTS))


def parse_time(value: Any, now: Optional[datetime] = None) -> datetime:
    """A probe's time argument as an aware UTC datetime; ActivityFailed if it is none of the forms."""
    now = now or datetime.now(timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if not isinstance(value, str):
        raise ActivityFailed(f"Prometheus probe: cannot read time {value!r}")
    text = value.strip()
    if text.lower() == "now":
        return now
    relative = _RELATIVE.match(text)
    if relative and relative.group(2).lower() in _UNITS:
        return now - timedelta(seconds=float(relative.group(1)) * _UNITS[relative.group(2).lower()])
    if _EPOCH.match(text):
        return datetime.fromtimestamp(float(text), timezone.utc)
    try:
        parsed = isoparse(text)
    except (ValueError, OverflowError):
        raise ActivityFailed(
            f"Prometheus probe: cannot read time {value!r} (expected 'now', '<n> <unit>s ago', "
            "ISO-8601 or epoch seconds)") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _seconds_text(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"


def _get(path: str, params: Dict[str, str], timeout: Optional[float],
         configuration: Optional[Mapping[str, Any]], secrets: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    configuration = configuration or {}
    secrets = secrets or {}
    base_url = configuration.get("prometheus_base_url")
    if not base_url:
        raise ActivityFailed("Prometheus probe: configuration.prometheus_base_url is not set")
    url = f"{str(base_url).rstrip('/')}{path}"
    timeout = _timeout(timeout if timeout is not None else configuration.get("prometheus_timeout"))
    try:
        verify = tls_verify(configuration.get("prometheus_verify_tls", True),
                            configuration.get("prometheus_ca_bundle") or secrets.get("prometheus_ca_bundle"),
                            "configuration", "prometheus_")
        credentials = _credentials(secrets)
    except ConfigError as error:
        raise ActivityFailed(f"Prometheus probe: {error}") from None
    try:
        response = requests.get(url, params=params, timeout=(timeout, timeout), verify=verify, **credentials)
    except requests.Timeout:
        raise ActivityFailed(f"Prometheus query: no answer from {path} within {timeout:g} s") from None
    except (requests.RequestException, OSError) as error:
        raise ActivityFailed(f"Prometheus query: {path}: {request_problem(error)}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code >= 300 or not isinstance(payload, dict) or payload.get("status") != "success":
        detail = payload.get("error") if isinstance(payload, dict) and payload.get("error") else response.text
        raise ActivityFailed(f"Prometheus query failed: HTTP {response.status_code}: "
                             f"{shorten(detail, _ERROR_TEXT_LIMIT)}")
    return payload


def _timeout(value: Any) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ActivityFailed(f"Prometheus probe: timeout must be a number of seconds, got {value!r}") from None
    if seconds <= 0:
        raise ActivityFailed(f"Prometheus probe: timeout must be positive, got {value!r}")
    return seconds


def _credentials(secrets: Mapping[str, Any]) -> Dict[str, Any]:
    """requests' arguments for the secrets' token (Bearer) or user and password (Basic)."""
    token = secrets.get("prometheus_token")
    if token:
        return {"headers": {"Authorization": f"Bearer {as_credential(token, 'secrets.prometheus_token')}"}}
    username = secrets.get("prometheus_username")
    if username:
        password = secrets.get("prometheus_password")
        return {"auth": (as_credential(username, "secrets.prometheus_username"),
                         as_credential(password, "secrets.prometheus_password") if password else "")}
    return {}
