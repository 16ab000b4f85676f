"""Prometheus remote-write sink: back-fill a run's series at their true times.

`--prometheus-remote-write URL` (or `PROMETHEUS_REMOTE_WRITE_URL`, or the
`prometheus_remote_write` section of `--config`: `url`, `username`/`password`
or `token`, `ca_bundle`, `verify_tls`, `timeout`, `retries`, `batch_size`)
POSTs the samples of `prometheus_series.run_families` as remote-write 1.0
requests: a protobuf `WriteRequest`, snappy-compressed.

Both encoders are written here rather than depended on: the WriteRequest needs
four message types of two fields each, and a snappy block made of literal
elements only is valid snappy (any decoder reads it) and takes a dozen lines.
The price is no compression, which a one-off back-fill of a run can afford;
no C library, wheel or protobuf runtime is needed on the user's machine.

Prometheus only takes samples older than its head block when its
configuration has `storage: tsdb: out_of_order_time_window` (FACTS §6); a
refusal says so. The same run replayed twice sends the same samples, which
Prometheus stores once.
"""
import struct
from itertools import islice
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import click
import requests

from ..config import Settings, as_number
from ..events import Run
from . import Delivery, Planned, PlannedRequest
from .batching import CrossRunBatches, RunOutcome
from .http import Refused, Unreachable, answer_problem, unexpected_answer
from .prometheus_http import Endpoint, endpoint_settings
from .prometheus_series import (ACTIVITIES_PER_SLICE, Family, Series, SpooledFamilies, openmetrics_text, run_families,
                                run_family_slices)

__all__ = ["OPTIONS", "RemoteWriteConfig", "RemoteWriteTarget", "targets", "remote_write_config",
           "write_request", "snappy_literal_block", "refusal_hint"]

DEFAULT_BATCH_SIZE = 2000  # series per request
_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
_SNAPPY_MAX_LITERAL = 65536
# What a remote-write receiver answers samples it stored, with no body: 204
# (Prometheus, VictoriaMetrics), 200 (Cortex, Mimir, Thanos). A `200 <html>`
# login page stored nothing.
WRITE_STORED = (200, 204)

OPTIONS = [
    click.option("--prometheus-remote-write", "prometheus_remote_write", metavar="URL",
                 help="Back-fill the run at its true times through Prometheus remote write, e.g. "
                      "http://prometheus:9090/api/v1/write [env PROMETHEUS_REMOTE_WRITE_URL]."),
]


@dataclass(frozen=True)
class RemoteWriteConfig:
    endpoint: Endpoint
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def label(self) -> str:
        return f"prometheus remote write {self.endpoint.url}"


def targets(settings: Settings) -> List["RemoteWriteTarget"]:
    config = remote_write_config(settings)
    return [RemoteWriteTarget(config)] if config else []


def remote_write_config(settings: Settings) -> Optional[RemoteWriteConfig]:
    found = endpoint_settings(settings, "prometheus_remote_write", "PROMETHEUS_REMOTE_WRITE",
                              cli={"url": "prometheus_remote_write"}, other_keys=("batch_size",))
    if found is None:
        return None
    endpoint, pick = found
    batch_size = as_number(pick("batch_size", DEFAULT_BATCH_SIZE), "prometheus_remote_write.batch_size", int, 1)
    return RemoteWriteConfig(endpoint, batch_size)


