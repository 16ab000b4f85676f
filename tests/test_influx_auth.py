"""InfluxDB 1.x with authentication on: a real influxd with `auth-enabled = true`."""
import logging
import os

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from tests.conftest import JOURNALS
from tests.influx_server import start_influxd, stored_events

pytestmark = pytest.mark.servers

BASIC = os.path.join(JOURNALS, "generated-basic.json")
USER, PASSWORD = "chaos-writer", "s3cret-pass word"
CLEAN_ENV = {name: None for name in os.environ if name.startswith("INFLUX_")}


@pytest.fixture(scope="module")
def influxd_auth(tmp_path_factory):
    server = start_influxd(str(tmp_path_factory.mktemp("influxd-auth")), auth=True)
    # With no user yet, influxd lets the first admin be created without credentials.
    requests.post(f"{server.url}/query", timeout=10, data={
        "q": f"CREATE USER \"{USER}\" WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES"}).raise_for_status()
    yield server
    server.stop()


def invoke(*args, password=None):
    env = {**CLEAN_ENV, "INFLUX_PASSWORD": password} if password is not None else CLEAN_ENV
    return CliRunner().invoke(replay, [BASIC, *args], env=env, catch_exceptions=False)


def test_user_and_password_store_every_event(influxd_auth):
    result = invoke("--influx-url", influxd_auth.url, "--influx-database", "authed", "--influx-create-database",
                    "--influx-username", USER, password=PASSWORD)
    assert result.exit_code == 0, result.output
    assert stored_events(influxd_auth.url, "authed", auth=(USER, PASSWORD)) == len(read_journal(BASIC).events)
    assert PASSWORD not in result.output


@pytest.mark.parametrize("password, create, refused_request", [
    ("wrong-password", True, "CREATE DATABASE 'refused'"),
    (None, True, "CREATE DATABASE 'refused'"),
    ("wrong-password", False, "write"),
], ids=["wrong password", "no password", "wrong password on write"])
def test_refused_credentials_are_one_line_not_retried_and_never_shown(influxd_auth, caplog, password, create,
                                                                       refused_request):
    with caplog.at_level(logging.DEBUG, logger="chaostoolkit_replay.http"):
        result = invoke("--influx-url", influxd_auth.url, "--influx-database", "refused", "--influx-username",
                        USER, "--influx-retries", "3", *(["--influx-create-database"] if create else []),
                        password=password)
    assert result.exit_code == 5
    [line] = [line for line in result.output.splitlines() if "NOT delivered" in line]
    assert line.endswith(f"NOT delivered 10: {refused_request}: HTTP 401 authorization failed")
    assert not [record for record in caplog.records if "retrying" in record.getMessage()], "a refusal is final"
    assert PASSWORD not in result.output and "wrong-password" not in result.output
    assert "Traceback" not in result.output
    databases = requests.get(f"{influxd_auth.url}/query", auth=(USER, PASSWORD), timeout=10,
                             params={"q": "SHOW DATABASES"}).json()["results"][0]["series"][0]["values"]
    assert ["refused"] not in databases
