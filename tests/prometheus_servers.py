"""Real Prometheus servers for the tests (Debian's `prometheus-pushgateway` and `prometheus`).

One pushgateway and one Prometheus per session: Prometheus scrapes the
pushgateway every second with `honor_labels`, accepts remote write and old
samples (out-of-order window 3650 d, retention 100 y). Its first scrape comes
~6 s after start, so tests poll (`Prometheus.wait_for`).

Import the fixtures into a test module:
`from tests.prometheus_servers import pushgateway, prometheus`.
"""
import os
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import pytest
import requests

from tests.procs import ServerProcess, free_port, require_binary, start_server
from tests.tls import Pki

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1m
{storage}
scrape_configs:
{scrape}
"""
OUT_OF_ORDER_STORAGE = """\
storage:
  tsdb:
    out_of_order_time_window: 3650d
"""
PUSHGATEWAY_SCRAPE = """\
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["{target}"]
"""


WEB_CONFIG_TLS = """\
tls_server_config:
  cert_file: "{certificate}"
  key_file: "{key}"
"""


def _https(workdir: str, tls: Optional[Pki]) -> List[str]:
    """The `--web.config.file` argument serving HTTPS with `tls`'s server certificate, if any."""
    if not tls:
        return []
    path = os.path.join(workdir, "web-config.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(WEB_CONFIG_TLS.format(certificate=tls.server_cert, key=tls.server_key))
    return [f"--web.config.file={path}"]


def start_pushgateway(workdir: str, tls: Optional[Pki] = None) -> ServerProcess:
    """A pushgateway on a free port; on HTTPS with `tls`."""
    binary = require_binary("prometheus-pushgateway", "prometheus-pushgateway")
    port = free_port()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={os.path.join(workdir, 'pushgateway.persistence')}",
            "--web.enable-admin-api", *_https(workdir, tls)]
    return start_server("pushgateway", argv, f"{url}/-/ready", url, workdir=workdir,
                        verify=tls.ca if tls else True)


def start_prometheus(workdir: str, scrape: Optional[str] = None, out_of_order: bool = True,
                     tsdb_path: Optional[str] = None, tls: Optional[Pki] = None) -> ServerProcess:
    """Prometheus on a free port; `scrape` a host:port to scrape, `tsdb_path` existing blocks to
    serve; on HTTPS with `tls`."""
    binary = require_binary("prometheus", "prometheus")
    port = free_port()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    os.makedirs(workdir, exist_ok=True)
    config_path = os.path.join(workdir, "prometheus.yml")
    with open(config_path, "w", encoding="utf-8") as handle:
        handle.write(PROMETHEUS_CONFIG.format(
            storage=OUT_OF_ORDER_STORAGE if out_of_order else "",
            scrape=PUSHGATEWAY_SCRAPE.format(target=scrape) if scrape else "  []"))
    argv = [binary, f"--config.file={config_path}",
            f"--storage.tsdb.path={tsdb_path or os.path.join(workdir, 'data')}",
            f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=100y", *_https(workdir, tls)]
    return start_server("prometheus", argv, f"{url}/-/ready", url, workdir=workdir,
                        verify=tls.ca if tls else True)


@dataclass
class Prometheus:
    """A running Prometheus and its query API."""

    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, expr: str, at: Optional[float] = None) -> List[dict]:
        """The instant vector of `expr` (at Unix time `at`), as Prometheus returns it."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = requests.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        payload = response.json()
        assert payload["status"] == "success", payload
        return payload["data"]["result"]

    def wait_for(self, expr: str, done: Callable[[List[dict]], bool], timeout: float = 30.0,
                 at: Optional[float] = None) -> List[dict]:
        """Poll `expr` until `done(result)`; fail with the last result after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr, at)
            if done(result):
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"{expr}: not there after {timeout:g} s; last result {result!r}\n"
                            f"{self.server.log_tail()}", pytrace=False)
            time.sleep(0.1)


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory):
    server = start_pushgateway(str(tmp_path_factory.mktemp("pushgateway")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory, pushgateway):
    target = pushgateway.url.split("://", 1)[1]
    server = start_prometheus(str(tmp_path_factory.mktemp("prometheus")), scrape=target)
    yield Prometheus(server)
    server.stop()
