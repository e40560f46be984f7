"""`vigil model`: train, inspect, score and merge anomaly-detection models.

File I/O lives here; the ``ml`` package only sees bytes and arrays. Every
output file is written to a temporary name and then linked into place, so an
existing file is never replaced without ``--force`` and a failed run leaves
no partial file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.output import emit, json_flag, wants_json
from consensus.crypto import sha256
from ml.errors import ModelError
from ml.limits import MAX_ARTIFACT_BYTES, MAX_CSV_BYTES, MAX_TOP_K, MAX_TREES

if TYPE_CHECKING:
    from ml.dataset import Dataset
    from ml.explain import Explanations
    from ml.forest import Model
    from ml.score import Scores

# numba and scikit-learn take about a second to import, so the ml modules that
# pull them in are imported inside the commands: `vigil keygen` stays fast.

DEFAULT_TOP_K = 3
"""Features listed per row by `vigil model score` unless --top says otherwise."""

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = click.Path(dir_okay=False, path_type=Path)


def _read(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise click.ClickException(f"{path}: {size} bytes exceeds the limit of {limit}")
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror}") from None


def _write(path: Path, data: bytes, force: bool) -> None:
    """Write ``data`` to ``path`` via a temporary file; refuse to replace unless ``force``."""
    if path.exists() and not force:
        raise click.ClickException(f"{path}: already exists (use --force to replace it)")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot write: {exc.strerror}") from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide the file from the group
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        raise click.ClickException(f"{path}: already exists (use --force to replace it)") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot write: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_model(path: Path) -> Model:
    from ml import artifact

    try:
        return artifact.load(_read(path, MAX_ARTIFACT_BYTES))
    except ModelError as exc:
        raise click.ClickException(f"{path}: not a valid model: {exc}") from None


def _load_csv(path: Path) -> Dataset:
    from ml.dataset import parse_csv

    try:
        return parse_csv(_read(path, MAX_CSV_BYTES))
    except ModelError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _number_or_auto(text: str, name: str, allow_int: bool) -> str | int | float:
    text = text.strip()
    if text == "auto":
        return text
    try:
        if allow_int and text.isdigit():
            return int(text)
        return float(text)
    except ValueError:
        kinds = "'auto', an integer or a fraction" if allow_int else "'auto' or a fraction"
        raise click.BadParameter(f"{text!r}: expected {kinds}", param_hint=name) from None


MAX_TRAINING_FILES = 64
"""CSV files one `vigil model train` reads (each at most MAX_CSV_BYTES)."""


@click.group()
def model() -> None:
    """Anomaly-detection models: train, inspect, score, merge.

    \b
      vigil model train data.csv --out m.vmodel      train an IsolationForest
      vigil model inspect m.vmodel                   show id, schema, contributors
      vigil model score m.vmodel rows.csv            score rows (CSV out)
      vigil model merge a.vmodel b.vmodel --out c.vmodel   federated union
    """


@model.command()
@click.argument("data", type=_FILE, nargs=-1, required=True)
@click.option("--out", required=True, type=_OUT, help="Where to write the model artifact.")
@click.option(
    "--trees", default=100, show_default=True, type=click.IntRange(1, MAX_TREES), help="Trees."
)
@click.option(
    "--max-samples",
    default="auto",
    show_default=True,
    help="Rows per tree: 'auto' (min(256, rows)), a count, or a fraction in (0, 1].",
)
@click.option(
    "--contamination",
    default="auto",
    show_default=True,
    help="'auto' (offset -0.5) or the expected outlier fraction in (0, 0.5].",
)
@click.option(
    "--max-features",
    default="1.0",
    show_default=True,
    help="Features per tree (count or fraction).",
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@json_flag
def train(
    data: tuple[Path, ...],
    out: Path,
    trees: int,
    max_samples: str,
    contamination: str,
    max_features: str,
    seed: int,
    force: bool,
) -> None:
    """Train an IsolationForest on the rows of DATA... (CSVs with one header) and write the
    artifact.

    Each file's SHA-256 and row count are recorded in the artifact as a training dataset.
    Anchor the same files on chain (`vigil anchor FILE`): a chain that requires anchored
    training data approves the model only if every one of them is anchored by a member.
    Raw data never leaves this machine.
    """
    from ml.train import TrainParams, train_csv

    if out.exists() and not force:
        raise click.ClickException(f"{out}: already exists (use --force to replace it)")
    params = TrainParams(
        n_estimators=trees,
        max_samples=_number_or_auto(max_samples, "--max-samples", allow_int=True),
        contamination=_number_or_auto(contamination, "--contamination", allow_int=False),
        max_features=_number_or_auto(max_features, "--max-features", allow_int=True),
        random_state=seed,
    )
    if params.max_features == "auto":
        raise click.BadParameter("'auto' is not a feature count", param_hint="--max-features")
    if len(data) > MAX_TRAINING_FILES:
        raise click.UsageError(f"at most {MAX_TRAINING_FILES} training files")
    raws = [_read(path, MAX_CSV_BYTES) for path in data]
    try:
        result = train_csv(raws, params)
    except ModelError as exc:
        raise click.ClickException(f"{', '.join(map(str, data))}: {exc}") from None
    _write(out, result.model.data, force)
    m = result.model
    rows = dict(m.datasets or ())
    datasets = []
    for path, raw in zip(data, raws, strict=True):
        digest = sha256(raw)
        datasets.append({"file": str(path), "digest": digest.hex(), "rows": rows[digest]})
    if wants_json():
        emit({"file": str(out), "model_id": m.model_id.hex(), "trees": m.n_trees,
              "features": list(m.feature_names), "datasets": datasets})  # fmt: skip
        return
    click.echo(f"wrote {out}: model {m.model_id.hex()}, {m.n_trees} trees, {m.n_features} features")
    for d in datasets:
        click.echo(f"  trained on {d['file']}: {d['rows']} rows, sha256 {d['digest']}")
    click.echo("  anchor these files on chain (vigil anchor FILE) before proposing the model")


def _describe(m: Model) -> dict:
    from ml import artifact

    return {
        "model_id": m.model_id.hex(),
        "format": f"{artifact.MAGIC} v{3 if m.datasets else 2 if m.training_bins else 1}",
        "bytes": len(m.data),
        "features": list(m.feature_names),
        "trees": m.n_trees,
        "offset": m.offset,
        "threshold_path_sum": m.threshold,
        "contributors": [
            {
                "digest": digest.hex(),
                "trees": sub.n_trees,
                "subsample": sub.subsample,
                "hyper_parameters": {
                    "n_estimators": sub.hyper.n_estimators,
                    "max_samples": sub.hyper.max_samples,
                    "max_features": sub.hyper.max_features,
                    "contamination": sub.hyper.contamination,
                    "random_state": sub.hyper.random_state,
                },
                "libraries": dict(sub.libraries),
                "anchors": [a.hex() for a in sub.anchors],
                "training_offset": sub.training_offset,
            }
            for digest, sub in zip(m.digests, m.contributors, strict=True)
        ],
        "datasets": None
        if m.datasets is None
        else [{"digest": d.hex(), "rows": rows} for d, rows in m.datasets],
    }


@model.command()
@click.argument("path", type=_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect(path: Path, as_json: bool) -> None:
    """Validate a model artifact and show its id, schema and contributors."""
    info = _describe(_load_model(path))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"model       {info['model_id']}")
    click.echo(f"format      {info['format']}, {info['bytes']} bytes")
    click.echo(f"features    {', '.join(info['features'])}")
    click.echo(f"trees       {info['trees']} from {len(info['contributors'])} contributor(s)")
    click.echo(
        f"threshold   offset {info['offset']!r}: outlier iff path sum < "
        f"{info['threshold_path_sum']}"
    )
    for c in info["contributors"]:
        click.echo(f"contributor {c['digest']}")
        hyper = " ".join(f"{k}={v}" for k, v in c["hyper_parameters"].items())
        click.echo(f"  trees {c['trees']}, subsample {c['subsample']}, {hyper}")
        click.echo(f"  libraries {', '.join(f'{k} {v}' for k, v in c['libraries'].items())}")
        click.echo(f"  training offset {c['training_offset']!r}")
        for anchor in c["anchors"]:
            click.echo(f"  anchor {anchor}")
    if info["datasets"] is None:
        click.echo("datasets    not recorded (format before v3): no chain can check them")
    for d in info["datasets"] or ():
        click.echo(f"dataset     {d['digest']}  {d['rows']} rows")


def scores_csv(m: Model, rows: object, top: int, workers: int | None = None) -> tuple[bytes, int]:
    """The CSV `vigil model score` writes (score, verdict, path sum, top features); outliers.

    Scoring and explaining are split over ``workers`` threads (default: every core).
    """
    from ml.explain import explain_batch
    from ml.score import Scorer

    scorer = Scorer(m)
    result = scorer.score_batch(rows, workers)
    explained = explain_batch(scorer, rows, top, workers)
    return format_scores_csv(m, result, explained), int(result.outliers.sum())


def _csv_cell(text: str) -> str:
    """``text`` as one CSV cell, quoted as the csv module quotes it (only when it must be)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([text, ""])
    return out.getvalue()[: -len(",\n")]


