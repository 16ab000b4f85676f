"""Grafana sink: a run's events as annotations on one or many Grafana servers, never twice.

Grafana never de-duplicates: every POST creates an annotation (FACTS §7). So
before sending a run a target asks what that run already has on the server,
once per run: `GET /api/annotations` with the run's time range and the tags
`chaostoolkit` and `run-<run id>`, paged. Each annotation found carries an
`event-<event id>` tag, which maps it to its event; then only the missing
annotations are created (POST) and those that changed are patched (PATCH).
The map event id -> annotation id is kept per target, so the live control,
which calls `send` again and again with slices of a run (an activity first
open, later ended), patches the annotation it created instead of adding one.

Servers, highest precedence first: `--grafana-url` (repeatable), else
`GRAFANA_URL`, else the servers of the `grafana` section of `--config` (a list,
or one object), else the servers of the journal's live controls, else chaosdb's
`configuration.grafana` list in the journal
(`host`, `port`, `protocol`, `api_token`, `cert_file`, `username`,
`password`, `dashboardId`, `only_actions`, `tags`, `annotation_api_endpoint`).
For each server a value comes from the `--grafana-*` flag, else the server's
own entry, else a `grafana` entry of `--config` without a URL (settings for
every server), else the `GRAFANA_*` environment variable, else the journal's
`grafana_*` secrets. Credentials (token, user, password) come only from where
the server came from: the command's flags, `--config` and environment for the
servers the command names; the journal's entries (a live control's, chaosdb's)
and, for `configuration.grafana`, its secrets for the servers the journal
names. TLS is verified unless `verify_tls` is false.

The annotation format is in `grafana_annotations`.
"""
import itertools
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import click
import requests
import requests.adapters

from ..config import (COMMAND, JOURNAL_CONFIGURATION, JOURNAL_CONTROLS, Secret, Settings, as_bool, as_credential,
                      as_number, as_text, refuse_env_reference)
from ..errors import ConfigError
from ..events import Run
from . import Delivery, Planned, PlannedRequest, shorten
from .grafana_annotations import (CHAOSTOOLKIT_TAG, Annotation, event_tag, iter_run_annotations, run_annotations,
                                  run_tag)
from .http import (Ambiguous, Credentials, Refused, Unreachable, answer_problem, base_url, request_with_retries,
                   status_text, tls_verify, unexpected_answer)

__all__ = ["OPTIONS", "GrafanaConfig", "GrafanaTarget", "targets", "grafana_configs"]

logger = logging.getLogger("chaostoolkit_replay.grafana")

ANNOTATIONS_PATH = "/api/annotations"
DASHBOARDS_DB_PATH = "/api/dashboards/db"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
# Annotations asked for per GET while looking a run up (Grafana's default is 100).
DEFAULT_PAGE_SIZE = 500
# Pages one look-up reads at most (100,000 annotations at the default page size,
# far beyond any run): a server answering full pages forever is an error, not a loop.
MAX_LOOKUP_PAGES = 200
# Requests in flight at once to one server when many runs are sent (`send_runs`):
# enough to hide a hosted Grafana's round trip, few enough not to flood it.
DEFAULT_CONCURRENCY = 8
# Runs whose annotations lie further apart than this are looked up separately:
# one ranged look-up over the gap would page through whatever else it holds.
LOOKUP_GAP_MS = 24 * 3600 * 1000
CHAOSDB_DEFAULTS = {"host": "localhost", "port": 3000, "protocol": "http"}
_REPORTED_REJECTIONS = 5