class RemoteWriteTarget:
    def __init__(self, config: RemoteWriteConfig, session: Optional[requests.Session] = None):
        self.config = config
        self.label = config.label
        self.session = session or requests.Session()
        # Requests shared by the runs given to `submit` (a back-fill of many runs).
        self._shared: Optional[CrossRunBatches] = None

    def plan(self, run: Run) -> List[PlannedRequest]:
        return self.planned(run).whole()

    def planned(self, run: Run) -> Planned:
        headers = {**_HEADERS, **self.config.endpoint.auth_headers(masked=True)}
        # In the order `_batches` takes the series (family by family), which a run of 10^6
        # activities makes a slice at a time: spooled, counted, then batched as they are shown.
        spooled = SpooledFamilies(run_family_slices(run, delivery="remote_write",
                                                    activities_per_slice=ACTIVITIES_PER_SLICE))
        size = self.config.batch_size

        def requests_() -> Iterator[PlannedRequest]:
            try:
                flat = ((family, series) for family, parts in spooled.families() for part in parts
                        for series in part)
                for batch in iter(lambda: list(islice(flat, size)), []):
                    samples = sum(len(series.points) for _, series in batch)
                    description = (f"WriteRequest of {len(batch)} series, {samples} samples, "
                                   f"{len(write_request(batch))} bytes before snappy; as OpenMetrics:\n")
                    yield PlannedRequest("POST", self.config.endpoint.url, headers,
                                         description + openmetrics_text(_as_families(batch)))
            finally:
                spooled.close()

        return Planned(-(-spooled.series // size), requests_())

    def send(self, run: Run) -> Delivery:
        all_ids = tuple(event.id for event in run.events)
        failed: Set[str] = set()
        errors: List[str] = []
        refused = False
        stored = 0
        batches = self._batches(run)
        for number, batch in enumerate(batches):
            try:
                response = self._post(batch)
            except Unreachable as error:
                errors.append(str(error))
                for rest in batches[number:]:
                    failed.update(series.event_id for _, series in rest if series.event_id)
                break
            problem = _problem(response)
            if problem is not None:
                errors.append(str(problem))
                refused = refused or isinstance(problem, Refused)
                failed.update(series.event_id for _, series in batch if series.event_id)
            else:
                stored += 1
        if errors and not stored:
            return Delivery(self.label, (), all_ids, errors[0], refused=refused)
        error = None
        if errors:
            error = f"{errors[0]} ({len(batches) - stored} of {len(batches)} request(s) refused)"
        return Delivery(self.label, tuple(i for i in all_ids if i not in failed),
                        tuple(i for i in all_ids if i in failed), error, refused=refused)

    def submit(self, run: Run, done: Callable[[Delivery], None]) -> None:
        """Queue `run` behind the runs submitted before: their series share requests of
        `batch_size` series. `done(delivery)` once every series of the run is written or
        failed; `flush` sends what waits for a full request."""
        if self._shared is None:
            # What a run's outcome keeps of its series: their events' ids, not the series.
            self._shared = CrossRunBatches(self.config.batch_size, self._write, "remote-write",
                                           keep=lambda item: item[1].event_id)

        def finished(outcome: RunOutcome) -> None:
            all_ids = tuple(event.id for event in outcome.run.events)
            if outcome.error is None:
                done(Delivery(self.label, all_ids))
            elif outcome.failed_batches == outcome.batches:
                done(Delivery(self.label, (), all_ids, str(outcome.error), refused=outcome.refused))
            else:
                failed = {event_id for event_id in outcome.failed if event_id}
                done(Delivery(self.label, tuple(i for i in all_ids if i not in failed),
                              tuple(i for i in all_ids if i in failed),
                              f"{outcome.error} ({outcome.failed_batches} of {outcome.batches} request(s) refused)",
                              refused=outcome.refused))

        # The series are made as the batches take them, a slice of the run's activities at a time.
        slices = run_family_slices(run, delivery="remote_write", activities_per_slice=ACTIVITIES_PER_SLICE)
        self._shared.add(run, ((family, series) for families in slices for family in families
                               for series in family.series), finished)

    def flush(self) -> None:
        if self._shared is not None:
            self._shared.flush()

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
        self.session.close()

    def _write(self, batch: List[Tuple[Family, Series]]) -> Tuple[List[Tuple[Family, Series]], list]:
        """POST one request of series (of any runs); raises Unreachable when it did not get through."""
        problem = _problem(self._post(batch))
        if problem is not None:
            raise problem
        return batch, []

    def _post(self, batch: Sequence[Tuple[Family, Series]]) -> requests.Response:
        return self.config.endpoint.request(self.session, "POST", self.config.endpoint.url, "remote write",
                                            headers=_HEADERS, data=snappy_literal_block(write_request(batch)))

    def _batches(self, run: Run) -> List[List[Tuple[Family, Series]]]:
        families = run_families(run, delivery="remote_write")
        flat = [(family, series) for family in families for series in family.series]
        size = self.config.batch_size
        return [flat[start:start + size] for start in range(0, len(flat), size)]


def _problem(response: requests.Response) -> Optional[Unreachable]:
    """Why a request's series were not stored (Refused for refused credentials), or None."""
    problem = unexpected_answer("remote write", response, WRITE_STORED, empty=True)
    if problem is not None and response.status_code >= 300:
        problem = answer_problem("remote write", response, refusal_hint(response.status_code, response.text))
    return problem


def refusal_hint(status: int, body: str) -> str:
    """Why Prometheus refused a write and which setting fixes it, or ''."""
    text = body.lower()
    if status == 404:
        return (" (is this Prometheus' /api/v1/write? Prometheus must run with "
                "--web.enable-remote-write-receiver)")
    if "out of bounds" in text or "too old" in text:
        return (" (the samples are older than Prometheus accepts: set `storage: tsdb: "
                "out_of_order_time_window:` longer than the run's age, e.g. 3650d, in its configuration "
                "file and reload; check --storage.tsdb.retention.time covers it too)")
    if "duplicate sample" in text:
        return (" (other values are already stored at these times: this run was written before "
                "with different data; --shift-to writes it at another time)")
    return ""


def _as_families(batch: Sequence[Tuple[Family, Series]]) -> List[Family]:
    """The batch's series regrouped under their families, for showing them as OpenMetrics."""
    families: Dict[str, Tuple[Family, List[Series]]] = {}
    for family, series in batch:
        families.setdefault(family.name, (family, []))[1].append(series)
    return [Family(family.name, family.help, tuple(series)) for family, series in families.values()]


# -- protobuf (prometheus/prompb/remote.proto, types.proto) ------------------------------------


def write_request(batch: Iterable[Tuple[Family, Series]]) -> bytes:
    """`WriteRequest{timeseries: [TimeSeries{labels (sorted, with __name__), samples}]}`."""
    return b"".join(_length_delimited(1, _time_series(family.name, series)) for family, series in batch)


def _time_series(name: str, series: Series) -> bytes:
    labels = sorted((("__name__", name), *series.labels))
    encoded = [_length_delimited(1, _length_delimited(1, key.encode("utf-8"))
                                 + _length_delimited(2, value.encode("utf-8")))
               for key, value in labels]
    # Sample{double value = 1; int64 timestamp = 2 (ms)}: tags 0x09 (fixed64) and 0x10 (varint).
    encoded.extend(_length_delimited(2, b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(timestamp))
                   for timestamp, value in series.points)
    return b"".join(encoded)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _varint(number: int) -> bytes:
    number &= 0xFFFFFFFFFFFFFFFF  # int64 as protobuf sends it: two's complement
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


# -- snappy block format (github.com/google/snappy/blob/main/format_description.txt) ----------


def snappy_literal_block(data: bytes) -> bytes:
    """`data` as a snappy block: its length, then literal elements of at most 64 KiB."""
    out = bytearray(_varint(len(data)))
    for start in range(0, len(data), _SNAPPY_MAX_LITERAL):
        chunk = data[start:start + _SNAPPY_MAX_LITERAL]
        length = len(chunk) - 1
        if length < 60:
            out.append(length << 2)
        elif length < 256:
            out += bytes((60 << 2, length))
        else:
            out += bytes((61 << 2,)) + length.to_bytes(2, "little")
        out += chunk
    return bytes(out)
