"""A throw-away certificate authority for the TLS tests, made with the `openssl` command.

`make_pki(directory)` writes a CA, a server certificate for 127.0.0.1 and a
client certificate, all signed by that CA and valid for two days, with the
extensions strict verifiers ask for (Python 3.13's VERIFY_X509_STRICT).
"""
import os
import subprocess
from dataclasses import dataclass

from tests.procs import require_binary

_CA_EXTENSIONS = """\
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""
_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1
"""


@dataclass(frozen=True)
class Pki:
    ca: str  # the CA certificate: what a client's CA bundle holds
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_pki(directory: str) -> Pki:
    openssl = require_binary("openssl", "openssl")

    def path(name: str) -> str:
        return os.path.join(directory, name)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    with open(path("ca.ext"), "w", encoding="utf-8") as handle:
        handle.write(_CA_EXTENSIONS)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=chaostoolkit-replay test CA",
        "-keyout", path("ca.key"), "-out", path("ca.pem"), "-extensions", "v3_ca",
        "-config", _openssl_config(path("ca.cnf"), _CA_EXTENSIONS))
    for leaf, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        extensions = path(f"{leaf}.ext")
        with open(extensions, "w", encoding="utf-8") as handle:
            handle.write(_LEAF_EXTENSIONS.format(usage=usage))
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=127.0.0.1 {leaf}",
            "-keyout", path(f"{leaf}.key"), "-out", path(f"{leaf}.csr"))
        run("x509", "-req", "-in", path(f"{leaf}.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", path(f"{leaf}.pem"))
    return Pki(path("ca.pem"), path("server.pem"), path("server.key"), path("client.pem"), path("client.key"))


def _openssl_config(path: str, extensions: str) -> str:
    """A minimal config whose `v3_ca` section holds `extensions` (`req -x509` reads them from there)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[req]\ndistinguished_name = dn\n[dn]\n[v3_ca]\n" + extensions)
    return path
