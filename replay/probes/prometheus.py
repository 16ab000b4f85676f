"""Prometheus query probes: `chaosprometheus.probes` (chaostoolkit-prometheus 0.6.0), same functions and arguments.

Moving an experiment from chaostoolkit-prometheus is a change of module only::

    "provider": {"type": "python", "module": "chaosreplay.probes.prometheus",
                 "func": "query", "arguments": {"query": "up", "when": "2 minutes ago"}}

As in the original: the base URL comes from `configuration.prometheus_base_url`
(default `http://localhost:9090`); `timeout` is Prometheus' own `timeout` query
parameter (seconds or a Prometheus duration such as "30s"); `verify_tls: false`
turns certificate verification off; the probes return Prometheus' JSON payload
as-is and raise `ActivityFailed` with the server's error; a time that cannot be
read fails with `failed to parse '<value>'`.

Unlike the original they never hang: the client gives up `TIMEOUT_MARGIN`
seconds after the `timeout` Prometheus was given, or after
`configuration.prometheus_timeout` (default `DEFAULT_TIMEOUT`) without one. They
take HTTP Basic (`prometheus_username`/`prometheus_password`) or Bearer
(`prometheus_token`) credentials from the activity's secrets, verify TLS against
`prometheus_ca_bundle` when given, and pick a step when none is given so that a
long range stays under Prometheus' limit of 11,000 points per series.

Times (what the original's parser, dateparser, accepted in practice):
- relative: "now", "today", "yesterday", "tomorrow", "2 minutes ago", "an hour
  ago", "1 hour 30 minutes ago", "1 month ago", "1 year ago", "in 5 minutes",
  "-5m", "-1h30m" (units: seconds, minutes, hours, days, weeks, months, years
  and their short forms s, sec, m, min, h, hr, d, w, mo, y);
- absolute, read by python-dateutil: ISO-8601, "19/09/2023 14:49",
  "Sep 19 2023 14:49", RFC 2822 ("Tue, 19 Sep 2023 14:49:00 +0200");
  a time without a zone is in the machine's local zone, as the original read it;
- Unix epoch seconds.
"""
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import requests
from chaoslib.exceptions import ActivityFailed
from dateutil.parser import parse as parse_date
from dateutil.relativedelta import relativedelta

from ..config import as_bool, as_credential
from ..errors import ConfigError
from ..sinks import shorten
from ..sinks.http import request_problem, tls_verify

__all__ = ["query", "query_interval", "compute_mean", "nodes_cpu_usage_mean", "parse_time", "parse_duration",
           "auto_step", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "TIMEOUT_MARGIN", "MAX_POINTS"]

# chaostoolkit-prometheus' default when the configuration names no server.
DEFAULT_BASE_URL = "http://localhost:9090"
DEFAULT_TIMEOUT = 10.0
# Prometheus stops evaluating at the `timeout` it is given and answers; the
# client waits that long plus this margin for the answer to arrive.
TIMEOUT_MARGIN = 2.0
# Prometheus refuses a range query of more than 11,000 points per series;
# the automatic step keeps a margin.
MAX_POINTS = 10_000
_ERROR_TEXT_LIMIT = 300

_UNITS = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
    "mo": "months", "month": "months", "months": "months",
    "y": "years", "yr": "years", "yrs": "years", "year": "years", "years": "years",
}
_DAY_WORDS = {"now": 0, "today": 0, "yesterday": -1, "tomorrow": 1}
# One part of a relative time: "30 minutes", "an hour", "1h" (in "1h30m").
_PART = re.compile(r"(\d+(?:\.\d+)?|(?:an?|one)(?=\s))\s*([a-z]+)\s*")
# Between parts: "1 hour and 30 minutes", "2 days, 3 hours".
_SEPARATORS = re.compile(r"\s*,\s*|\s+and\s+")
_EPOCH = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
# Prometheus' durations: "30s", "1m30s", "1.5" (seconds); ms, s, m, h, d, w, y.
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}