def format_scores_csv(m: Model, result: Scores, explained: Explanations) -> bytes:
    """The CSV text of scored rows: header, then lines built by a compiled formatter.

    Only the scores are formatted by Python (``repr``, the shortest text that reads back
    as the same float); the rest (about 3/4 of the bytes) is written by
    ``ml.kernels.format_scores``, many times faster than the csv module.
    """
    import numpy as np

    from ml import kernels

    k = explained.features.shape[1]
    header = ["score", "verdict", "path_sum"]
    for j in range(1, k + 1):
        header += [f"top{j}", f"top{j}_share"]
    reprs = list(map(repr, result.scores.tolist()))
    ends = np.cumsum(np.fromiter(map(len, reprs), dtype=np.int64, count=len(reprs)))
    cells = [_csv_cell(name).encode() for name in m.feature_names]
    name_ends = np.cumsum([len(cell) for cell in cells], dtype=np.int64)
    per_row = len(",outlier,,\n") + 20 + k * (len(",,1.000000") + max(map(len, cells)))
    out = np.empty(int(ends[-1]) + per_row * len(reprs), dtype=np.uint8)
    size = kernels.format_scores(
        np.frombuffer("".join(reprs).encode(), dtype=np.uint8), ends, result.outliers,
        result.path_sums, explained.features, explained.weights, explained.totals,
        np.frombuffer(b"".join(cells), dtype=np.uint8), name_ends, out,
    )  # fmt: skip
    return (",".join(header) + "\n").encode() + out[:size].tobytes()


