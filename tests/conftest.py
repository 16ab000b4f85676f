import os
import sys
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "fixtures")
JOURNALS = os.path.join(FIXTURES, "journals")

if REPO not in sys.path:
    sys.path.insert(0, REPO)


def expected_annotation_kinds(run) -> Counter:
    """How many Grafana annotations of each kind a run gives, from its events alone: one per
    experiment, activity, interruption and mark, one region for the method, one point per
    steady-state hypothesis not met; hypotheses that held and other phases show nothing."""
    expected: Counter = Counter()
    for event in run.events:
        if event.kind != "phase":
            expected[event.kind] += 1
        elif event.phase == "method":
            expected["method"] += 1
        elif event.fields.get("steady_state_met") is False:
            expected["steady-state"] += 1
    return expected


# The session fixtures of tests/influx_server.py and tests/prometheus_servers.py: each starts a real server.
REAL_SERVER_FIXTURES = frozenset({"influxd", "influx_db", "pushgateway", "prometheus"})


def pytest_collection_modifyitems(config, items):
    """A test that uses a real server's fixture is a `servers` test even where its module does not say
    so: scripts/test leaves those out on the Pythons that run the interpreter-sensitive subset.

    The packaging tests go first: with two workers (scripts/test: -n 2 --dist loadfile
    --no-loadscope-reorder) their minute of building and installing runs beside everything else,
    where last it would leave the other worker idle that long."""
    import pytest

    for item in items:
        if REAL_SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)
    items.sort(key=lambda item: item.nodeid.split("::")[0] != "tests/test_packaging.py")