def query(query: str, when: Optional[str] = None, timeout: Optional[Union[float, str]] = None,
          verify_tls: Any = True, configuration: Optional[Mapping[str, Any]] = None,
          secrets: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Evaluate `query` at `when` (default: now) through `/api/v1/query`."""
    params = {"query": query}
    if when:
        params["time"] = _seconds_text(parse_time(when))
    return _get("/api/v1/query", params, timeout, verify_tls, configuration, secrets, "Prometheus query")


def query_interval(query: str, start: str, end: str, step: Optional[Union[int, float, str]] = None,
                   timeout: Optional[Union[float, str]] = None, verify_tls: Any = True,
                   configuration: Optional[Mapping[str, Any]] = None,
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
    return _get("/api/v1/query_range", params, timeout, verify_tls, configuration, secrets,
                "Prometheus query range")


def compute_mean(query: str, window: str = "1d", mean_type: str = "arithmetic",
                 configuration: Optional[Mapping[str, Any]] = None,
                 secrets: Optional[Mapping[str, Any]] = None) -> float:
    """The mean of every value of the range `query` over the last `window` (a duration such as "1d").

    chaostoolkit-prometheus 0.5's function of that name, with its arguments;
    `mean_type` "geometric" or "harmonic" for those means (the original
    computed the arithmetic mean for "harmonic").
    """
    import statistics

    means = {"arithmetic": statistics.fmean, "geometric": statistics.geometric_mean,
             "harmonic": statistics.harmonic_mean}
    if mean_type not in means:
        raise ActivityFailed(f"compute_mean: mean_type must be one of {', '.join(means)}, got {mean_type!r}")
    end_at = datetime.now(timezone.utc)
    start_at = end_at - timedelta(seconds=parse_duration(window, "window"))
    # The original's step: five points a minute over the window.
    step = max(1, math.ceil((end_at - start_at).total_seconds() / 300))
    payload = query_interval(query, _seconds_text(start_at), _seconds_text(end_at), step=step,
                             configuration=configuration, secrets=secrets)
    result = payload.get("data", {}).get("result") or []
    values = [float(value) for series in result[:1] for _, value in series.get("values", [])]
    if not values:
        raise ActivityFailed(f"compute_mean: the query returned no values over the last {window}")
    return means[mean_type](values)


def nodes_cpu_usage_mean(window: str = "1d", configuration: Optional[Mapping[str, Any]] = None,
                         secrets: Optional[Mapping[str, Any]] = None) -> float:
    """The mean CPU use of all nodes (percent) over `window`, from `node_cpu_seconds_total`."""
    return compute_mean('100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle"}[1m])))', window=window,
                        configuration=configuration, secrets=secrets)


def auto_step(start: datetime, end: datetime) -> int:
    """Seconds between points: 1 (the original default) until the range would exceed MAX_POINTS."""
    return max(1, math.ceil((end - start).total_seconds() / MAX_POINTS))


def parse_time(value: Any, now: Optional[datetime] = None) -> datetime:
    """A probe's time argument as an aware UTC datetime; ActivityFailed naming it if it is none of the forms."""
    now = now or datetime.now(timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if not isinstance(value, str) or not value.strip():
        raise _unreadable(value)
    text = " ".join(value.strip().lower().split())
    if text in _DAY_WORDS:
        return now + timedelta(days=_DAY_WORDS[text])
    relative = _relative(text)
    if relative is not None:
        return (now.astimezone() + relative).astimezone(timezone.utc)
    if _EPOCH.match(text):
        return datetime.fromtimestamp(float(text), timezone.utc)
    try:
        parsed = parse_date(value.strip())
    except (ValueError, OverflowError):  # dateutil's ParserError (2.8.1+) is a ValueError
        raise _unreadable(value) from None
    # Naive: the machine's local zone, as chaostoolkit-prometheus (dateparser) read it.
    return (parsed.astimezone() if parsed.tzinfo is None else parsed).astimezone(timezone.utc)


def _relative(text: str) -> Optional[relativedelta]:
    """`in <parts>`, `<parts> ago`, `-<parts>`, `+<parts>` as a signed offset; None if not that form."""
    if text.startswith("in "):
        sign, body = 1, text[3:]
    elif text.endswith(" ago"):
        sign, body = -1, text[:-4]
    elif text[:1] in "-+":
        sign, body = (-1 if text[0] == "-" else 1), text[1:]
    else:
        return None
    body = _SEPARATORS.sub(" ", body.strip())
    parts, position = [], 0
    while position < len(body):
        part = _PART.match(body, position)
        if part is None:
            return None
        parts.append(part.groups())
        position = part.end()
    if not parts:
        return None
    offset = relativedelta()
    for amount, unit in parts:
        if unit not in _UNITS:
            return None
        number = 1.0 if amount in ("a", "an", "one") else float(amount)
        name = _UNITS[unit]
        if name in ("months", "years"):
            if not number.is_integer():
                return None
            offset += relativedelta(**{name: int(number)})
        else:
            offset += relativedelta(seconds=number * {"seconds": 1, "minutes": 60, "hours": 3600,
                                                      "days": 86400, "weeks": 604800}[name])
    return offset if sign > 0 else -offset


def _unreadable(value: Any) -> ActivityFailed:
    """chaostoolkit-prometheus' words first (users match on them), then what we read."""
    return ActivityFailed(
        f"failed to parse '{value}' (Prometheus probe: cannot read time: expected 'now', '<n> <unit>s ago', "
        "'in <n> <unit>s', '-5m', a date such as '2023-09-19 14:49' or 'Sep 19 2023 14:49', or epoch seconds)")


def parse_duration(value: Any, what: str = "timeout") -> float:
    """Seconds from a number or a Prometheus duration ("30s", "1m30s", "1.5"); ActivityFailed otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and _EPOCH.match(value):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and _DURATION_PART.sub("", value.strip()) == "":
        seconds = sum(int(amount) * _DURATION_SECONDS[unit] for amount, unit in _DURATION_PART.findall(value))
    else:
        raise ActivityFailed(f"Prometheus probe: {what} must be seconds or a Prometheus duration "
                             f"such as '30s', got {value!r}")
    if seconds <= 0:
        raise ActivityFailed(f"Prometheus probe: {what} must be positive, got {value!r}")
    return seconds


def _seconds_text(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"


def _get(path: str, params: Dict[str, str], timeout: Any, verify_tls: Any,
         configuration: Optional[Mapping[str, Any]], secrets: Optional[Mapping[str, Any]],
         what: str) -> Dict[str, Any]:
    configuration = configuration or {}
    secrets = secrets or {}
    base_url = configuration.get("prometheus_base_url") or DEFAULT_BASE_URL
    url = f"{str(base_url).rstrip('/')}{path}"
    params, client_timeout = _timeouts(params, timeout, configuration)
    try:
        verify = tls_verify(configuration.get("prometheus_verify_tls", True),
                            configuration.get("prometheus_ca_bundle") or secrets.get("prometheus_ca_bundle"),
                            "configuration", "prometheus_")
        if not as_bool(verify_tls, "verify_tls"):
            verify = False
        credentials = _credentials(secrets)
    except ConfigError as error:
        raise ActivityFailed(f"Prometheus probe: {error}") from None
    try:
        response = requests.get(url, params=params, headers={"Accept": "application/json", **credentials["headers"]},
                                auth=credentials["auth"], timeout=(client_timeout, client_timeout), verify=verify)
    except requests.Timeout:
        raise ActivityFailed(f"{what} failed: no answer from {url} within {client_timeout:g} s") from None
    except (requests.RequestException, OSError) as error:
        raise ActivityFailed(f"{what} failed: {url}: {request_problem(error)}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code >= 300 or not isinstance(payload, dict) or payload.get("status") != "success":
        detail = payload.get("error") if isinstance(payload, dict) and payload.get("error") else response.text
        raise ActivityFailed(f"{what} failed: HTTP {response.status_code}: {shorten(detail, _ERROR_TEXT_LIMIT)}")
    return payload


def _timeouts(params: Dict[str, str], timeout: Any, configuration: Mapping[str, Any]) -> Tuple[Dict[str, str], float]:
    """The query's parameters with Prometheus' `timeout`, and how long the client waits."""
    if timeout is not None:
        seconds = parse_duration(timeout)
        return {**params, "timeout": str(timeout).strip()}, seconds + TIMEOUT_MARGIN
    configured = configuration.get("prometheus_timeout")
    if configured is None:
        return params, DEFAULT_TIMEOUT
    return params, parse_duration(configured, "configuration.prometheus_timeout")


def _credentials(secrets: Mapping[str, Any]) -> Dict[str, Any]:
    """requests' arguments for the secrets' token (Bearer) or user and password (Basic)."""
    token = secrets.get("prometheus_token")
    if token:
        return {"headers": {"Authorization": f"Bearer {as_credential(token, 'secrets.prometheus_token')}"},
                "auth": None}
    username = secrets.get("prometheus_username")
    if username:
        password = secrets.get("prometheus_password")
        return {"headers": {}, "auth": (as_credential(username, "secrets.prometheus_username"),
                                        as_credential(password, "secrets.prometheus_password") if password else "")}
    return {"headers": {}, "auth": None}
