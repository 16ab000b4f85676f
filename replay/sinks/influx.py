"""InfluxDB sink: a run's events as points, written in batches, idempotently.

Configuration (highest first): `--influx-*` flags, `INFLUX_*` environment
variables, the `influx` section of `--config`, then chaosdb's
`configuration.influxdb` (`host`, `port`, `http_endpoint`, `database`) and
`influxdb_*` secrets of the journal, so experiments written for
`chaosdb.influx` replay unchanged. Credentials come only from where the URL
came from: the command's (flags, environment, `--config`) for its URL, the
journal's (its live control's section, its `influxdb_*` secrets for chaosdb's
`configuration.influxdb`) for the journal's.

InfluxDB 1.x: `POST /write?db=&rp=&precision=ns`, user/password as HTTP Basic.
InfluxDB 2.x: `POST /api/v2/write?org=&bucket=&precision=ns`, `Authorization: Token`.
The line format is in `influx_line`.
"""
import operator
import zlib
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, ClassVar, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import click
import requests

from ..config import JOURNAL_CONFIGURATION, Secret, Settings, as_bool, as_credential, as_number, as_text
from ..delivery import CHAOSDB_DEFAULTS_KEY
from ..errors import ConfigError
from ..events import Run
from . import Delivery, Planned, PlannedRequest
from .batching import CrossRunBatches, RunOutcome
from .http import (Credentials, DaemonCall, Refused, Unreachable, answer_problem, base_url, request_with_retries,
                   server_error, tls_verify, unexpected_answer)
from .influx_line import (CHAOSDB_MEASUREMENT, DEFAULT_MEASUREMENT, EventLine, chaosdb_writes, iter_chaosdb_lines,
                          iter_lines, measurement_problem)

__all__ = ["OPTIONS", "InfluxConfig", "InfluxTarget", "targets", "influx_config"]

# chaosdb.influx's defaults, used only when the journal has `configuration.influxdb`.
CHAOSDB_DEFAULTS = {"host": "localhost", "port": 8086, "http_endpoint": "/write", "database": "gatlingdb"}
# What the points look like: ours (one point per event), or chaosdb.influx's (two per Python action).
OUR_LAYOUT = "chaostoolkit-replay"
CHAOSDB_LAYOUT = "chaosdb"
LAYOUTS = (OUR_LAYOUT, CHAOSDB_LAYOUT)
DEFAULT_BATCH_SIZE = 5000
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
# The keys of the `influx` section of `--config` (and of the live controls): a key read
# below must be listed here, or a section holding it is refused as a typo.
SECTION_KEYS = ("url", "database", "retention_policy", "username", "password", "token", "org", "bucket",
                "version", "measurement", "create_database", "gzip", "batch_size", "timeout", "retries",
                "ca_bundle", "verify_tls", "layout", CHAOSDB_DEFAULTS_KEY)
_REPORTED_REJECTIONS = 5
# What InfluxDB answers a write it stored (1.x and 2.x alike); any other 2xx
# comes from something else (a login page, a proxy) and stored nothing.
WRITE_STORED = (204,)

