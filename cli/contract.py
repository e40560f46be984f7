"""`vigil contract`: compile contracts and run their methods locally, without a node.

Values on the command line and in state files are JSON in the convention of
:mod:`vm.jsonvalues` (bytes as ``{"$bytes": "<hex>"}``, tuples as
``{"$tuple": [...]}``). A state file is one JSON object mapping storage keys
to values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from cli.output import emit, json_flag, wants_json
from cli.render import plain
from consensus.crypto import is_acceptable_public_key
from vm.bytecode import code_hash, encode_module
from vm.compiler import compile_source
from vm.errors import CompileError, VMError
from vm.gas import DEFAULT_GAS_LIMIT, MAX_GAS_LIMIT, MAX_STORAGE_VALUE_BYTES
from vm.host import DEFAULT_CALLER, InMemoryHost
from vm.interpreter import Program, Result, load, prepare
from vm.jsonvalues import JSONValueError, from_json, to_json
from vm.values import decode_value, encode_value

BYTECODE_SUFFIX = ".vbc"
"""Files with this suffix hold serialized bytecode (as written by `compile --out`)."""

CONTRACT_NAME = "contract"
"""Storage namespace of the contract run by `vigil contract run`."""


def _read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror}") from None


def _compile(path: Path) -> Any:
    try:
        return compile_source(_read_source(path), str(path))
    except CompileError as exc:
        for err in exc.errors:
            click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except VMError as exc:
        click.echo(f"error: {exc.kind}: {exc}", err=True)
        sys.exit(1)


def _load_program(path: Path) -> Program:
    """A verified program from contract source or, for ``.vbc`` files, serialized bytecode."""
    if path.suffix != BYTECODE_SUFFIX:
        return prepare(_compile(path))
    try:
        return load(path.read_bytes())
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror}") from None
    except VMError as exc:
        click.echo(f"error: {path}: {exc.kind}: {exc}", err=True)
        sys.exit(1)


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_float=_no_float, parse_constant=_no_float)
    except (ValueError, RecursionError) as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from None


def _no_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer (floats are not VM values)")


@click.group()
def contract() -> None:
    """Compile contracts and run them locally; deploy, call and query them on a chain."""


@contract.command("compile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the serialized bytecode (.vbc) here.",
)
@json_flag
def compile_cmd(file: Path, out: Path | None) -> None:
    """Compile FILE.py; print its code hash and size, or the compile error (exit 1)."""
    data = encode_module(_compile(file))
    if out is not None:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise click.ClickException(f"{out}: cannot write: {exc.strerror}") from None
    if wants_json():
        emit({"code_hash": code_hash(data).hex(), "bytes": len(data)})
        return
    click.echo(f"code hash: {code_hash(data).hex()}")
    click.echo(f"size: {len(data)} bytes")


@contract.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("method")
@click.argument("args", default="[]")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON object of storage key -> value to start from (a missing file starts empty).",
)
@click.option("--save-state", is_flag=True, help="On success write the new storage to --state.")
@click.option("--caller", default=DEFAULT_CALLER.hex(), help="Caller public key (64 hex digits).")
@click.option("--org", default="org", show_default=True, help="Caller's organisation.")
@click.option("--members", default="org", show_default=True, help="Member orgs, comma-separated.")
@click.option("--height", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--time", "time_ms", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--gas",
    default=DEFAULT_GAS_LIMIT,
    show_default=True,
    type=click.IntRange(0, MAX_GAS_LIMIT),
    help="Gas limit of the call.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def run_cmd(
    file: Path,
    method: str,
    args: str,
    state_file: Path | None,
    save_state: bool,
    caller: str,
    org: str,
    members: str,
    height: int,
    time_ms: int,
    gas: int,
    as_json: bool,
) -> None:
    """Run METHOD of FILE.py (or compiled FILE.vbc) with ARGS (a JSON array) on an in-memory ledger.

    Prints the result, events, storage writes and gas used. A failed call
    (require, out of gas, a limit, a run-time error) exits with status 1 and
    names the error's kind.
    """
    call_args = _parse_json(args, "ARGS")
    if type(call_args) is not list:
        raise click.BadParameter("ARGS must be a JSON array")
    try:
        call_args = from_json(call_args)
    except JSONValueError as exc:
        raise click.BadParameter(f"ARGS: {exc}") from None
    try:
        caller_key = bytes.fromhex(caller)
    except ValueError:
        raise click.BadParameter("--caller must be hexadecimal") from None
    if len(caller_key) != 32:
        raise click.BadParameter("--caller must be 64 hex digits (a 32-byte public key)")
    if save_state and state_file is None:
        raise click.BadParameter("--save-state needs --state")
    storage = _load_state(state_file) if state_file is not None and state_file.exists() else {}
    program = _load_program(file)
    host = InMemoryHost(
        contract=CONTRACT_NAME,
        state={CONTRACT_NAME: storage},
        caller_key=caller_key,
        org=org,
        block_height=height,
        block_time=time_ms,
        member_orgs=[m for m in members.split(",") if m],
        key_check=is_acceptable_public_key,
    )
    result = host.run(program, method, call_args, gas_limit=gas)
    _report(result, as_json)
    if result.error is not None:
        sys.exit(1)
    if save_state and state_file is not None:
        _save_state(state_file, host.state.get(CONTRACT_NAME, {}))


def _load_state(path: Path) -> dict[str, bytes]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read state: {exc}") from None
    doc = _parse_json(text, f"state file {path}")
    if type(doc) is not dict:
        raise click.ClickException(f"{path}: state must be a JSON object of key -> value")
    storage = {}
    for key, value in doc.items():
        try:
            storage[key] = encode_value(from_json(value), MAX_STORAGE_VALUE_BYTES)
        except (JSONValueError, VMError) as exc:
            raise click.ClickException(f"{path}: value of {key!r}: {exc}") from None
    return storage


def _save_state(path: Path, storage: dict[str, bytes]) -> None:
    doc = {k: to_json(decode_value(v, MAX_STORAGE_VALUE_BYTES)) for k, v in storage.items()}
    try:
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot write state: {exc.strerror}") from None


def _report(result: Result, as_json: bool) -> None:
    events = [{"name": n, "data": to_json(d)} for n, d in result.events]
    writes = [
        {"key": k, "value": None if v is None else to_json(v), "deleted": v is None}
        for k, v in result.writes
    ]
    if as_json:
        doc: dict[str, Any] = {
            "result": to_json(result.value),
            "events": events,
            "writes": writes,
            "gas_used": result.gas_used,
        }
        if result.error is not None:
            doc["error"] = {"kind": result.error.kind, "message": result.error.message}
        click.echo(json.dumps(doc))
        return
    if result.error is not None:
        click.echo(f"error: {result.error.kind}: {result.error.message}", err=True)
        click.echo(f"gas used: {result.gas_used}")
        return
    click.echo(f"result: {json.dumps(plain(result.value))}")
    for name, data in result.events:
        click.echo(f"event: {name} {json.dumps(plain(data))}")
    for key, value in result.writes:
        if value is None:
            click.echo(f"delete: {key}")
        else:
            click.echo(f"write: {key} = {json.dumps(plain(value))}")
    click.echo(f"gas used: {result.gas_used}")
