"""HTTPS on the API (issue 16, item 1): `vigil node init --api-tls` makes the certificate, a
real node serves it, the CLI trusts it with --cacert / VIGIL_CACERT and refuses it without;
a missing or bad certificate or key is a clear configuration error."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from cli.main import main
from node import localnet
from node.config import ConfigError, Home, NodeConfig
from node.run import api_tls_context
from node.tls import API_CERT_FILE, API_KEY_FILE, api_names, make_api_certificate


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


# ---------------------------------------------------------------------- configuration


def home_with_certificate(tmp_path: Path, host: str = "127.0.0.1") -> Path:
    home = tmp_path / "home"
    home.mkdir()
    make_api_certificate(home, host)
    return home


def test_a_generated_certificate_names_the_api_host_and_its_key_is_private(
    tmp_path: Path,
) -> None:
    home = home_with_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate((home / API_CERT_FILE).read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert stat.S_IMODE((home / API_KEY_FILE).stat().st_mode) == 0o600
    assert api_tls_context(Home(home), config(API_CERT_FILE, API_KEY_FILE)) is not None
    assert [n.value for n in api_names("api.bank.example")] == ["api.bank.example"]
    wildcard = {str(n.value) for n in api_names("0.0.0.0")}
    assert {"localhost", "127.0.0.1"} <= wildcard


def config(cert: str, key: str) -> NodeConfig:
    return NodeConfig("127.0.0.1:1", "127.0.0.1:2", api_tls_cert=cert, api_tls_key=key)


def test_no_certificate_settings_mean_plain_http(tmp_path: Path) -> None:
    assert api_tls_context(Home(tmp_path), config("", "")) is None
    assert config("", "").api_url == "http://127.0.0.1:2"
    assert config("a", "b").api_url == "https://127.0.0.1:2"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda h: (h / API_CERT_FILE).unlink(), "api_tls_cert: {home}/api-tls.crt: no such file"),
        (lambda h: (h / API_KEY_FILE).unlink(), "api_tls_key: {home}/api-tls.key: no such file"),
        (lambda h: (h / API_KEY_FILE).chmod(0o644),
         "api_tls_key: {home}/api-tls.key: permissions 0644 let others read this private key; "
         "run `chmod 600 {home}/api-tls.key`"),
        (lambda h: (h / API_KEY_FILE).write_text("not a key\n"),
         "api_tls_key: {home}/api-tls.key: not an unencrypted PEM private key"),
        (lambda h: (h / API_CERT_FILE).write_text("-----BEGIN CERTIFICATE-----\nAAAA\n"),
         "api_tls_cert: {home}/api-tls.crt: not a PEM certificate"),
        (lambda h: make_api_certificate(h / "other", "127.0.0.1") and shutil.copy(
            h / "other" / API_KEY_FILE, h / API_KEY_FILE),
         "api_tls_key: {home}/api-tls.key does not match the certificate {home}/api-tls.crt"),
    ],
)  # fmt: skip
def test_a_bad_certificate_or_key_is_a_clear_error(tmp_path: Path, change, expected) -> None:  # type: ignore[no-untyped-def]
    home = home_with_certificate(tmp_path)
    (home / "other").mkdir()
    change(home)
    with pytest.raises(ConfigError) as err:
        api_tls_context(Home(home), config(API_CERT_FILE, API_KEY_FILE))
    assert expected.format(home=home) in str(err.value)
    assert str(err.value).startswith(f"{home}/config.json: ")


def test_half_the_settings_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="api_tls_key is not set: HTTPS on the API needs both"):
        api_tls_context(Home(tmp_path), config(API_CERT_FILE, ""))


def test_peer_tls_must_be_a_boolean(tmp_path: Path) -> None:
    obj = {"peer_listen": "127.0.0.1:1", "api_listen": "127.0.0.1:2", "peer_tls": "no"}
    with pytest.raises(ConfigError, match="peer_tls must be true or false"):
        NodeConfig.from_json_obj(obj, "config.json")
    assert NodeConfig.from_json_obj(obj | {"peer_tls": False}, "x").peer_tls is False
    assert NodeConfig.from_json_obj({k: obj[k] for k in list(obj)[:2]}, "x").peer_tls is True


# ---------------------------------------------------------------------- a real node


@pytest.fixture(scope="module")
def https_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localnet.LocalNode]:
    """A one-node network whose home was initialised with `vigil node init --api-tls`."""
    directory = tmp_path_factory.mktemp("https")
    net = localnet.create(directory, 1)
    [node] = net.nodes
    key_copy = directory / "node-org1.key"
    shutil.copy(node.home / "node.key", key_copy)
    os.chmod(key_copy, 0o600)
    code, out = cli("node", "init", "--home", str(node.home), "--genesis", str(net.genesis_path),
                    "--key", str(key_copy), "--force", "--api-tls")  # fmt: skip
    assert code == 0, out
    assert f"api       https://{node.api}" in out
    assert f"api cert  {node.home / API_CERT_FILE}" in out
    [node] = localnet.load(directory).nodes
    assert node.url == f"https://{node.api}"
    proc = localnet.start(node)
    try:
        yield node
    finally:
        localnet.stop(proc)


def wait_up(node: localnet.LocalNode, cacert: Path) -> dict:
    for _ in range(300):
        genesis = str(node.home.parent / "genesis.json")
        code, out = cli("status", "--node", node.url, "--cacert", str(cacert), "--json",
                        "--genesis", genesis)  # fmt: skip
        if code == 0:
            return json.loads(out)
        assert code == 4, out  # not up yet; anything else is a failure now
        time.sleep(0.2)
    pytest.fail(
        f"the node never answered over HTTPS: {out}\n{(node.home / 'node.log').read_text()}"
    )


@pytest.mark.slow
def test_the_cli_talks_https_with_the_generated_certificate(
    https_node: localnet.LocalNode, tmp_path: Path
) -> None:
    cacert = https_node.home / API_CERT_FILE
    status = wait_up(https_node, cacert)
    assert status["chain_id"] == localnet.CHAIN_ID
    data = tmp_path / "hello.txt"
    data.write_text("over https\n")
    client = str(https_node.home.parent / "client.key")
    code, out = cli("anchor", str(data), "--key", client, "--node", https_node.url, "--wait",
                    env={"VIGIL_CACERT": str(cacert)})  # fmt: skip
    assert code == 0 and "committed" in out, out
    log = (https_node.home / "node.log").read_text()
    assert f"api https://{https_node.api}" in log


@pytest.mark.slow
def test_without_the_certificate_the_cli_refuses_with_a_clear_message(
    https_node: localnet.LocalNode, tmp_path: Path
) -> None:
    cacert = https_node.home / API_CERT_FILE
    wait_up(https_node, cacert)
    code, out = cli("status", "--node", https_node.url, "--no-verify", env={"VIGIL_CACERT": ""})
    assert code == 4, out
    assert f"the node at {https_node.url}" in out
    assert "presented a TLS certificate this machine does not trust" in out
    assert "pass --cacert FILE (or VIGIL_CACERT=FILE)" in out
    # Another certificate is no better, and the message says to check which file it is.
    other = tmp_path / "other"
    other.mkdir()
    make_api_certificate(other, "127.0.0.1")
    code, out = cli("status", "--node", https_node.url, "--no-verify",
                    "--cacert", str(other / API_CERT_FILE))  # fmt: skip
    assert code == 4 and f"is {other / API_CERT_FILE} that node's certificate" in out, out
    code, out = cli("status", "--node", https_node.url, "--no-verify",
                    "--cacert", str(tmp_path / "missing.crt"))  # fmt: skip
    assert code == 2 and "missing.crt: no such file" in out, out


@pytest.mark.slow
def test_node_run_names_a_bad_api_key_and_exits(tmp_path: Path) -> None:
    """The real `vigil node run`: a key file others can read stops it before it listens."""
    net = localnet.create(tmp_path / "net", 1)
    [node] = net.nodes
    make_api_certificate(node.home, "127.0.0.1")
    path = node.home / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {
        "api_tls_cert": API_CERT_FILE, "api_tls_key": API_KEY_FILE}))  # fmt: skip
    (node.home / API_KEY_FILE).chmod(0o640)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "node", "run", "--home", str(node.home)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done
    assert "permissions 0640 let others read this private key" in done.stderr
    assert "Traceback" not in done.stderr