OPTIONS = [
    click.option("--influx-url", "influx_url", metavar="URL",
                 help="InfluxDB base URL, e.g. http://127.0.0.1:8086 [env INFLUX_URL]."),
    click.option("--influx-database", "influx_database", metavar="NAME",
                 help="InfluxDB 1.x database [env INFLUX_DATABASE]."),
    click.option("--influx-retention-policy", "influx_retention_policy", metavar="NAME",
                 help="InfluxDB 1.x retention policy (default: the database's default)."),
    click.option("--influx-username", "influx_username", metavar="NAME",
                 help="InfluxDB 1.x user; the password only from INFLUX_PASSWORD, --config or secrets."),
    click.option("--influx-org", "influx_org", metavar="ORG", help="InfluxDB 2.x organization."),
    click.option("--influx-bucket", "influx_bucket", metavar="BUCKET",
                 help="InfluxDB 2.x bucket; the token only from INFLUX_TOKEN, --config or secrets."),
    click.option("--influx-version", "influx_version", type=click.Choice(["1", "2"]),
                 help="InfluxDB API (default 1, or 2 when a bucket and a token are set)."),
    click.option("--influx-measurement", "influx_measurement", metavar="NAME",
                 help=f"Measurement of the points (default {DEFAULT_MEASUREMENT}; {CHAOSDB_MEASUREMENT} "
                      "with --influx-layout chaosdb)."),
    click.option("--influx-layout", "influx_layout", type=click.Choice(LAYOUTS),
                 help=f"Points as ours (default) or as chaosdb.influx wrote them [env INFLUX_LAYOUT]."),
    click.option("--influx-create-database/--no-influx-create-database", "influx_create_database",
                 default=None, help="CREATE DATABASE before writing (1.x; idempotent)."),
    click.option("--influx-gzip/--no-influx-gzip", "influx_gzip", default=None,
                 help="Compress request bodies."),
    click.option("--influx-batch-size", "influx_batch_size", type=int, metavar="LINES",
                 help=f"Lines per request (default {DEFAULT_BATCH_SIZE})."),
    click.option("--influx-timeout", "influx_timeout", type=float, metavar="SECONDS",
                 help=f"Seconds each attempt of a request may take, connect to last byte (default {DEFAULT_TIMEOUT:g})."),
    click.option("--influx-retries", "influx_retries", type=int, metavar="N",
                 help=f"Retries on 5xx, 429, timeouts and connection errors, backoff capped at 5 s (default {DEFAULT_RETRIES})."),
    click.option("--influx-ca-bundle", "influx_ca_bundle", type=click.Path(dir_okay=False),
                 help="CA bundle to verify the server's TLS certificate."),
    click.option("--influx-verify-tls/--influx-no-verify-tls", "influx_verify_tls", default=None,
                 help="Verify the server's TLS certificate (default: verify)."),
]


@dataclass(frozen=True)
class InfluxConfig(Credentials):
    """InfluxDB 1.x takes `username`/`password` (HTTP Basic), 2.x its `token`."""

    token_scheme: ClassVar[str] = "Token"
    url: str  # base URL, without credentials
    version: int = 1
    database: Optional[str] = None
    retention_policy: Optional[str] = None
    org: Optional[str] = None
    bucket: Optional[str] = None
    username: Optional[str] = None
    password: Optional[Secret] = None
    token: Optional[Secret] = None
    measurement: str = DEFAULT_MEASUREMENT
    layout: str = OUR_LAYOUT
    create_database: bool = False
    gzip: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    verify: Union[bool, str] = True  # requests' `verify`: a bool or a CA bundle path

    @property
    def label(self) -> str:
        where = f"db={self.database}" if self.version == 1 else f"org={self.org} bucket={self.bucket}"
        return f"influx{'' if self.version == 1 else '2'} {self.url} {where}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/write" if self.version == 1 else f"{self.url}/api/v2/write"

    @property
    def write_params(self) -> Dict[str, str]:
        if self.version == 1:
            params = {"db": self.database}
            if self.retention_policy:
                params["rp"] = self.retention_policy
        else:
            params = {"org": self.org, "bucket": self.bucket}
        params["precision"] = "ns"
        return params


def targets(settings: Settings) -> List["InfluxTarget"]:
    config = influx_config(settings)
    return [InfluxTarget(config)] if config else []


