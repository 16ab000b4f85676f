"""Start and stop real servers (influxd, pushgateway, prometheus) for the tests.

Locally without the binary a server test skips with the reason; under
``CI=true`` a missing binary or a server that does not come up is a failure.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import List, Optional, Union

import pytest
import requests

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(name: str, package: str) -> str:
    """Path of `name`, or skip (locally) / fail (CI) saying which package provides it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path:
        return path
    message = f"{name} not found: install Debian's {package} (scripts/setup-servers does)"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    name: str
    url: str
    process: subprocess.Popen
    workdir: str
    log_path: str
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""


def start_server(
    name: str,
    argv: List[str],
    ready_url: str,
    url: str,
    workdir: Optional[str] = None,
    timeout: float = 30.0,
    ready_status=(200, 204),
    verify: Union[bool, str] = True,
) -> ServerProcess:
    """Start `argv`, wait until `ready_url` answers, and return the running server.

    `verify`: the CA bundle of a server on HTTPS, as requests takes it."""
    workdir = workdir or tempfile.mkdtemp(prefix=f"ctkreplay-{name}-")
    log_path = os.path.join(workdir, f"{name}.log")
    log = open(log_path, "wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    log.close()
    server = ServerProcess(name, url, process, workdir, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(ready_url, timeout=1, verify=verify).status_code in ready_status:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    tail = server.log_tail()
    server.stop()
    message = f"{name} did not become ready at {ready_url}:\n{tail}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