OPTIONS = [
    click.option("--grafana-url", "grafana_url", multiple=True, metavar="URL",
                 help="Grafana base URL, e.g. http://127.0.0.1:3000 (repeatable: several servers) "
                      "[env GRAFANA_URL]."),
    click.option("--grafana-token", "grafana_token", metavar="TOKEN",
                 help="Service account token (prefer env GRAFANA_TOKEN: a flag shows in `ps`)."),
    click.option("--grafana-username", "grafana_username", metavar="NAME",
                 help="Basic auth user; the password only from GRAFANA_PASSWORD, --config or secrets."),
    click.option("--grafana-org-id", "grafana_org_id", type=int, metavar="ID",
                 help="Organization (X-Grafana-Org-Id) [env GRAFANA_ORG_ID]."),
    click.option("--grafana-dashboard-uid", "grafana_dashboard_uid", metavar="UID",
                 help="Dashboard the annotations belong to (default: organization-wide) "
                      "[env GRAFANA_DASHBOARD_UID]."),
    click.option("--grafana-dashboard-id", "grafana_dashboard_id", type=int, metavar="ID",
                 help="Deprecated by Grafana: dashboard numeric id; prefer --grafana-dashboard-uid."),
    click.option("--grafana-panel-id", "grafana_panel_id", type=int, metavar="ID",
                 help="Panel the annotations belong to (with a dashboard)."),
    click.option("--grafana-tag", "grafana_tags", multiple=True, metavar="TAG",
                 help="Extra tag on every annotation (repeatable)."),
    click.option("--grafana-ca-bundle", "grafana_ca_bundle", type=click.Path(dir_okay=False),
                 help="CA bundle to verify the server's TLS certificate."),
    click.option("--grafana-client-cert", "grafana_client_cert", type=click.Path(dir_okay=False),
                 help="Client certificate (PEM; with its key unless --grafana-client-key)."),
    click.option("--grafana-client-key", "grafana_client_key", type=click.Path(dir_okay=False),
                 help="Private key of the client certificate."),
    click.option("--grafana-verify-tls/--grafana-no-verify-tls", "grafana_verify_tls", default=None,
                 help="Verify the server's TLS certificate (default: verify)."),
    click.option("--grafana-timeout", "grafana_timeout", type=float, metavar="SECONDS",
                 help=f"Seconds each attempt of a request may take, connect to last byte (default {DEFAULT_TIMEOUT:g})."),
    click.option("--grafana-retries", "grafana_retries", type=int, metavar="N",
                 help=f"Retries on 5xx, 429, timeouts and connection errors, backoff capped at 5 s (default {DEFAULT_RETRIES})."),
    click.option("--grafana-concurrency", "grafana_concurrency", type=int, metavar="N",
                 help=f"Requests in flight at once per server while back-filling many runs "
                      f"(default {DEFAULT_CONCURRENCY})."),
    click.option("--grafana-dashboard", "grafana_dashboard", type=click.Choice(["influx", "prometheus"]),
                 help="Also save the ready dashboard for the InfluxDB layout or the Prometheus metrics on each "
                      "Grafana (POST /api/dashboards/db, replacing the one of the same uid)."),
]

# Keys of a server entry: our names, then the aliases chaosdb (or Grafana's JSON) used.
_KEYS = {
    "url": (), "token": ("api_token",), "username": (), "password": (), "org_id": ("orgId",),
    "dashboard_uid": ("dashboardUID",), "dashboard_id": ("dashboardId",), "panel_id": ("panelId",),
    "tags": (), "only_actions": (), "ca_bundle": ("cert_file",), "client_cert": (), "client_key": (),
    "verify_tls": (), "timeout": (), "retries": (), "annotations_path": ("annotation_api_endpoint",),
    "concurrency": (),
}
_CHAOSDB_URL_KEYS = ("host", "port", "protocol")
_CLI_KEYS = {"token": "grafana_token", "username": "grafana_username", "org_id": "grafana_org_id",
             "dashboard_uid": "grafana_dashboard_uid", "dashboard_id": "grafana_dashboard_id",
             "panel_id": "grafana_panel_id", "tags": "grafana_tags", "ca_bundle": "grafana_ca_bundle",
             "client_cert": "grafana_client_cert", "client_key": "grafana_client_key",
             "verify_tls": "grafana_verify_tls", "timeout": "grafana_timeout", "retries": "grafana_retries",
             "concurrency": "grafana_concurrency"}
_ENV_KEYS = {"token": "GRAFANA_TOKEN", "username": "GRAFANA_USERNAME", "password": "GRAFANA_PASSWORD",
             "org_id": "GRAFANA_ORG_ID", "dashboard_uid": "GRAFANA_DASHBOARD_UID",
             "panel_id": "GRAFANA_PANEL_ID", "ca_bundle": "GRAFANA_CA_BUNDLE",
             "verify_tls": "GRAFANA_VERIFY_TLS"}
_SECRET_KEYS = {"token": "grafana_token", "username": "grafana_username", "password": "grafana_password"}


@dataclass(frozen=True)
class GrafanaConfig(Credentials):
    url: str  # base URL, without credentials
    token: Optional[Secret] = None
    username: Optional[str] = None
    password: Optional[Secret] = None
    org_id: Optional[int] = None
    dashboard_uid: Optional[str] = None
    dashboard_id: Optional[int] = None
    panel_id: Optional[int] = None
    tags: Tuple[str, ...] = ()
    only_actions: bool = False
    verify: Union[bool, str] = True  # requests' `verify`: a bool or a CA bundle path
    client_cert: Union[None, str, Tuple[str, str]] = None  # requests' `cert`
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    annotations_path: str = ANNOTATIONS_PATH
    page_size: int = DEFAULT_PAGE_SIZE
    concurrency: int = DEFAULT_CONCURRENCY

    @property
    def label(self) -> str:
        where = [f"org={self.org_id}"] if self.org_id is not None else []
        if self.dashboard_uid:
            where.append(f"dashboard={self.dashboard_uid}")
        elif self.dashboard_id:
            where.append(f"dashboard-id={self.dashboard_id}")
        return " ".join(["grafana", self.url, *where])

    @property
    def annotations_url(self) -> str:
        return self.url + self.annotations_path

    @property
    def placement(self) -> Dict[str, Any]:
        """Where annotations go: a dashboard (and panel), or the whole organization."""
        placement: Dict[str, Any] = {}
        if self.dashboard_uid:
            placement["dashboardUID"] = self.dashboard_uid
        elif self.dashboard_id:
            placement["dashboardId"] = self.dashboard_id
        if self.panel_id:
            placement["panelId"] = self.panel_id
        return placement


