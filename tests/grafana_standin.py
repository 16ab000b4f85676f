"""A local stand-in for Grafana's annotations HTTP API, and its pytest fixtures.

No Grafana server can be installed here, so the tests talk to this one. It is
a contract, not a mock: it answers only what the contract allows.

The contract it enforces
------------------------
Source: `fixtures/contracts/grafana-annotations-openapi.json` (Grafana's own
Swagger spec, annotations part) and Grafana's behaviour described beside it
(`fixtures/contracts/README.md`, FACTS §7).

- Routes (under `/api`): `GET`/`POST /annotations`,
  `GET`/`PUT`/`PATCH`/`DELETE /annotations/{id}`, `POST /dashboards/db`
  (`fixtures/contracts/grafana-dashboards-openapi.json`). Anything else: 404.
- `POST /dashboards/db`: the body must be a `SaveDashboardCommand` (no other
  field) whose `dashboard` validates against Grafana's dashboard JSON schema
  (`fixtures/contracts/grafana-dashboard.jsonschema.json`; Grafana itself stores
  any object). An empty title is a 400; a uid already saved (or a title already
  in the folder) is a 412 unless `overwrite`; each save bumps the version; the
  answer is the spec's `postDashboardResponse`. Viewers get a 403.
- Request bodies are validated with `jsonschema` against the spec's
  `definitions` (`PostAnnotationsCmd`, `PatchAnnotationsCmd`,
  `UpdateAnnotationsCmd`); `Content-Type` must be `application/json`. Query
  parameters of `GET /annotations` are checked against the spec's parameters
  (integers, booleans, the `type` enum; only `tags` may repeat). Stricter than
  Grafana on purpose: an unknown body field or query parameter is a 400 (Grafana
  ignores it silently, which would hide a sink's typo). Every answer is itself
  validated against the spec's response schema before it is sent.
- Auth: `Authorization: Bearer <token>` (a service account token, bound to
  its org) or HTTP Basic (a user, who may pick one of their orgs with
  `X-Grafana-Org-Id`). No or bad credentials: 401. A Viewer may read but
  not write: 403.
- Storage as Grafana does it: each POST inserts (never de-duplicates) and
  answers `{"message": "Annotation added", "id": n}`; empty `text` is a 400;
  `time` 0 is now, `timeEnd` 0 or equal to `time` is a point, reversed bounds
  are swapped; a tag list longer than `tags_length` (Grafana's default 500,
  measured as a JSON array) is a 400; an unknown `dashboardUID` makes an
  organization annotation (on POST; a GET with one is a 400 `Invalid dashboard
  UID in annotation request`, as pkg/api/annotations.go GetAnnotations answers). PATCH changes only the fields given (`tags` if
  present, `text` if not empty, `time`/`timeEnd` if > 0); PUT replaces;
  unknown id: 404 `Annotation not found`.
- `GET /annotations` filters as Grafana's SQL does: the caller's org; time
  overlap (`time <= to AND timeEnd >= from`) only when both `from` and `to`
  are > 0; `dashboardUID` (else `dashboardId`), `panelId`, `type`; `tags`:
  all of them (or any with `matchAny=true`), a tag being split on its first
  `:` into key and value and a query tag without value matching on the key;
  `limit` (default 100); ordered by `timeEnd` then `time`, latest first.
- Failures on demand, for the reliability tests: `fail(status, times)` (e.g.
  5xx for the next N requests), `slow(seconds, times)`, `reset(times,
  after_store)` (the connection is reset, before or after the request took
  effect), `hold(until, seconds)` (wait for a `threading.Event` set by the
  test; the request records whether it came before the deadline).
- Every request is recorded (`requests`, `count`), as is every contract
  violation (`violations`) for the tests to assert on, and the most requests
  it had in flight at once (`max_in_flight`).
- `latency`: seconds every answer waits, as a hosted Grafana across a network
  would (requests in flight wait side by side, as on a real server).
"""
import base64
import json
import os
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from tests.conftest import FIXTURES
from tests.loopback import serve_in_background, stop_serving
from tests.procs import free_port
from tests.tls import Pki

