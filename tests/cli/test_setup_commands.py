"""`vigil keygen` and `vigil genesis` as a user runs them."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from consensus.crypto import PrivateKey, key_hex
from node.app.genesis import Genesis


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_keygen_prints_public_key_and_writes_0600(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    code, out = run("keygen", "--out", str(path))
    assert code == 0
    assert out.strip() == key_hex(PrivateKey.load(path).public)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    run("keygen", "--out", str(path))
    before = PrivateKey.load(path).public
    code, out = run("keygen", "--out", str(path))
    assert code != 0 and "already exists" in out and "--force" in out
    assert PrivateKey.load(path).public == before
    code, out = run("keygen", "--out", str(path), "--force")
    assert code == 0 and out.strip() != key_hex(before)


def make_keys(tmp_path: Path, n: int) -> list[str]:
    return [run("keygen", "--out", str(tmp_path / f"k{i}.key"))[1].strip() for i in range(n)]


def test_genesis_writes_a_loadable_file(tmp_path: Path) -> None:
    k = make_keys(tmp_path, 5)
    out = tmp_path / "genesis.json"
    code, text = run(
        "genesis", "--chain-id", "vigil-banks",
        "--member", f"bank-a={k[0]}@127.0.0.1:26601,127.0.0.1:26701", "--admin", f"bank-a={k[2]}",
        "--member", f"bank-b={k[1]}@127.0.0.1:26602,127.0.0.1:26702", "--admin", f"bank-b={k[3]}",
        "--client", f"bank-a={k[4]}:submit,audit",
        "--param", "max_block_txs=500", "--time-ms", "42", "--out", str(out),
    )  # fmt: skip
    assert code == 0, text
    g = Genesis.load(out)
    assert f"genesis hash {key_hex(g.hash())}" in text
    assert [m.org for m in g.members] == ["bank-a", "bank-b"]
    assert g.param("max_block_txs") == 500
    assert g.clients[0].roles == ("audit", "submit")
    assert g.genesis_time_ms == 42


def test_genesis_errors_are_clear_and_write_nothing(tmp_path: Path) -> None:
    k = make_keys(tmp_path, 2)
    out = tmp_path / "genesis.json"
    member = f"a={k[0]}@127.0.0.1:1,127.0.0.1:2"
    cases = [
        (["--member", member], "has no admin key"),
        (["--member", "a=xyz"], "expected ORG=PUBKEY@PEERHOST:PORT,APIHOST:PORT"),
        (["--member", member, "--admin", f"b={k[1]}"], "is not a --member org"),
        (["--member", member, "--admin", "a=abcd"], "genesis.members[0].admins[0]"),
        (["--member", member, "--admin", f"a={k[1]}", "--param", "x=1"], "unknown ['x']"),
        (
            ["--member", member, "--admin", f"a={k[1]}", "--param", "max_block_txs=lots"],
            "not an integer",
        ),
        (
            ["--member", member, "--admin", f"a={k[1]}", "--client", f"a={k[1]}:god"],
            "is not one of",
        ),
    ]
    for args, message in cases:
        code, text = run("genesis", "--chain-id", "c", *args, "--out", str(out))
        assert code != 0, args
        assert message in text, (args, text)
        assert not out.exists()


def test_genesis_refuses_to_overwrite(tmp_path: Path) -> None:
    k = make_keys(tmp_path, 1)
    out = tmp_path / "genesis.json"
    out.write_text("precious")
    code, text = run(
        "genesis",
        "--chain-id",
        "c",
        "--member",
        f"a={k[0]}@h:1,h:2",
        "--admin",
        f"a={k[0]}",
        "--out",
        str(out),
    )
    assert code != 0 and "already exists" in text
    assert out.read_text() == "precious"


def test_help_reads_well() -> None:
    code, text = run("--help")
    assert code == 0
    for word in ("keygen", "genesis", "consortium"):
        assert word in text
    code, text = run("genesis", "--help")
    assert "ORG=PUBKEY@PEERHOST:PORT,APIHOST:PORT" in text


def test_gov_commands_refuse_weak_keys(tmp_path: Path) -> None:
    """Regression: parse_key_hex accepted small-order keys such as the identity point."""
    weak = "01" + "00" * 31
    good = key_hex(PrivateKey.generate().public)
    key = str(tmp_path / "none.key")
    code, out = run("gov", "propose", "authorize-client", weak, "--org", "a", "--role", "submit",
                    "--key", key)  # fmt: skip
    assert code == 2 and "small order" in out
    code, out = run("gov", "propose", "add-member", "org-x", "--node-key", good, "--peer", "h:1",
                    "--api", "h:2", "--admin", weak, "--key", key)  # fmt: skip
    assert code == 2 and "small order" in out


def test_the_default_node_is_the_first_one_localnet_starts() -> None:
    from cli.client import DEFAULT_NODE
    from node.localnet import DEFAULT_BASE_PORT

    assert f"http://127.0.0.1:{DEFAULT_BASE_PORT + 100}" == DEFAULT_NODE


def test_an_unreachable_node_exits_4_and_vigil_key_names_the_key(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    result = CliRunner().invoke(main, ["status", "--node", closed, "--no-verify"])
    assert result.exit_code == 4 and "cannot reach the node" in result.output
    data = tmp_path / "x.txt"
    data.write_text("x")
    missing_key = tmp_path / "nokey"
    result = CliRunner().invoke(
        main, ["anchor", str(data), "--node", closed], env={"VIGIL_KEY": str(missing_key)}
    )
    assert result.exit_code == 1 and str(missing_key) in result.output  # VIGIL_KEY was used


def test_several_nodes_are_tried_in_order_and_quorum_needs_enough_of_them() -> None:
    from click.testing import CliRunner

    from cli.main import main

    closed = ["http://127.0.0.1:9", "http://127.0.0.1:7"]  # nothing listens on either
    result = CliRunner().invoke(
        main, ["status", "--no-verify"], env={"VIGIL_NODE": ",".join(closed)}
    )
    assert result.exit_code == 4 and "no node answered" in result.output
    assert all(url in result.output for url in closed)
    result = CliRunner().invoke(
        main, ["status", "--no-verify", "--node", closed[0], "--quorum", "2"]
    )
    assert result.exit_code == 2 and "--quorum 2 needs at least 2 --node URLs" in result.output
    result = CliRunner().invoke(
        main, ["status", "--no-verify", "--node", closed[0], "--node", closed[1], "--quorum", "2"]
    )
    assert result.exit_code == 4 and "only 0 of the 2 nodes asked for answered" in result.output


def test_a_halt_for_a_full_disk_says_to_free_space_not_to_resync() -> None:
    from cli.node_cmd import halt_hint

    full = "cannot commit block 156: b'IO error: data/000003.log: No space left on device'"
    assert halt_hint(full).startswith("free disk space")
    assert "--resync" in halt_hint("certified block 12 does not apply: state root differs")
