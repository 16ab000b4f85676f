"""A real influxd (Debian's `influxdb`, 1.6) for the tests: one per session, a fresh database per test.

Import the fixtures into a test module: `from tests.influx_server import influxd, influx_db`.
"""
import os
import uuid
from dataclasses import dataclass
from typing import List, Optional

import pytest
import requests
from influxdb import InfluxDBClient

from tests.procs import ServerProcess, free_port, require_binary, start_server
from tests.tls import Pki

INFLUXD_CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""


INFLUXD_HTTPS = """\
  https-enabled = true
  https-certificate = "{certificate}"
  https-private-key = "{key}"
"""


def start_influxd(workdir: str, tls: Optional[Pki] = None, auth: bool = False) -> ServerProcess:
    """influxd on free loopback ports, all its files under `workdir`; on HTTPS with `tls`;
    with `auth`, every request needs a user (create the first admin without one)."""
    binary = require_binary("influxd", "influxdb")
    port, rpc_port = free_port(), free_port()
    config = INFLUXD_CONFIG.format(workdir=workdir, port=port, rpc_port=rpc_port)
    http_extra = ""
    if tls:
        http_extra += INFLUXD_HTTPS.format(certificate=tls.server_cert, key=tls.server_key)
    if auth:
        http_extra += "  auth-enabled = true\n"
    config = config.replace("  log-enabled = false\n", "  log-enabled = false\n" + http_extra)
    config_path = os.path.join(workdir, "influxd.conf")
    with open(config_path, "w", encoding="utf-8") as handle:
        handle.write(config)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    return start_server("influxd", [binary, "run", "-config", config_path], f"{url}/ping", url,
                        workdir=workdir, verify=tls.ca if tls else True)


def stored_events(url: str, database: str, timeout: float = 10, **request_options) -> int:
    """How many of our points `database` holds (one per event); `request_options` (`verify`,
    `auth`) go to requests."""
    answer = requests.get(f"{url}/query", timeout=timeout, **request_options, params={
        "db": database, "q": 'SELECT count("event_id") FROM "chaostoolkit_events"'}).json()
    series = answer["results"][0].get("series")
    return series[0]["values"][0][1] if series else 0


@dataclass
class InfluxDatabase:
    url: str
    name: str
    client: InfluxDBClient  # an independent reader: the `influxdb` package, not our writer

    def points(self, measurement: str = "chaostoolkit_events") -> List[dict]:
        """Every point of `measurement`, oldest first, times as integer ns."""
        result = self.client.query(f'SELECT * FROM "{measurement}"', epoch="ns")
        return list(result.get_points())

    def series_count(self, measurement: str = "chaostoolkit_events") -> int:
        result = self.client.query(f'SHOW SERIES FROM "{measurement}"')
        return len(list(result.get_points()))


@pytest.fixture(scope="session")
def influxd(tmp_path_factory):
    server = start_influxd(str(tmp_path_factory.mktemp("influxd")))
    yield server
    server.stop()


@pytest.fixture
def influx_db(influxd):
    name = f"test_{uuid.uuid4().hex[:12]}"
    port = int(influxd.url.rsplit(":", 1)[1])
    client = InfluxDBClient(host="127.0.0.1", port=port, database=name, timeout=10)
    client.create_database(name)
    yield InfluxDatabase(influxd.url, name, client)
    client.drop_database(name)
    client.close()
