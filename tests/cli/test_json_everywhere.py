"""Every command takes --json (one JSON object on stdout) and human output shows no VM
JSON wrappers."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner

from cli.main import main
from cli.render import show

NO_JSON = {"node run"}
"""A node process prints logs, not an answer (structured logs are their own option)."""


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append((" ".join((*path, name)), command))
    return found


def test_every_command_but_a_running_node_takes_json() -> None:
    missing = [
        name
        for name, command in _commands(main)
        if name not in NO_JSON and not any("--json" in p.opts for p in command.params)
    ]
    assert missing == []


def test_offline_commands_print_one_json_object(tmp_path: Path) -> None:
    runner = CliRunner()
    key = runner.invoke(main, ["keygen", "--out", str(tmp_path / "k.key"), "--json"])
    assert key.exit_code == 0, key.output
    public = json.loads(key.output)["public_key"]
    assert len(public) == 64
    source = tmp_path / "c.py"
    source.write_text("def hello():\n    return 1\n")
    compiled = runner.invoke(main, ["contract", "compile", str(source), "--json"])
    assert compiled.exit_code == 0, compiled.output
    assert set(json.loads(compiled.output)) == {"code_hash", "bytes"}


def test_people_see_hex_not_vm_json_wrappers() -> None:
    shown = show({"model_id": b"\x01\x02", "anchors": [b"\xff"], "votes": {"org1": True}})
    assert "$bytes" not in shown
    assert "model_id: 0102" in shown and "- ff" in shown and "org1: yes" in shown