def targets(settings: Settings) -> List["GrafanaTarget"]:
    return [GrafanaTarget(config) for config in grafana_configs(settings)]


def grafana_configs(settings: Settings) -> List[GrafanaConfig]:
    """Every Grafana server configured in `settings` (see the module's docstring)."""
    file_entries = _entries(settings.file.get("grafana"), "grafana")
    control_entries = _entries(settings.controls.get("grafana"), "controls.grafana")
    for key, entry in file_entries + control_entries:
        _reject_unknown_keys(entry, key)
    # Entries without a server hold settings for every server of their origin.
    shared = {COMMAND: _shared(file_entries), JOURNAL_CONTROLS: _shared(control_entries)}
    shared[JOURNAL_CONFIGURATION] = shared[JOURNAL_CONTROLS]

    cli_urls = settings.cli.get("grafana_url") or ()
    if isinstance(cli_urls, str):
        cli_urls = (cli_urls,)
    file_servers = [(key, entry) for key, entry in file_entries if _has_server(entry)]
    control_servers = [(key, entry) for key, entry in control_entries if _has_server(entry)]
    if cli_urls:
        origin, servers = COMMAND, [(f"--grafana-url #{i + 1}", {"url": url}) for i, url in enumerate(cli_urls)]
    elif settings.env.get("GRAFANA_URL"):
        origin, servers = COMMAND, [("GRAFANA_URL", {"url": settings.env["GRAFANA_URL"]})]
    elif file_servers:
        origin, servers = COMMAND, file_servers
    elif control_servers:
        origin, servers = JOURNAL_CONTROLS, control_servers
    else:
        origin = JOURNAL_CONFIGURATION
        servers = [entry for entry in _entries(settings.configuration.get("grafana"), "configuration.grafana")
                   if _has_server(entry[1])]
    if not servers:
        flags = settings.flags_given(key for key in settings.cli if key.startswith("grafana_"))
        if flags:
            raise ConfigError("grafana.url", f"{flags} given but no server (--grafana-url, GRAFANA_URL or grafana[].url)")
        return []
    configs = [_server_config(settings, key, entry, shared, origin) for key, entry in servers]
    return [_with_journal_tags(config, settings) for config in configs]


def _shared(entries: List[Tuple[str, Dict[str, Any]]]) -> Dict[str, Any]:
    shared: Dict[str, Any] = {}
    for _, entry in entries:
        if not _has_server(entry):
            shared.update(entry)
    return shared


def _with_journal_tags(config: GrafanaConfig, settings: Settings) -> GrafanaConfig:
    """Keep the tags the journal's `configuration.grafana` gave the run's annotations (chaosdb's
    `tags`, also what its live control sent): replaying with flags must not PATCH them away.
    With several servers configured there, only the entry of this server counts."""
    try:
        entries = [entry for _, entry in _entries(settings.configuration.get("grafana"), "configuration.grafana")]
    except ConfigError:
        return config  # not a Grafana section this replay uses: nothing configured for this server
    if len(entries) > 1:
        entries = [entry for entry in entries if _configured_url(entry) == config.url]
    journal_tags = [tag for entry in entries for tag in _tag_list(entry.get("tags"))]
    if not journal_tags:
        return config
    return replace(config, tags=tuple(dict.fromkeys([*journal_tags, *config.tags])))


def _configured_url(entry: Mapping[str, Any]) -> Optional[str]:
    try:
        return base_url(entry["url"] if entry.get("url") else _chaosdb_url(entry, "grafana"), "grafana.url").url
    except ConfigError:
        return None


def _tag_list(tags: Any) -> List[str]:
    if isinstance(tags, str):
        return [tags]
    if not isinstance(tags, (list, tuple)):
        return []
    for index, tag in enumerate(tags):
        refuse_env_reference(tag, f"configuration.grafana.tags[{index}]")
    return [tag for tag in tags if isinstance(tag, str)]


def _entries(section: Any, key: str) -> List[Tuple[str, Dict[str, Any]]]:
    if section is None:
        return []
    if isinstance(section, dict):
        return [(key, section)]
    if not isinstance(section, list):
        raise ConfigError(key, f"expected a list of servers, got {type(section).__name__}")
    entries = []
    for index, entry in enumerate(section):
        if not isinstance(entry, dict):
            raise ConfigError(f"{key}[{index}]", f"expected an object, got {type(entry).__name__}")
        entries.append((f"{key}[{index}]", entry))
    return entries