CONTRACT_PATH = os.path.join(FIXTURES, "contracts", "grafana-annotations-openapi.json")
DASHBOARDS_CONTRACT_PATH = os.path.join(FIXTURES, "contracts", "grafana-dashboards-openapi.json")
DASHBOARD_SCHEMA_PATH = os.path.join(FIXTURES, "contracts", "grafana-dashboard.jsonschema.json")
EDITOR_TOKEN = "glsa_editor_0123456789abcdef"
VIEWER_TOKEN = "glsa_viewer_fedcba9876543210"
ADMIN_USER = ("admin", "pa55-w0rd-admin")
GRAFANA_TAGS_LENGTH = 500
DEFAULT_LIMIT = 100
_WRITE_PERMISSIONS = {"POST": "annotations:create", "PATCH": "annotations:write",
                      "PUT": "annotations:write", "DELETE": "annotations:delete"}


def _load_contract(path: str = CONTRACT_PATH) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


CONTRACT = _load_contract()
DASHBOARDS_CONTRACT = _load_contract(DASHBOARDS_CONTRACT_PATH)
# The `dashboard` of a save must be a dashboard Grafana's own model accepts (stricter than Grafana,
# which stores any JSON object there: a malformed dashboard is a bug of ours).
DASHBOARD_VALIDATOR = jsonschema.Draft7Validator(_load_contract(DASHBOARD_SCHEMA_PATH))


def _validator(schema: dict) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator({**schema, "definitions": CONTRACT["definitions"]})


def _body_validator(name: str) -> jsonschema.Draft4Validator:
    definition = CONTRACT["definitions"][name]
    # Stricter than Grafana: a field the spec does not know is a sink's mistake.
    return _validator({**definition, "additionalProperties": False})


BODY_VALIDATORS = {
    ("POST", "dashboards-db"): jsonschema.Draft4Validator({
        **DASHBOARDS_CONTRACT["definitions"]["SaveDashboardCommand"], "additionalProperties": False,
        "required": ["dashboard"], "definitions": DASHBOARDS_CONTRACT["definitions"]}),
    ("POST", "collection"): _body_validator("PostAnnotationsCmd"),
    ("PATCH", "item"): _body_validator("PatchAnnotationsCmd"),
    ("PUT", "item"): _body_validator("UpdateAnnotationsCmd"),
}
GET_PARAMETERS = {parameter["name"]: parameter for parameter in CONTRACT["paths"]["/annotations"]["get"]["parameters"]}
RESPONSE_VALIDATORS = {name: _validator(response["schema"]) for name, response in CONTRACT["responses"].items()}
RESPONSE_VALIDATORS["postDashboardResponse"] = jsonschema.Draft4Validator(
    DASHBOARDS_CONTRACT["responses"]["postDashboardResponse"]["schema"])
_ERROR_RESPONSES = {400: "badRequestError", 401: "unauthorisedError", 403: "forbiddenError",
                    404: "notFoundError", 412: "preconditionFailedError", 500: "internalServerError"}
RESPONSE_VALIDATORS["preconditionFailedError"] = _validator(
    DASHBOARDS_CONTRACT["responses"]["preconditionFailedError"]["schema"])


@dataclass
class Credential:
    role: str  # Viewer, Editor or Admin
    orgs: Tuple[int, ...] = (1,)


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: Dict[str, List[str]]
    headers: Dict[str, str]
    body: Any
    status: Optional[int] = None  # None: the connection was reset
    released: Optional[bool] = None  # held: whether the event came before the deadline


@dataclass
class _Fault:
    kind: str  # status, slow, hold, reset
    times: int
    status: int = 500
    seconds: float = 0.0
    after_store: bool = False
    method: Optional[str] = None
    until: Optional[threading.Event] = None


@dataclass
class _Answer:
    status: int
    body: Any
    reset: bool = False
    response: Optional[str] = None  # the spec's response this answer is, when a success


@dataclass
class StoredAnnotation:
    id: int
    org_id: int
    time: int
    time_end: int
    text: str
    tags: List[str]
    dashboard_id: int = 0
    dashboard_uid: str = ""
    panel_id: int = 0
    user_id: int = 1
    created: int = 0
    updated: int = 0
    data: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"id": self.id, "alertId": 0, "alertName": "", "dashboardId": self.dashboard_id,
                "dashboardUID": self.dashboard_uid, "panelId": self.panel_id, "userId": self.user_id,
                "newState": "", "prevState": "", "created": self.created, "updated": self.updated,
                "time": self.time, "timeEnd": self.time_end, "text": self.text, "tags": list(self.tags),
                "login": "admin", "email": "admin@localhost", "avatarUrl": "", "data": self.data}