def influx_config(settings: Settings) -> Optional[InfluxConfig]:
    """The InfluxDB target configured in `settings`, None if there is none."""
    settings.check_section("influx", SECTION_KEYS)
    chaosdb = settings.configuration.get("influxdb")
    if not isinstance(chaosdb, dict):
        # chaosreplay.controls.influx declared as chaosdb.influx was, and no configuration.influxdb:
        # chaosdb wrote to its defaults (http://localhost:8086/write, database gatlingdb).
        chaosdb = {} if settings.pick(file=f"influx.{CHAOSDB_DEFAULTS_KEY}") else None

    def pick(name: str, default: Any = None, chaosdb_key: Optional[str] = None) -> Any:
        return settings.pick(cli=f"influx_{name}", env=f"INFLUX_{name.upper()}",
                             file=f"influx.{name}",
                             journal=f"influxdb.{chaosdb_key}" if chaosdb is not None and chaosdb_key else None,
                             default=default)

    url = pick("url")
    origin = settings.origin_of(cli="influx_url", env="INFLUX_URL", file="influx.url")
    from_journal = url is None and chaosdb is not None
    if from_journal:
        url = _chaosdb_url(chaosdb)
        origin = JOURNAL_CONFIGURATION
    if url is None:
        flags = settings.flags_given(key for key in settings.cli if key.startswith("influx_"))
        if flags:
            raise ConfigError("influx.url", f"{flags} given but no URL (--influx-url, INFLUX_URL or influx.url)")
        return None
    base = base_url(url, "influx.url")

    def credential(name: str) -> Any:
        """From where the URL came from only: the command's credentials never go to a server
        the journal names, the journal's never to one the command names."""
        value = settings.pick_from(origin, cli=f"influx_{name}", env=f"INFLUX_{name.upper()}",
                                   file=f"influx.{name}", journal=f"influxdb.{name}")
        if value is None and origin == JOURNAL_CONFIGURATION:
            value = settings.secret(f"influxdb_{name}")
        return value

    username = credential("username") or base.username
    password = credential("password") or base.password
    token = credential("token")
    bucket = pick("bucket")
    version = pick("version", default=2 if bucket and token else 1)
    if str(version) not in ("1", "2"):
        raise ConfigError("influx.version", f"expected 1 or 2, got {version!r}")
    version = int(version)
    # Each version sends only its own kind of credential.
    if version == 1:
        token = None
    else:
        username = password = None

    verify = tls_verify(pick("verify_tls", default=True), pick("ca_bundle"), "influx")
    layout = as_text(pick("layout", default=OUR_LAYOUT), "influx.layout")
    if layout not in LAYOUTS:
        raise ConfigError("influx.layout", f"expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    default_measurement = CHAOSDB_MEASUREMENT if layout == CHAOSDB_LAYOUT else DEFAULT_MEASUREMENT

    config = InfluxConfig(
        url=base.url,
        version=version,
        database=_optional_name(pick("database", default=CHAOSDB_DEFAULTS["database"] if chaosdb is not None else None,
                                     chaosdb_key="database"), "influx.database"),
        retention_policy=_optional_name(pick("retention_policy"), "influx.retention_policy"),
        org=_optional_name(pick("org"), "influx.org"),
        bucket=_optional_name(bucket, "influx.bucket"),
        username=as_credential(username, "influx.username") if username else None,
        password=Secret(as_credential(password, "influx.password")) if password else None,
        token=Secret(as_credential(token, "influx.token")) if token else None,
        measurement=as_text(pick("measurement", default=default_measurement), "influx.measurement"),
        layout=layout,
        create_database=as_bool(pick("create_database", default=False), "influx.create_database"),
        gzip=as_bool(pick("gzip", default=False), "influx.gzip"),
        batch_size=as_number(pick("batch_size", default=DEFAULT_BATCH_SIZE), "influx.batch_size", int, 1),
        timeout=as_number(pick("timeout", default=DEFAULT_TIMEOUT), "influx.timeout", float, 0, above=True),
        retries=as_number(pick("retries", default=DEFAULT_RETRIES), "influx.retries", int, 0),
        verify=verify,
    )
    _check(config)
    return config


def _optional_name(value: Any, key: str) -> Optional[str]:
    """A database, retention policy, org or bucket: a string (a list or a number is an error)."""
    return None if value is None else as_text(value, key, numbers=False)


def _chaosdb_url(chaosdb: Dict[str, Any]) -> str:
    """chaosdb.influx posted to http://host:port + http_endpoint (the /write path)."""
    host = as_text(chaosdb.get("host") or CHAOSDB_DEFAULTS["host"], "configuration.influxdb.host")
    port = as_text(chaosdb.get("port") or CHAOSDB_DEFAULTS["port"], "configuration.influxdb.port")
    endpoint = as_text(chaosdb.get("http_endpoint") or CHAOSDB_DEFAULTS["http_endpoint"],
                       "configuration.influxdb.http_endpoint").rstrip("/")
    if not endpoint.endswith("/write"):
        raise ConfigError("configuration.influxdb.http_endpoint", f"expected a path ending in /write, got {endpoint!r}")
    base = host if "://" in host else f"http://{host}"
    return f"{base}:{port}{endpoint[: -len('/write')]}"


def _check(config: InfluxConfig) -> None:
    problem = measurement_problem(config.measurement)
    if problem:
        raise ConfigError("influx.measurement", problem)
    if config.version == 1 and not config.database:
        raise ConfigError("influx.database", "required for InfluxDB 1.x (--influx-database or INFLUX_DATABASE)")
    if config.version == 2:
        for key, value in (("org", config.org), ("bucket", config.bucket), ("token", config.token)):
            if not value:
                raise ConfigError(f"influx.{key}", "required for InfluxDB 2.x")
        if config.create_database:
            raise ConfigError("influx.create_database", "InfluxDB 1.x only: create 2.x buckets in InfluxDB")


class InfluxTarget:
    """Writes runs to one InfluxDB; `send` may be called repeatedly (live) and is idempotent."""

    def __init__(self, config: InfluxConfig, session: Optional[requests.Session] = None):
        self.config = config
        self.label = config.label
        self.session = session or requests.Session()
        # Batches shared by the runs given to `submit` (a back-fill of many runs).
        self._batches: Optional[CrossRunBatches] = None
        self._database_created = False

    # -- what would be sent -------------------------------------------------------------

    def plan(self, run: Run) -> List[PlannedRequest]:
        return self.planned(run).whole()

    def planned(self, run: Run) -> Planned:
        masked = self._headers(masked=True)
        first = []
        if self.config.create_database:
            first.append(PlannedRequest("POST", f"{self.config.url}/query",
                                        {k: v for k, v in masked.items() if k == "Authorization"},
                                        {"q": self._create_database_statement()}))
        # The lines are made twice, counted then batched: the count is shown before the
        # requests, and the lines of 10^6 events are never all held.
        lines = sum(1 for _ in self._lines(run))
        batches = -(-lines // self.config.batch_size)

        def requests_() -> Iterator[PlannedRequest]:
            yield from first
            url = self._write_url_with_params()
            for batch in _chunks(self._lines(run), self.config.batch_size):
                yield PlannedRequest("POST", url, masked, "\n".join(line.line for line in batch))

        return Planned(len(first) + batches, requests_())

    def _lines(self, run: Run) -> Iterator[EventLine]:
        if self.config.layout == CHAOSDB_LAYOUT:
            return iter_chaosdb_lines(run, self.config.measurement)
        return iter_lines(run, self.config.measurement)

    def _write_url_with_params(self) -> str:
        request = requests.Request("POST", self.config.write_url, params=self.config.write_params).prepare()
        return request.url

    # -- sending --------------------------------------------------------------------------

    def send(self, run: Run) -> Delivery:
        delivered: List[str] = []
        rejected: List[Tuple[int, EventLine, str]] = []
        error: Optional[Unreachable] = None
        try:
            self._ensure_database()
            error = self._write_all(run, delivered, rejected)
        except Unreachable as unreachable:
            error = unreachable
        return self._delivery(run, delivered, rejected, error)

    def submit(self, run: Run, done: Callable[[Delivery], None]) -> None:
        """Queue `run` behind the runs submitted before: their lines share batches of
        `batch_size` lines. `done(delivery)` is called once every line of the run is
        written or failed; `flush` writes what waits for a full batch."""
        if self._batches is None:
            # What a run's outcome keeps of its lines stored: their events' ids, not the lines.
            self._batches = CrossRunBatches(self.config.batch_size, self._write_lines, "influx-write",
                                            keep=_event_id_of)

        def finished(outcome: RunOutcome) -> None:
            done(self._delivery(outcome.run, outcome.stored, outcome.rejected, outcome.error))

        try:
            self._ensure_database()
        except Unreachable as unreachable:
            self._batches.fail_run(run, unreachable, finished)
            return
        self._batches.add(run, self._lines(run), finished)

    def flush(self) -> None:
        if self._batches is not None:
            self._batches.flush()

    def _write_lines(self, lines: List[EventLine]) -> Tuple[List[EventLine], List[Tuple[int, str]]]:
        stored, rejected = self._write(lines, 0)
        return stored, [(number - 1, reason) for number, _, reason in rejected]

    def _delivery(self, run: Run, delivered: List[str], rejected: List[Tuple[int, EventLine, str]],
                  error: Optional[Unreachable]) -> Delivery:
        """The run's delivery: `delivered` event ids, `rejected` (line number in the run, line,
        reason), the error that stopped the writes."""
        refused = isinstance(error, Refused)
        error_text = str(error) if error else None
        # Events the layout writes no point for (chaosdb's: all but Python actions) are done.
        unwritten = [] if self.config.layout != CHAOSDB_LAYOUT else \
            [event.id for event in run.events if not chaosdb_writes(event)]
        total = len(run.events) - len(unwritten)
        if self.config.layout != CHAOSDB_LAYOUT and not rejected and len(delivered) == total:
            not_sent = []  # a point per event, and each one stored
        else:
            accounted = set(delivered) | set(unwritten) | {line.event_id for _, line, _ in rejected}
            not_sent = [event.id for event in run.events if event.id not in accounted]
        failed = [line.event_id for _, line, _ in rejected] + not_sent
        notes = [f"line {number} (event {line.event_id}) rejected: {reason}"
                 for number, line, reason in rejected[:_REPORTED_REJECTIONS]]
        if len(rejected) > _REPORTED_REJECTIONS:
            notes.append(f"... and {len(rejected) - _REPORTED_REJECTIONS} more rejected line(s)")
        if rejected and not error_text:
            error_text = (f"partial write: {len(delivered)} of {total} point(s) stored, "
                          f"{len(rejected)} rejected (first: line {rejected[0][0]}: {rejected[0][2]})")
        elif error_text and delivered:
            error_text = f"{error_text} ({len(delivered)} of {total} point(s) stored before)"
        done = tuple(dict.fromkeys(unwritten + delivered))
        return Delivery(self.label, done, tuple(failed), error_text, tuple(notes), refused)

    def _write_all(self, run: Run, delivered: List[str], rejected: list) -> Optional[Unreachable]:
        """Write every batch; the next batch is serialized while the previous one is on the wire.

        Returns the error that stopped the writes, if any.
        """
        error = None
        # The next batch is serialized while the previous one is on the wire,
        # in a daemon thread: a write stuck on a dripping server never keeps the
        # process alive after a live run's drain deadline.
        in_flight: Deque[DaemonCall] = deque()
        position = 0
        previous: Optional[DaemonCall] = None
        for batch in _chunks(self._lines(run), self.config.batch_size):
            previous = DaemonCall(self._write_after, previous, batch, position)
            in_flight.append(previous)
            position += len(batch)
            if len(in_flight) > 1:
                error = _collect(in_flight.popleft(), delivered, rejected)
                if error:
                    break
        while in_flight:
            error = _collect(in_flight.popleft(), delivered, rejected) or error
        return error

    def _write_after(self, previous: Optional[DaemonCall], batch: Sequence[EventLine], first: int):
        """`_write` once the previous batch is done: one write on the wire at a time."""
        if previous is not None:
            previous.wait()
        return self._write(batch, first)

    def close(self) -> None:
        if self._batches is not None:
            self._batches.close()
        self.session.close()

    def _headers(self, masked: bool = False) -> Dict[str, str]:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.config.gzip:
            headers["Content-Encoding"] = "gzip"
        return {**headers, **self.config.auth_headers(masked)}

    def _create_database_statement(self) -> str:
        name = self.config.database.replace("\\", "\\\\").replace('"', '\\"')
        return f'CREATE DATABASE "{name}"'

    def _ensure_database(self) -> None:
        if not self.config.create_database or self._database_created:
            return
        response = self._request(f"{self.config.url}/query", data={"q": self._create_database_statement()},
                                 headers={}, what="CREATE DATABASE")
        problem = unexpected_answer(f"CREATE DATABASE {self.config.database!r}", response, (200,))
        if problem:
            raise problem
        try:
            results = response.json().get("results") or [{}]
        except ValueError:
            results = [{}]
        if results[0].get("error"):
            raise Unreachable(f"CREATE DATABASE {self.config.database!r}: {results[0]['error']}")
        self._database_created = True

    def _write(self, batch: Sequence[EventLine], first: int) -> Tuple[List[EventLine], List[Tuple[int, EventLine, str]]]:
        """Write a batch; on a 400 or 413 split it in halves to find the lines at fault.

        Re-sending is safe: InfluxDB overwrites identical points, and keeps the
        valid lines of a partial write (FACTS §5), so halves only make the
        report exact. Returns (stored lines, [(line number, line, reason)]).
        """
        body = "\n".join(line.line for line in batch).encode("utf-8")
        if self.config.gzip:
            # zlib's own gzip framing (mtime 0): the same lines give the same bytes on every
            # Python, so recorded cassettes match; gzip.compress writes another OS byte from
            # Python 3.13 on, and other deflate bytes on 3.9.
            compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
            body = compressor.compress(body) + compressor.flush()
        response = self._request(self.config.write_url, params=self.config.write_params, data=body,
                                 headers=self._headers(), what="write")
        if response.status_code in WRITE_STORED:
            return list(batch), []
        if response.status_code in (400, 413, 422):
            if len(batch) == 1:
                return [], [(first + 1, batch[0], server_error(response))]
            middle = len(batch) // 2
            stored_left, rejected_left = self._write(batch[:middle], first)
            stored_right, rejected_right = self._write(batch[middle:], first + middle)
            return stored_left + stored_right, rejected_left + rejected_right
        if 200 <= response.status_code < 300:
            raise unexpected_answer("write", response, WRITE_STORED)
        raise answer_problem("write", response, _hint(response))

    def _request(self, url: str, what: str, headers: Dict[str, str], **kwargs) -> requests.Response:
        """A POST, retried on connection errors and 5xx."""
        return request_with_retries(self.session, "POST", url, what, label=self.label,
                                    retries=self.config.retries, timeout=self.config.timeout,
                                    headers=headers, auth=self.config.basic_auth, verify=self.config.verify, **kwargs)


_event_id_of = operator.attrgetter("event_id")


def _chunks(lines: Iterator[EventLine], size: int) -> Iterator[List[EventLine]]:
    while True:
        chunk = list(islice(lines, size))
        if not chunk:
            return
        yield chunk


def _collect(future: DaemonCall, delivered: List[str], rejected: list) -> Optional[Unreachable]:
    """Account for one batch's outcome; the error if the server could not be written to."""
    try:
        stored, refused = future.result()
    except Unreachable as unreachable:
        return unreachable
    delivered.extend(line.event_id for line in stored)
    rejected.extend(refused)
    return None


def _hint(response: requests.Response) -> str:
    if response.status_code == 404 and "database not found" in response.text:
        return " (use --influx-create-database)"
    return ""