def _has_server(entry: Mapping[str, Any]) -> bool:
    return bool(entry.get("url") or entry.get("host"))


def _reject_unknown_keys(entry: Mapping[str, Any], key: str) -> None:
    known = set(_KEYS) | set(_CHAOSDB_URL_KEYS) | {alias for aliases in _KEYS.values() for alias in aliases}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", "unknown key (known: " + ", ".join(sorted(_KEYS)) + ")")


def _server_config(settings: Settings, key: str, entry: Mapping[str, Any], shared: Mapping[str, Mapping[str, Any]],
                   origin: str) -> GrafanaConfig:
    """One server's configuration. Its credentials come only from where its URL came from: a
    server the command names gets the command's (flags, entry, `--config`, environment), one the
    journal names gets the journal's (its entry, the journal's entries without a server, and
    for `configuration.grafana` the `grafana_*` secrets)."""
    from_command = origin == COMMAND

    def value(name: str, default: Any = None) -> Any:
        credential = name in _SECRET_KEYS
        cli = _CLI_KEYS.get(name)
        if cli and (from_command or not credential) and settings.cli.get(cli) not in (None, (), []):
            return settings.cli[cli]
        sources = [entry, shared[COMMAND] if from_command or not credential else {}]
        if not from_command:
            sources.append(shared[origin])
        for source in sources:
            for alias in (name, *_KEYS[name]):
                if source.get(alias) is not None:
                    return source[alias]
        env = _ENV_KEYS.get(name)
        if env and (from_command or not credential) and settings.env.get(env) not in (None, ""):
            return settings.env[env]
        if origin == JOURNAL_CONFIGURATION and credential and settings.secret(_SECRET_KEYS[name]) is not None:
            return settings.secret(_SECRET_KEYS[name])
        return default

    base = base_url(entry["url"] if entry.get("url") else _chaosdb_url(entry, key), f"{key}.url")
    username = value("username") or base.username
    password = value("password") or base.password
    token = value("token")

    verify = tls_verify(value("verify_tls", True), value("ca_bundle"), key)
    client_cert = value("client_cert")
    client_key = value("client_key")
    cert: Union[None, str, Tuple[str, str]] = None
    if isinstance(client_cert, (list, tuple)) and len(client_cert) == 2:
        cert = (as_text(client_cert[0], f"{key}.client_cert"), as_text(client_cert[1], f"{key}.client_cert"))
    elif client_cert:
        cert = as_text(client_cert, f"{key}.client_cert")
        if client_key:
            cert = (cert, as_text(client_key, f"{key}.client_key"))

    tags = value("tags", ())
    if isinstance(tags, str):
        tags = (tags,)
    if not isinstance(tags, (list, tuple)):
        raise ConfigError(f"{key}.tags", "expected a list of strings")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str):
            as_text(tag, f"{key}.tags[{index}]")  # names an environment reference
            raise ConfigError(f"{key}.tags", "expected a list of strings")
    path = as_text(value("annotations_path", ANNOTATIONS_PATH), f"{key}.annotations_path")
    dashboard_uid = value("dashboard_uid")
    return GrafanaConfig(
        url=base.url,
        token=Secret(as_credential(token, f"{key}.token")) if token else None,
        username=as_credential(username, f"{key}.username") if username else None,
        password=Secret(as_credential(password, f"{key}.password")) if password else None,
        org_id=_optional_int(value("org_id"), f"{key}.org_id"),
        dashboard_uid=as_text(dashboard_uid, f"{key}.dashboard_uid") if dashboard_uid else None,
        # chaosdb: dashboardId 0 meant every dashboard, as no id does.
        dashboard_id=_optional_int(value("dashboard_id"), f"{key}.dashboard_id") or None,
        panel_id=_optional_int(value("panel_id"), f"{key}.panel_id") or None,
        tags=tuple(tags),
        only_actions=as_bool(value("only_actions", False), f"{key}.only_actions"),
        verify=verify,
        client_cert=cert,
        timeout=as_number(value("timeout", DEFAULT_TIMEOUT), f"{key}.timeout", float, 0, above=True),
        retries=as_number(value("retries", DEFAULT_RETRIES), f"{key}.retries", int, 0),
        annotations_path="/" + path.strip("/"),
        concurrency=as_number(value("concurrency", DEFAULT_CONCURRENCY), f"{key}.concurrency", int, 1),
    )


def _chaosdb_url(entry: Mapping[str, Any], key: str) -> str:
    """chaosdb.grafana posted to protocol://host:port + annotation_api_endpoint."""
    host = as_text(entry.get("host") or CHAOSDB_DEFAULTS["host"], f"{key}.host")
    port = as_number(entry.get("port") or CHAOSDB_DEFAULTS["port"], f"{key}.port", int, 1)
    protocol = as_text(entry.get("protocol") or CHAOSDB_DEFAULTS["protocol"], f"{key}.protocol").lower()
    if protocol not in ("http", "https"):
        raise ConfigError(f"{key}.protocol", f"expected http or https, got {protocol!r}")
    return f"{protocol}://{host}:{port}"


