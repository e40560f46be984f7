"""`vigil model drift NAME`: how far a model family's inputs moved from its training data.

Verified by default: the active model comes from the models contract (a query
re-run here over proven state), the drift record from its state key
``drift/<model id>`` (a proven value), the window and thresholds from the
governance contract, and the training histogram from the artifact, whose bytes
must hash to the active model id. With ``--no-verify`` the node's
``GET /v1/models/NAME/drift`` answer is shown as it is.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import click

from cli.client import call, call_bytes, node_option
from cli.contract_node import queried
from cli.output import emit, json_flag, wants_json
from cli.verify import Verifier, cross_checked, load_genesis, verified_text, verify_options
from consensus.crypto import sha256
from ml.drift import PSI_SCALE, SCORE_EDGES
from node.app.drift_state import DriftRecord, DriftView, drift_key
from node.app.genesis import Genesis


@click.command("drift")
@click.argument("name")
@node_option
@verify_options
@json_flag
def model_drift(name: str, node: str, genesis_file: Path | None, no_verify: bool,
                quorum: int) -> None:  # fmt: skip
    """Show the score drift of model family NAME's active model: the PSI of each closed
    window of committed scores against the training scores, and its level
    (ok < notice <= alarm, thresholds set by governance)."""
    genesis = None if no_verify else load_genesis(genesis_file)
    out = cross_checked(node, quorum, lambda url: _drift(url, genesis, name))
    if wants_json():
        emit(out)
    else:
        click.echo(_text(out))


def _drift(node: str, genesis: Genesis | None, name: str) -> dict[str, Any]:
    if genesis is None:
        answer = call("GET", node, f"/v1/models/{name}/drift")
        return {**answer, "verified": None}
    verifier = Verifier(node, genesis)
    active, verified = queried(node, genesis, "models", "active", [name], verifier)
    if not isinstance(active, dict) or not isinstance(active.get("model_id"), bytes):
        raise click.ClickException(f"no active model named {name!r} (verified)")
    model_id = active["model_id"]
    raw, header, cert = verifier.state(drift_key(model_id))
    try:
        record = DriftRecord() if raw is None else DriftRecord.decode(raw)
    except (AssertionError, TypeError, ValueError) as exc:
        raise click.ClickException(f"the proven drift record does not decode: {exc}") from None
    params = [queried(node, genesis, "governance", "param", [p], verifier)[0]
              for p in ("drift_window", "drift_notice_ppm", "drift_alarm_ppm")]  # fmt: skip
    view = DriftView(name, model_id, _training_bins(node, model_id), record, *params)
    out = _as_json(view, header.height, active.get("version"))
    out["verified"] = verifier.verified(
        f"model {name}'s active model, its drift record and the drift parameters", header, cert
    )
    assert verified is not None
    return out


def _training_bins(node: str, model_id: bytes) -> tuple[int, ...] | None:
    """The artifact's training histogram; the bytes are checked against the proven id."""
    from ml.artifact import load
    from ml.errors import ModelError

    data = call_bytes("GET", node, f"/v1/models/{model_id.hex()}")
    if sha256(data) != model_id:
        raise click.ClickException(f"{node} sent an artifact that is not model {model_id.hex()}")
    try:
        return load(data, expected_id=model_id).training_bins
    except ModelError as exc:
        raise click.ClickException(f"model {model_id.hex()}: {exc}") from None


def _as_json(view: DriftView, height: int, version: object) -> dict[str, Any]:
    """The same fields as the node's GET /v1/models/NAME/drift."""
    record = view.record
    psi = record.last_psi_ppm
    return {
        "model": view.name,
        "model_id": view.model_id.hex(),
        "version": version,
        "height": height,
        "state_key": drift_key(view.model_id).hex(),
        "window": view.window,
        "notice": view.notice_ppm / PSI_SCALE,
        "alarm": view.alarm_ppm / PSI_SCALE,
        "count": record.window_count,
        "bins": list(record.window_bins),
        "total": list(record.total_bins),
        "training": None if view.training_bins is None else list(view.training_bins),
        "edges": [str(e) for e in SCORE_EDGES],
        "windows": record.windows,
        "psi": None if psi is None else psi / PSI_SCALE,
        "level": view.level,
        "history": [{"window": w, "height": h, "psi": p / PSI_SCALE} for w, h, p in record.history],
    }


def _text(out: dict[str, Any]) -> str:
    version = f" v{out['version']}" if out.get("version") is not None else ""
    lines = [f"model {out['model']}{version} (id {out['model_id'][:16]}...): "
             f"drift {out['level'].upper()}"]  # fmt: skip
    if out["training"] is None:
        lines.append("  its artifact has no training histogram (version 1): drift is not measured")
    elif out["psi"] is None:
        lines.append(f"  no window closed yet: {out['count']} of {out['window']} scores counted")
    else:
        last = out["history"][-1] if out["history"] else None
        where = f" (closed at height {last['height']})" if last else ""
        lines.append(
            f"  last window #{out['windows'] - 1}{where}: PSI {out['psi']:.3f} "
            f"(notice at {out['notice']:.3f}, alarm at {out['alarm']:.3f})"
        )
        lines.append(f"  current window: {out['count']} of {out['window']} scores")
        shown = out["history"][-8:]
        recent = "  ".join(f"#{h['window']} {h['psi']:.3f}" for h in shown)
        lines.append(f"  recent windows: {recent}")
        lines += _distribution(out["training"], out["total"], out["edges"])
    lines.append(verified_text(out["verified"]))
    return "\n".join(lines)


def _distribution(training: list[int], total: list[int], edges: list[str]) -> list[str]:
    """Training vs all committed scores per occupied bin, in percent."""
    lines = ["  score bin       training  all committed"]
    t_sum, c_sum = sum(training) or 1, sum(total) or 1
    labels = [f"< {edges[0]}"] + [f"{a}-{b}" for a, b in pairwise(edges)]
    labels.append(f">= {edges[-1]}")
    for label, t, c in zip(labels, training, total, strict=True):
        if t or c:
            lines.append(f"  {label:<14} {100 * t / t_sum:>7.1f}%  {100 * c / c_sum:>12.1f}%")
    return lines