class _Problem(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def _tag_pair(tag: str) -> Tuple[str, str]:
    """Grafana's ParseTagPairs: split on the first `:`, trim both sides."""
    key, _, value = tag.partition(":")
    return key.strip(), value.strip()


class GrafanaStandIn:
    """See the module docstring: the annotations API of one Grafana, on loopback."""

    def __init__(self, tokens: Optional[Dict[str, Credential]] = None,
                 users: Optional[Dict[Tuple[str, str], Credential]] = None,
                 dashboards: Optional[Dict[str, int]] = None, tags_length: int = GRAFANA_TAGS_LENGTH,
                 tls: Optional[Pki] = None, latency: float = 0.0):
        """`tls`: serve HTTPS with its server certificate, and ask clients for one its CA signed;
        `latency`: seconds added to every answer."""
        self.tokens = tokens if tokens is not None else {
            EDITOR_TOKEN: Credential("Editor"), VIEWER_TOKEN: Credential("Viewer")}
        self.users = users if users is not None else {ADMIN_USER: Credential("Admin", (1, 2))}
        self.dashboards = dict(dashboards or {"chaos-dash": 7})
        self.tags_length = tags_length
        self.annotations: Dict[int, StoredAnnotation] = {}
        # (org id, uid) -> {"id", "uid", "version", "dashboard", "folderUid"}: dashboards saved through the API.
        self.saved_dashboards: Dict[Tuple[int, str], dict] = {}
        self.requests: List[RecordedRequest] = []
        self.violations: List[str] = []
        self._faults: List[_Fault] = []
        self._next_id = 1
        self._lock = threading.Lock()
        self.latency = latency
        self.in_flight = 0
        self.max_in_flight = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, each answer
            # on a kept-alive connection would wait for the client's delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _handle(self):
                standin._serve(self)

            def finish(self):
                try:
                    super().finish()
                except (OSError, ValueError):  # the connection was reset on purpose
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.ca)
            context.load_cert_chain(tls.server_cert, tls.server_key)
            context.verify_mode = ssl.CERT_REQUIRED
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = serve_in_background(self.httpd, "grafana-standin")

    # -- test controls ------------------------------------------------------------------

    def fail(self, status: int = 500, times: int = 1, method: Optional[str] = None) -> None:
        """Answer the next `times` requests (of `method`, if given) with `status`."""
        with self._lock:
            self._faults.append(_Fault("status", times, status=status, method=method))

    def slow(self, seconds: float, times: int = 1, method: Optional[str] = None) -> None:
        with self._lock:
            self._faults.append(_Fault("slow", times, seconds=seconds, method=method))

    def hold(self, until: threading.Event, seconds: float, times: int = 1, method: Optional[str] = None) -> None:
        """Keep the next `times` requests waiting until `until` is set, `seconds` at most."""
        with self._lock:
            self._faults.append(_Fault("hold", times, seconds=seconds, method=method, until=until))

    def reset(self, times: int = 1, after_store: bool = False, method: Optional[str] = None) -> None:
        """Reset the connection instead of answering; with `after_store` the request took effect first."""
        with self._lock:
            self._faults.append(_Fault("reset", times, after_store=after_store, method=method))

    def count(self, method: Optional[str] = None) -> int:
        with self._lock:
            return sum(1 for request in self.requests if method in (None, request.method))

    def find(self, **filters) -> List[StoredAnnotation]:
        """Stored annotations, optionally filtered by exact attribute values."""
        with self._lock:
            return [annotation for annotation in self.annotations.values()
                    if all(getattr(annotation, key) == value for key, value in filters.items())]

    def with_tag(self, tag: str) -> List[StoredAnnotation]:
        with self._lock:
            return [annotation for annotation in self.annotations.values() if tag in annotation.tags]

    def close(self) -> None:
        stop_serving(self.httpd)

    # -- serving ------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        record = RecordedRequest(handler.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                 dict(handler.headers), raw.decode("utf-8", "replace") if raw else None)
        with self._lock:
            self.requests.append(record)
            fault = self._take_fault(handler.command)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            self._serve_recorded(handler, parts, record, raw, fault)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _serve_recorded(self, handler: BaseHTTPRequestHandler, parts, record: RecordedRequest, raw: bytes,
                        fault: Optional[_Fault]) -> None:
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)
        if fault and fault.kind == "hold":
            record.released = fault.until.wait(fault.seconds)
        if fault and fault.kind == "status":
            answer = _Answer(fault.status, {"message": "Internal Server Error" if fault.status >= 500
                                            else f"HTTP {fault.status}"})
        elif fault and fault.kind == "reset" and not fault.after_store:
            answer = _Answer(0, None, reset=True)
        else:
            answer = self._answer(handler.command, parts.path, record, raw)
            if fault and fault.kind == "reset":
                answer = _Answer(0, None, reset=True)
        if answer.reset:
            _reset(handler)
            return
        record.status = answer.status
        self._check_response(answer)
        payload = json.dumps(answer.body).encode("utf-8")
        try:
            handler.send_response(answer.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up waiting (timeout tests)

    def _take_fault(self, method: str) -> Optional[_Fault]:
        for fault in self._faults:
            if fault.method in (None, method):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _check_response(self, answer: _Answer) -> None:
        name = _ERROR_RESPONSES.get(answer.status) if answer.status >= 400 else answer.response
        if name and not RESPONSE_VALIDATORS[name].is_valid(answer.body):
            raise AssertionError(f"stand-in answer breaks the contract: {answer.body!r}")

    def _answer(self, method: str, path: str, record: RecordedRequest, raw: bytes) -> _Answer:
        try:
            with self._lock:
                org_id, credential = self._authenticate(record.headers)
                route, annotation_id = self._route(method, path)
                if method != "GET" and credential.role == "Viewer":
                    needed = "dashboards:create" if route == "dashboards-db" else _WRITE_PERMISSIONS[method]
                    raise _Problem(403, "You'll need additional permissions to perform this action. "
                                        f"Permissions needed: {needed}")
                body = self._body(method, route, record, raw)
                return self._operate(method, route, annotation_id, org_id, record.params, body)
        except _Problem as problem:
            if problem.status == 400:
                self.violations.append(f"{method} {path}: {problem}")
            return _Answer(problem.status, {"message": str(problem)})

    def _authenticate(self, headers: Dict[str, str]) -> Tuple[int, Credential]:
        authorization = next((value for key, value in headers.items() if key.lower() == "authorization"), "")
        org_header = next((value for key, value in headers.items() if key.lower() == "x-grafana-org-id"), None)
        scheme, _, value = authorization.partition(" ")
        if scheme == "Bearer":
            credential = self.tokens.get(value)
            if credential is None:
                raise _Problem(401, "Invalid API key")
            # A service account belongs to one org; the org header is not looked at.
            return credential.orgs[0], credential
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except ValueError:
                raise _Problem(401, "Unauthorized") from None
            credential = self.users.get((user, password))
            if credential is None:
                raise _Problem(401, "Invalid username or password")
            if org_header is None:
                return credential.orgs[0], credential
            if not org_header.isdigit() or int(org_header) not in credential.orgs:
                raise _Problem(401, "Unauthorized")
            return int(org_header), credential
        raise _Problem(401, "Unauthorized")

    def _route(self, method: str, path: str) -> Tuple[str, Optional[int]]:
        if path.rstrip("/") == "/api/dashboards/db":
            if method != "POST":
                raise _Problem(404, "Not found")
            return "dashboards-db", None
        segments = path.rstrip("/").split("/")
        if segments[:3] != ["", "api", "annotations"] or len(segments) > 4:
            raise _Problem(404, "Not found")
        if len(segments) == 3:
            if method not in ("GET", "POST"):
                raise _Problem(404, "Not found")
            return "collection", None
        if method == "POST":
            raise _Problem(404, "Not found")
        if not segments[3].isdigit():
            raise _Problem(400, "annotationId is invalid")
        return "item", int(segments[3])

    def _body(self, method: str, route: str, record: RecordedRequest, raw: bytes) -> Any:
        validator = BODY_VALIDATORS.get((method, route))
        if validator is None:
            if raw:
                raise _Problem(400, "bad request data: unexpected body")
            return None
        content_type = next((value for key, value in record.headers.items() if key.lower() == "content-type"), "")
        if not content_type.startswith("application/json"):
            raise _Problem(400, f"bad request data: Content-Type {content_type!r}, expected application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Problem(400, "bad request data") from None
        record.body = body
        errors = sorted(validator.iter_errors(body), key=lambda error: list(error.path))
        if errors:
            where = "/".join(str(part) for part in errors[0].path) or "body"
            raise _Problem(400, f"bad request data: {where}: {errors[0].message}")
        return body

    def _operate(self, method: str, route: str, annotation_id: Optional[int], org_id: int,
                 params: Dict[str, List[str]], body: Any) -> _Answer:
        if route == "dashboards-db":
            return self._save_dashboard(org_id, body)
        if route == "collection":
            if method == "GET":
                return _Answer(200, [item.to_json() for item in self._search(org_id, params)],
                               response="getAnnotationsResponse")
            return _Answer(200, {"message": "Annotation added", "id": self._create(org_id, body)},
                           response="postAnnotationResponse")
        annotation = self.annotations.get(annotation_id)
        if annotation is None or annotation.org_id != org_id:
            raise _Problem(404, "Annotation not found")
        if method == "GET":
            return _Answer(200, annotation.to_json(), response="getAnnotationByIDResponse")
        if method == "DELETE":
            del self.annotations[annotation_id]
            return _Answer(200, {"message": "Annotation deleted"}, response="okResponse")
        if method == "PUT":
            annotation.text = body.get("text", "")
            annotation.tags = list(body.get("tags") or [])
            annotation.time, annotation.time_end = body.get("time", 0), body.get("timeEnd", 0)
            message = "Annotation updated"
        else:
            if body.get("tags") is not None:
                annotation.tags = list(body["tags"])
            if body.get("text"):
                annotation.text = body["text"]
            if body.get("time", 0) > 0:
                annotation.time = body["time"]
            if body.get("timeEnd", 0) > 0:
                annotation.time_end = body["timeEnd"]
            message = "Annotation patched"
        self._check_tags(annotation.tags)
        annotation.time, annotation.time_end = _time_range(annotation.time, annotation.time_end)
        annotation.updated = _now_ms()
        return _Answer(200, {"message": message}, response="okResponse")

    def _create(self, org_id: int, body: dict) -> int:
        if not body.get("text"):
            raise _Problem(400, "Failed to save annotation")
        tags = list(body.get("tags") or [])
        self._check_tags(tags)
        start = body.get("time") or _now_ms()
        start, end = _time_range(start, body.get("timeEnd") or 0)
        dashboard_uid = body.get("dashboardUID") or ""
        if dashboard_uid:
            # An unknown UID is ignored by Grafana: the annotation is organization-wide.
            dashboard_id = self.dashboards.get(dashboard_uid, 0)
            dashboard_uid = dashboard_uid if dashboard_id else ""
        else:
            dashboard_id = body.get("dashboardId") or 0
            dashboard_uid = next((uid for uid, number in self.dashboards.items() if number == dashboard_id), "")
        annotation_id = self._next_id
        self._next_id += 1
        now = _now_ms()
        self.annotations[annotation_id] = StoredAnnotation(
            annotation_id, org_id, start, end, body["text"], tags, dashboard_id=dashboard_id,
            dashboard_uid=dashboard_uid, panel_id=body.get("panelId") or 0, created=now, updated=now,
            data=body.get("data") or {})
        return annotation_id

    def _save_dashboard(self, org_id: int, body: dict) -> _Answer:
        """POST /api/dashboards/db as Grafana's dashboard service does it: a new uid is created,
        an existing one is replaced only with `overwrite`, and each save bumps the version."""
        board = body["dashboard"]
        errors = sorted(DASHBOARD_VALIDATOR.iter_errors(board), key=lambda error: list(error.absolute_path))
        if errors:
            where = "/".join(str(part) for part in errors[0].absolute_path) or "dashboard"
            raise _Problem(400, f"bad request data: dashboard/{where}: {errors[0].message[:200]}")
        title = (board.get("title") or "").strip()
        if not title:
            raise _Problem(400, "Dashboard title cannot be empty")
        uid = board.get("uid") or f"gen{self._next_id:06d}"
        if len(uid) > 40:
            raise _Problem(400, "uid too long, max 40 characters")
        folder = body.get("folderUid") or ""
        existing = self.saved_dashboards.get((org_id, uid))
        same_title = [saved for key, saved in self.saved_dashboards.items() if key[0] == org_id and key[1] != uid
                      and saved["dashboard"]["title"].lower() == title.lower() and saved["folderUid"] == folder]
        if not body.get("overwrite"):
            if existing is not None:
                return _Answer(412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"})
            if same_title:
                return _Answer(412, {"message": "A dashboard with the same name in the folder already exists",
                                     "status": "name-exists"})
        for saved in same_title:  # overwrite: the one of the same title goes
            del self.saved_dashboards[(org_id, saved["uid"])]
        if existing is None:
            number, version = self._next_id, 1
            self._next_id += 1
        else:
            number, version = existing["id"], existing["version"] + 1
        stored = {**board, "id": number, "uid": uid, "version": version}
        self.saved_dashboards[(org_id, uid)] = {"id": number, "uid": uid, "version": version, "dashboard": stored,
                                                "folderUid": folder}
        self.dashboards[uid] = number  # annotations may now name it
        slug = "-".join(part for part in "".join(c if c.isalnum() else " " for c in title.lower()).split())
        return _Answer(200, {"id": number, "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                             "version": version, "title": slug, "folderUid": folder},
                       response="postDashboardResponse")

    def _check_tags(self, tags: List[str]) -> None:
        length = 2 + sum(len(tag) + 2 for tag in tags) + max(len(tags) - 1, 0)
        if length > self.tags_length:
            raise _Problem(400, f"tags length ({length}) exceeds the maximum allowed ({self.tags_length}): "
                                "modify the configuration to increase it")

    def _search(self, org_id: int, params: Dict[str, List[str]]) -> List[StoredAnnotation]:
        query = _query(params)
        if query.get("dashboardUID") and query["dashboardUID"] not in self.dashboards:
            raise _Problem(400, "Invalid dashboard UID in annotation request")
        matches = []
        for annotation in self.annotations.values():
            if annotation.org_id != org_id:
                continue
            if query.get("from", 0) > 0 and query.get("to", 0) > 0 and not (
                    annotation.time <= query["to"] and annotation.time_end >= query["from"]):
                continue
            if query.get("dashboardUID"):
                if annotation.dashboard_uid != query["dashboardUID"]:
                    continue
            elif query.get("dashboardId") and annotation.dashboard_id != query["dashboardId"]:
                continue
            if query.get("panelId") and annotation.panel_id != query["panelId"]:
                continue
            if query.get("type") == "alert":
                continue  # the stand-in stores no alert annotations
            if query.get("tags") and not _tags_match(annotation.tags, query["tags"], query.get("matchAny", False)):
                continue
            matches.append(annotation)
        matches.sort(key=lambda item: (item.time_end, item.time, item.id), reverse=True)
        limit = query.get("limit") or DEFAULT_LIMIT
        return matches[:limit]


def _query(params: Dict[str, List[str]]) -> Dict[str, Any]:
    """The GET parameters, checked against the spec's parameter list."""
    query: Dict[str, Any] = {}
    for name, values in params.items():
        spec = GET_PARAMETERS.get(name)
        if spec is None:
            raise _Problem(400, f"unknown query parameter {name!r}")
        if spec["type"] == "array":
            query[name] = values
            continue
        if len(values) > 1:
            raise _Problem(400, f"query parameter {name!r} given {len(values)} times")
        value = values[0]
        if spec["type"] == "integer":
            try:
                query[name] = int(value)
            except ValueError:
                raise _Problem(400, f"query parameter {name!r}: {value!r} is not an integer") from None
        elif spec["type"] == "boolean":
            if value not in ("true", "false"):
                raise _Problem(400, f"query parameter {name!r}: {value!r} is not true or false")
            query[name] = value == "true"
        else:
            if "enum" in spec and value not in spec["enum"]:
                raise _Problem(400, f"query parameter {name!r}: {value!r} not in {spec['enum']}")
            query[name] = value
    return query


def _tags_match(stored: List[str], wanted: List[str], match_any: bool) -> bool:
    pairs = [_tag_pair(tag) for tag in stored]
    hits = 0
    for key, value in (_tag_pair(tag) for tag in wanted):
        if any(stored_key == key and (not value or stored_value == value) for stored_key, stored_value in pairs):
            hits += 1
    return hits > 0 if match_any else hits == len(wanted)


def _time_range(start: int, end: int) -> Tuple[int, int]:
    """Grafana's validateTimeRange: a missing end makes a point, reversed bounds are swapped."""
    if not end:
        end = start
    if end < start:
        start, end = end, start
    return start, end


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close with a TCP RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    handler.close_connection = True
    connection: socket.socket = handler.connection
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


@pytest.fixture
def grafana():
    server = GrafanaStandIn()
    yield server
    server.close()


@pytest.fixture
def grafana_pair():
    first, second = GrafanaStandIn(), GrafanaStandIn()
    yield first, second
    first.close()
    second.close()