def _optional_int(value: Any, key: str) -> Optional[int]:
    return None if value is None or value == "" else as_number(value, key, int, 0)


class _Stored(NamedTuple):
    """An annotation as the server has it."""

    id: int
    time: int
    time_end: int
    text: str
    tags: frozenset


class _Rejected(Exception):
    """The server rejected one annotation (a 4xx other than refused credentials); the others may pass."""


def _rejection(what: str, response: requests.Response) -> Exception:
    """Refused credentials stop the whole run; any other 4xx only this annotation."""
    if response.status_code in (401, 403):
        return answer_problem(what, response)
    return _Rejected(f"{what}: {status_text(response)}")


class GrafanaTarget:
    """Annotations of runs on one Grafana server; `send` may be called repeatedly and never duplicates."""

    # Live delivery sends an activity when it starts (a point, visible while a
    # long action runs) and again when it ends (PATCHed into a region): the
    # annotation is addressed by its event tag, so no stale copy is left.
    ships_open_events = True

    def __init__(self, config: GrafanaConfig, session: Optional[requests.Session] = None):
        self.config = config
        self.label = config.label
        self.session = session or requests.Session()
        # Connections for the requests `send_runs` has in flight at once.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(10, config.concurrency))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # run id -> event tag -> what the server has; filled by one look-up per run
        # (or per window of runs, `send_runs`).
        self._stored: Dict[str, Dict[str, _Stored]] = {}
        self._lock = threading.Lock()
        self._senders: Optional[ThreadPoolExecutor] = None

    # -- what would be sent -------------------------------------------------------------

    def plan(self, run: Run) -> List[PlannedRequest]:
        return self.planned(run).whole()

    def planned(self, run: Run) -> Planned:
        """The look-up, then one POST per annotation (a send POSTs only the missing ones
        and PATCHes those that changed)."""
        # The annotations are made twice, counted then shown: the count and the look-up's
        # span come first, and the annotations of 10^6 events are never all held.
        count, earliest, latest = 0, None, None
        for annotation in self._iter_annotations(run):
            count += 1
            if earliest is None or annotation.time < earliest.time:
                earliest = annotation
            if latest is None or annotation.time_end > latest.time_end:
                latest = annotation
        if not count:
            return Planned(0, ())
        headers = self._headers(masked=True)
        # The look-up spans the annotations: these two bound them.
        lookup = requests.Request("GET", self.config.annotations_url,
                                  params=_lookup_params(run.run_id, [earliest, latest], self.config.page_size,
                                                       self.config.placement)).prepare()
        first = PlannedRequest("GET", lookup.url, {k: v for k, v in headers.items() if k != "Content-Type"})
        posts = (PlannedRequest("POST", self.config.annotations_url, headers, self._post_body(annotation))
                 for annotation in self._iter_annotations(run))
        return Planned(1 + count, itertools.chain([first], posts))

    def plan_dashboard(self, body: Mapping[str, Any]) -> PlannedRequest:
        """The `POST /api/dashboards/db` that saves a dashboard (credentials masked)."""
        return PlannedRequest("POST", self.config.url + DASHBOARDS_DB_PATH, self._headers(masked=True), dict(body))

    def save_dashboard(self, body: Mapping[str, Any]) -> dict:
        """Create or overwrite a dashboard (`POST /api/dashboards/db`) with this target's
        credentials, TLS and retries; Grafana's answer, or Unreachable/Refused saying why not."""
        answer = self._json_answer("POST", self.config.url + DASHBOARDS_DB_PATH, "save dashboard", json=dict(body))
        if not isinstance(answer, dict):
            raise Unreachable("save dashboard: the answer is not an object (is the URL Grafana's?)")
        return answer

    # -- sending --------------------------------------------------------------------------

    def send(self, run: Run) -> Delivery:
        annotations = self._annotations(run)
        with self._lock:
            return self._send(run, annotations)

    def send_runs(self, runs: Sequence[Run]) -> List[Delivery]:
        """Several runs at once (a back-fill): runs close in time are looked up together
        with one ranged query tagged `chaostoolkit`, then the runs are sent side by side,
        at most `concurrency` requests in flight. Idempotent as `send`."""
        annotations = [self._annotations(run) for run in runs]
        notes: List[List[str]] = [[] for _ in runs]
        failed_lookups: Dict[int, Unreachable] = {}
        with self._lock:
            for group in _lookup_groups(runs, annotations, self._stored):
                if len(group) < 2:
                    continue  # a run alone is looked up by its own tag, as `send` does
                try:
                    self._lookup_window([runs[i].run_id for i in group], [annotations[i] for i in group],
                                        [notes[i] for i in group])
                except Unreachable as unreachable:
                    failed_lookups.update((i, unreachable) for i in group)
            if self._senders is None:
                self._senders = ThreadPoolExecutor(max_workers=self.config.concurrency,
                                                   thread_name_prefix="grafana-send")
            sending = [self._senders.submit(self._send, run, annotations[i], notes[i], failed_lookups.get(i))
                       for i, run in enumerate(runs)]
            return [future.result() for future in sending]

    def close(self) -> None:
        if self._senders is not None:
            self._senders.shutdown(wait=False)
        self.session.close()

    def _annotations(self, run: Run) -> List[Annotation]:
        return run_annotations(run, self.config.only_actions, self.config.tags)

    def _iter_annotations(self, run: Run) -> Iterator[Annotation]:
        return iter_run_annotations(run, self.config.only_actions, self.config.tags)

    def _send(self, run: Run, annotations: List[Annotation], notes: Optional[List[str]] = None,
              lookup_error: Optional[Unreachable] = None) -> Delivery:
        """`notes` so far (from a window's look-up); `lookup_error`: that look-up failed."""
        all_ids = [event.id for event in run.events]
        rejected: List[Tuple[str, str]] = []
        notes = notes if notes is not None else []
        error: Optional[Unreachable] = None
        position = 0
        lookups_left = 1 + self.config.retries
        try:
            if lookup_error is not None:
                raise lookup_error
            stored = self._lookup(run.run_id, annotations, notes)
            while position < len(annotations):
                annotation = annotations[position]
                try:
                    self._put(annotation, stored)
                except _Rejected as rejection:
                    rejected.append((annotation.event_id, str(rejection)))
                except Ambiguous as ambiguous:
                    # Whether it was stored is for the server to say: look the run up again.
                    lookups_left -= 1
                    if lookups_left <= 0:
                        raise Unreachable(str(ambiguous)) from None
                    logger.debug("%s: %s; looking the run up again", self.label, ambiguous)
                    stored = self._lookup(run.run_id, annotations, notes, refresh=True)
                    continue
                position += 1
        except Unreachable as unreachable:
            error = unreachable
        error_text = str(error) if error else None
        failed_ids = {event_id for event_id, _ in rejected}
        if error:
            # Events that show nothing (phases that went well) count as delivered
            # only when the server took the run.
            shown = {annotation.event_id for annotation in annotations}
            failed_ids.update(annotation.event_id for annotation in annotations[position:])
            failed_ids.update(event_id for event_id in all_ids if event_id not in shown)
        notes.extend(f"event {event_id} refused: {reason}" for event_id, reason in rejected[:_REPORTED_REJECTIONS])
        if len(rejected) > _REPORTED_REJECTIONS:
            notes.append(f"... and {len(rejected) - _REPORTED_REJECTIONS} more refused annotation(s)")
        if rejected and not error_text:
            error_text = f"{len(rejected)} of {len(annotations)} annotation(s) refused (first: {rejected[0][1]})"
        delivered = tuple(event_id for event_id in all_ids if event_id not in failed_ids)
        failed = tuple(event_id for event_id in all_ids if event_id in failed_ids)
        return Delivery(self.label, delivered, failed, error_text, tuple(notes), isinstance(error, Refused))

    def _lookup(self, run_id: str, annotations: Sequence[Annotation], notes: List[str],
                refresh: bool = False) -> Dict[str, _Stored]:
        """What the server has for this run, from one ranged, tagged look-up (paged).

        With `refresh` the server is asked again and what it says is merged
        into what this target already knows: a live run's earlier slices may
        lie outside the range of the current one.
        """
        if run_id in self._stored and not refresh:
            return self._stored[run_id]
        if not annotations:
            return {}
        found = self._found(_lookup_params(run_id, annotations, self.config.page_size, self.config.placement))
        return self._absorb(run_id, found.values(), notes)

    def _lookup_window(self, run_ids: Sequence[str], annotations: Sequence[Sequence[Annotation]],
                       notes: Sequence[List[str]]) -> None:
        """What the server has for several runs, from one ranged look-up tagged `chaostoolkit`
        (paged): each annotation found goes to its run by its `run-<id>` tag."""
        every = [annotation for run_annotations_ in annotations for annotation in run_annotations_]
        # Room for every annotation of the window in one page, and for some of other runs.
        params = _lookup_params(run_ids[0], every, len(every) + self.config.page_size, self.config.placement)
        params["tags"] = [CHAOSTOOLKIT_TAG]
        run_of_tag = {run_tag(run_id): run_id for run_id in run_ids}
        by_run: Dict[str, List[dict]] = {run_id: [] for run_id in run_ids}
        for item in self._found(params).values():
            for tag in item.get("tags") or ():
                if tag in run_of_tag:
                    by_run[run_of_tag[tag]].append(item)
                    break
        for run_id, run_notes in zip(run_ids, notes):
            self._absorb(run_id, by_run[run_id], run_notes)

    def _found(self, params: Dict[str, Any]) -> Dict[int, dict]:
        """Every annotation the look-up `params` matches, by id, whatever the pages."""
        found: Dict[int, dict] = {}
        limit = first_limit = params["limit"]
        for _ in range(MAX_LOOKUP_PAGES):
            page = self._get_page(params)
            fresh = [item for item in page if item["id"] not in found]
            found.update((item["id"], item) for item in page)
            if len(page) < limit:
                break
            # Grafana returns the latest-ending first and can only bound starts
            # (`to`): everything not returned yet ends, so starts, before the
            # earliest end of this page. Long regions seen already come back;
            # when a page brings nothing new, ask for more at once.
            if fresh:
                params["to"] = min(int(item.get("timeEnd") or item["time"]) for item in page)
            else:
                limit = min(limit * 2, 64 * first_limit)
            params["limit"] = limit
        else:
            raise Unreachable(f"look-up: still full pages after {MAX_LOOKUP_PAGES} requests: stopped "
                              "(is the URL Grafana's?)")
        return found

    def _absorb(self, run_id: str, items, notes: List[str]) -> Dict[str, _Stored]:
        """Merge what a look-up found of one run into what this target knows of it; copies
        of one event beyond the first are deleted."""
        stored = self._stored.setdefault(run_id, {})
        known_ids = {identity: entry.id for identity, entry in stored.items()}
        duplicates: List[int] = []
        for item in sorted(items, key=lambda item: item["id"]):
            identity = _event_tag_of(item)
            if identity is None:
                continue
            # The copy this target already works with stays, else the oldest.
            kept = known_ids.setdefault(identity, item["id"])
            if item["id"] != kept:
                duplicates.append(item["id"])
                continue
            stored[identity] = _Stored(item["id"], int(item.get("time") or 0),
                                       int(item.get("timeEnd") or item.get("time") or 0),
                                       item.get("text") or "", frozenset(item.get("tags") or ()))
        self._delete_duplicates(duplicates, notes)
        return stored

    def _get_page(self, params: Mapping[str, Any]) -> List[dict]:
        page = self._json_answer("GET", self.config.annotations_url, "look-up", params=dict(params))
        if not isinstance(page, list):
            raise Unreachable(f"look-up: the answer is a JSON {_json_kind(page)}, not a list of annotations "
                              "(is the URL Grafana's?)")
        for position, item in enumerate(page):
            problem = _not_an_annotation(item)
            if problem:
                raise Unreachable(f"look-up: item {position} of the answer is not an annotation: {problem} "
                                  "(is the URL Grafana's?)")
        return page

    def _json_answer(self, method: str, url: str, what: str, **kwargs) -> Any:
        """The JSON of a successful answer; Unreachable (Refused) saying why there is none."""
        response = self._request(method, url, what, **kwargs)
        problem = unexpected_answer(what, response, (200,))
        if problem:
            raise problem
        try:
            return response.json()
        except ValueError:
            raise Unreachable(f"{what}: the answer is not JSON (is the URL Grafana's?)") from None

    def _delete_duplicates(self, ids: Sequence[int], notes: List[str]) -> None:
        """Copies left by an earlier tool or a lost answer: one annotation per event stays."""
        for annotation_id in ids:
            response = self._request("DELETE", f"{self.config.annotations_url}/{annotation_id}", "delete duplicate")
            if response.status_code < 300 or response.status_code == 404:
                notes.append(f"deleted duplicate annotation {annotation_id}")
            else:
                notes.append(f"duplicate annotation {annotation_id} not deleted: {status_text(response)}")

    def _put(self, annotation: Annotation, stored: Dict[str, _Stored]) -> None:
        """Create the annotation, or patch what differs from the server's copy."""
        identity = event_tag(annotation.event_id)
        existing = stored.get(identity)
        if existing is not None:
            changes = _changes(existing, annotation)
            if not changes:
                return
            response = self._request("PATCH", f"{self.config.annotations_url}/{existing.id}", "patch", json=changes)
            if response.status_code < 300:
                problem = unexpected_answer("patch", response, (200,)) or _not_json_object("patch", response)
                if problem:
                    raise problem
                stored[identity] = _stored_as(existing.id, annotation)
                return
            if response.status_code != 404:
                raise _rejection("patch", response)
            # Deleted on the server since the look-up: create it again.
            del stored[identity]
        response = self._request("POST", self.config.annotations_url, "create", json=self._post_body(annotation))
        if response.status_code >= 300:
            raise _rejection("create", response)
        problem = unexpected_answer("create", response, (200,))
        if problem:
            raise problem
        try:
            annotation_id = response.json()["id"]
        except (ValueError, KeyError, TypeError):
            raise Unreachable("create: the answer has no annotation id (is the URL Grafana's?)") from None
        stored[identity] = _stored_as(annotation_id, annotation)

    def _post_body(self, annotation: Annotation) -> dict:
        return {**annotation.body(), **self.config.placement}

    def _headers(self, masked: bool = False) -> Dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json",
                   **self.config.auth_headers(masked)}
        if self.config.org_id is not None:
            headers["X-Grafana-Org-Id"] = str(self.config.org_id)
        return headers

    def _request(self, method: str, url: str, what: str, **kwargs) -> requests.Response:
        """One request, retried on connection errors and 5xx; a POST only when it surely
        did not reach Grafana, since resending it could create a second annotation."""
        return request_with_retries(self.session, method, url, what, label=self.label,
                                    retries=self.config.retries, timeout=self.config.timeout,
                                    idempotent=method != "POST",
                                    headers=self._headers(), auth=self.config.basic_auth, verify=self.config.verify,
                                    cert=self.config.client_cert, **kwargs)