@model.command()
@click.argument("path", type=_FILE)
@click.argument("data", type=_FILE)
@click.option("--out", type=_OUT, default=None, help="Write the CSV here instead of stdout.")
@click.option(
    "--top",
    default=DEFAULT_TOP_K,
    show_default=True,
    type=click.IntRange(1, MAX_TOP_K),
    help="Features listed per row.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Threads scoring large files (default: every core this process may use).",
)
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@json_flag
def score(
    path: Path, data: Path, out: Path | None, top: int, threads: int | None, force: bool
) -> None:
    """Score every row of DATA (CSV with the model's columns; extra columns are ignored).

    Writes columns score (same units and sign as scikit-learn's score_samples:
    lower is more anomalous), verdict (outlier/inlier), path_sum (the exact
    integer recorded on chain) and the top features with their share. Files of
    16,384 rows or more are scored on several threads; the output is the same.
    """
    if out is not None and out.exists() and not force:
        raise click.ClickException(f"{out}: already exists (use --force to replace it)")
    m = _load_model(path)
    dataset = _load_csv(data)
    try:
        text, outliers = scores_csv(m, dataset.columns(m.feature_names), top, threads)
    except ModelError as exc:
        raise click.ClickException(f"{data}: {exc}") from None
    if wants_json():
        rows = list(csv.DictReader(io.StringIO(text.decode())))
        emit({"rows": rows, "outliers": outliers})
        if out is not None:
            _write(out, text, force)
        return
    if out is None:
        click.echo(text, nl=False)
    else:
        _write(out, text, force)
    click.echo(f"scored {dataset.matrix.shape[0]} rows: {outliers} outlier(s)", err=True)


@model.command()
@click.argument("paths", nargs=-1, required=True, type=_FILE)
@click.option("--out", required=True, type=_OUT, help="Where to write the merged model.")
@click.option(
    "--offset",
    type=float,
    default=None,
    help="Decision offset of the merged model (required if the inputs disagree).",
)
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@json_flag
def merge(paths: tuple[Path, ...], out: Path, offset: float | None, force: bool) -> None:
    """Merge models trained by several members into one (union of their forests)."""
    from ml.merge import merge as merge_models

    if out.exists() and not force:
        raise click.ClickException(f"{out}: already exists (use --force to replace it)")
    models = [_load_model(p) for p in paths]
    try:
        merged = merge_models(models, offset)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    _write(out, merged.data, force)
    if wants_json():
        emit({"file": str(out), "model_id": merged.model_id.hex(), "trees": merged.n_trees,
              "contributors": len(merged.contributors)})  # fmt: skip
        return
    click.echo(
        f"wrote {out}: model {merged.model_id.hex()}, {merged.n_trees} trees from "
        f"{len(merged.contributors)} contributor(s)"
    )
