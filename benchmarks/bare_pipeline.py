"""The least Python that does chaos-replay's job on the benchmark's journals: a floor to measure against.

    python benchmarks/bare_pipeline.py JOURNAL INFLUX_URL DATABASE   # replay, as chaos-replay does
    python benchmarks/bare_pipeline.py JOURNAL --lines               # print the activities' lines

For each activity of a journal shaped like `influx_replay.synthetic_journal`'s, it
makes what chaos-replay must make: the event id (a SHA-256, our id rule), the two
timestamps, the same InfluxDB line (its sub-microsecond offset is a second SHA-256)
and the same timeline line, printed; the lines are POSTed 5,000 a request, as
chaos-replay does. Nothing else: no check of the input, no other journal shape,
no masking of secrets, no retries, no threads, only the standard library (even
the HTTP client), so no start-up beyond the interpreter's.

`benchmarks/influx_replay.py` checks that its lines are ours, then measures its CPU
per event in the same rounds as chaos-replay's: what a pure-Python replay cannot
go below, whatever it is built like.
"""
import http.client
import json
import sys
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from urllib.parse import urlsplit

MEASUREMENT = "chaostoolkit_events"
BATCH = 5_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


def digest(*parts) -> str:
    return sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def escaped(text: str) -> str:
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def activity_lines(path: str):
    """(InfluxDB line, timeline line) of each activity of the journal, in order."""
    with open(path, "rb") as handle:
        journal = json.loads(handle.read())
    title = journal["experiment"]["title"]
    run_id = digest("run", title, journal["start"], journal["node"])
    id_prefix = f"{run_id}\x1factivity\x1fmethod\x1f"
    origin = datetime.fromisoformat(journal["start"])
    series_of, ordinals = {}, {}
    for entry in journal["run"]:
        activity = entry["activity"]
        name, kind, status = activity["name"], activity["type"], entry["status"]
        start, end = datetime.fromisoformat(entry["start"]), datetime.fromisoformat(entry["end"])
        ordinal = ordinals.get(name, 0)
        ordinals[name] = ordinal + 1
        event_id = sha256(f"{id_prefix}{name}\x1f{ordinal}".encode()).hexdigest()[:16]
        series = series_of.get((kind, name, status))
        if series is None:
            series = series_of[(kind, name, status)] = (
                f"{MEASUREMENT},activity_type={kind},experiment={escaped(title)},kind=activity,"
                f"name={escaped(name)},phase=method,run_id={run_id},status={status}")
        start_us, end_us = (start - EPOCH) // MICROSECOND, (end - EPOCH) // MICROSECOND
        offset = int.from_bytes(sha256(event_id.encode()).digest()[:4], "big") % 1000
        duration = (end_us - start_us) / 1_000_000
        yield (f'{series} event_id="{event_id}",text="{kind} {name} {status} in {duration:.3f}s",'
               f'duration={duration!r},end_ms={end_us // 1000}i,provider="{activity["provider"]["type"]}" '
               f"{start_us * 1000 + offset}",
               f"  {(start - origin).total_seconds():>+10.3f}s {duration:>9.3f}s      {kind:<12} {name}  [{status}]")


def replay(path: str, url: str, database: str) -> None:
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    batch, shown = [], []
    for line, timeline_line in activity_lines(path):
        batch.append(line)
        shown.append(timeline_line)
        if len(batch) == BATCH:
            post(connection, database, batch)
            sys.stdout.write("\n".join(shown) + "\n")
            batch, shown = [], []
    if batch:
        post(connection, database, batch)
        sys.stdout.write("\n".join(shown) + "\n")


def post(connection: http.client.HTTPConnection, database: str, lines) -> None:
    connection.request("POST", f"/write?db={database}", body="\n".join(lines).encode())
    response = connection.getresponse()
    body = response.read()
    if response.status != 204:
        sys.exit(f"write refused: {response.status} {body[:200]!r}")


if __name__ == "__main__":
    if sys.argv[2:] == ["--lines"]:
        for line, _ in activity_lines(sys.argv[1]):
            print(line)
    else:
        replay(*sys.argv[1:4])
