"""`.` and `..` as a pushgateway job or grouping-key value cannot address another group.

requests (like any URL client) removes dot segments: `/metrics/job/..` would
be a PUT to `/metrics`, `/metrics/job/x/instance/..` one to `/metrics/job/x`.
Such values go in the pushgateway's base64 form (`<label>@base64/<value>`),
checked on a recording server (the path that arrived) and on a real
pushgateway (the group it stored).
"""
import base64

import pytest
import requests

from chaosreplay.config import Settings
from chaosreplay.journal import read_journal
from chaosreplay.sinks.pushgateway import targets
from tests.crafted_journals import BASE_JOURNAL, ship_live
from tests.prometheus_servers import pushgateway  # noqa: F401 (fixture)
from tests.recording_server import recorders  # noqa: F401 (fixture)


def b64(value):
    return base64.urlsafe_b64encode(value.encode()).decode()


@pytest.mark.parametrize("job, grouping_key, path", [
    ("..", {}, f"/metrics/job@base64/{b64('..')}/chaostoolkit_experiment_ref/"),
    (".", {}, f"/metrics/job@base64/{b64('.')}/chaostoolkit_experiment_ref/"),
    ("chaos", {"instance": ".."}, f"/metrics/job/chaos/instance@base64/{b64('..')}"),
    ("chaos", {"instance": "."}, f"/metrics/job/chaos/instance@base64/{b64('.')}"),
    ("chaos", {"instance": "..."}, "/metrics/job/chaos/instance/..."),
])
def test_dot_segments_arrive_base64_encoded_from_a_replay_and_a_live_control(recorders, job, grouping_key, path):
    run = read_journal(BASE_JOURNAL)
    replayed, live = recorders(), recorders()
    [target] = targets(Settings(env={}, file={"pushgateway": {"url": replayed.url, "job": job,
                                                              "grouping_key": grouping_key}}))
    assert target.send(run).ok
    ship_live({"pushgateway": {"url": live.url, "job": job, "grouping_key": grouping_key}}, run)
    for server in (replayed, live):
        puts = [request for request in server.requests if request.method == "PUT"]
        assert puts, server.requests
        for put in puts:
            assert put.path.startswith(path), put.path
            assert "/../" not in put.path and not put.path.endswith(("/..", "/."))


@pytest.mark.servers
def test_a_dot_dot_job_is_its_own_group_on_a_real_pushgateway(pushgateway):
    run = read_journal(BASE_JOURNAL)
    [target] = targets(Settings(env={}, cli={"pushgateway_url": pushgateway.url, "pushgateway_job": ".."}))
    delivery = target.send(run)
    assert delivery.ok, delivery.error
    groups = requests.get(f"{pushgateway.url}/api/v1/metrics", timeout=5).json()["data"]
    jobs = [group["labels"].get("job") for group in groups]
    assert ".." in jobs