def _lookup_params(run_id: str, annotations: Sequence[Annotation], limit: int,
                   placement: Mapping[str, Any]) -> Dict[str, Any]:
    """The run's annotations on the target's dashboard (`placement`), else in its organization:
    two dashboards of one Grafana each find their own copies, not the other's."""
    params = {
        "from": min(annotation.time for annotation in annotations),
        "to": max(annotation.time_end for annotation in annotations),
        "tags": [CHAOSTOOLKIT_TAG, run_tag(run_id)],
        "type": "annotation",
        "limit": limit,
    }
    params.update((key, placement[key]) for key in ("dashboardUID", "dashboardId") if key in placement)
    return params


def _lookup_groups(runs: Sequence[Run], annotations: Sequence[Sequence[Annotation]],
                   known: Mapping[str, Any]) -> List[List[int]]:
    """The runs to look up, as groups of indexes whose annotations lie close in time
    (no gap over LOOKUP_GAP_MS): one ranged look-up per group. Runs already looked up,
    and runs that show nothing, are left out."""
    spans = sorted((min(a.time for a in annotations[i]), max(a.time_end for a in annotations[i]), i)
                   for i, run in enumerate(runs) if annotations[i] and run.run_id not in known)
    groups: List[List[int]] = []
    reach = None
    for start, end, index in spans:
        if reach is None or start > reach + LOOKUP_GAP_MS:
            groups.append([])
            reach = end
        groups[-1].append(index)
        reach = max(reach, end)
    return groups


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _quoted(value: Any) -> str:
    try:
        return shorten(json.dumps(value, ensure_ascii=True, default=str), 60)
    except ValueError:  # an integer too long for Python to print
        return f"a {type(value).__name__}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _not_an_annotation(item: Any) -> Optional[str]:
    """Why a look-up item is not an annotation as Grafana answers one, or None."""
    if not isinstance(item, dict):
        return f"a JSON {_json_kind(item)}"
    if not _is_int(item.get("id")):
        return f"id {_quoted(item.get('id'))} is not an integer"
    if not _is_int(item.get("time")):
        return f"time {_quoted(item.get('time'))} is not epoch milliseconds"
    if item.get("timeEnd") is not None and not _is_int(item["timeEnd"]):
        return f"timeEnd {_quoted(item['timeEnd'])} is not epoch milliseconds"
    tags = item.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)):
        return f"tags {_quoted(tags)} is not a list of strings"
    if item.get("text") is not None and not isinstance(item["text"], str):
        return f"text {_quoted(item['text'])} is not a string"
    return None


def _not_json_object(what: str, response: requests.Response) -> Optional[Unreachable]:
    """An error unless the answer is a JSON object, as Grafana's always are."""
    try:
        if isinstance(response.json(), dict):
            return None
    except ValueError:
        pass
    return Unreachable(f"{what}: the answer is not Grafana's (not a JSON object): nothing was changed "
                       "(is the URL Grafana's?)")


def _event_tag_of(item: Mapping[str, Any]) -> Optional[str]:
    prefix = event_tag("")
    for tag in item.get("tags") or ():
        if isinstance(tag, str) and tag.startswith(prefix):
            return tag
    return None


def _changes(existing: _Stored, annotation: Annotation) -> Dict[str, Any]:
    """The fields to PATCH (Grafana's PATCH changes only the fields given)."""
    changes: Dict[str, Any] = {}
    if existing.time != annotation.time:
        changes["time"] = annotation.time
    if existing.time_end != annotation.time_end:
        changes["timeEnd"] = annotation.time_end
    if existing.text != annotation.text:
        changes["text"] = annotation.text
    if existing.tags != frozenset(annotation.tags):
        changes["tags"] = list(annotation.tags)
    return changes


def _stored_as(annotation_id: int, annotation: Annotation) -> _Stored:
    return _Stored(annotation_id, annotation.time, annotation.time_end, annotation.text, frozenset(annotation.tags))
