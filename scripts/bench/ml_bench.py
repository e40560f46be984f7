"""Scorer benchmark: our Numba kernel vs scikit-learn on one model, in one run.

Prints one JSON document: for batch sizes 1, 10, 100, 1,000 and 10,000 the
median (and best) latency and rows/s of our scorer and of ``IsolationForest.score_samples``
on the same trained model, and their ratio. One-row figures use the single-row
entry point (``Scorer.score_row``, what a node calls per transaction) and also
the batch entry point with one row. Compile time is measured separately in
fresh processes with an empty Numba cache (cold) and with the cache filled
(warm), so it never pollutes the steady-state numbers.

``multicore``: the batch kernels (score, explain) on a million rows on one thread and on
every core, in the same run, and their ratio. ``end_to_end_csv``: `vigil model score` on a
generated CSV of a million rows (reading + scoring + explaining + writing), its rows/s and
the time split into those steps, on every core and on one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import sklearn

from cli import model as model_cmd
from cli.main import main as vigil
from ml.explain import explain_batch
from ml.limits import MAX_ROWS
from ml.score import Scorer, default_workers
from ml.train import TrainParams, train

BATCH_SIZES = (1, 10, 100, 1_000, 10_000)
MIN_SECONDS = 0.3
"""Each measurement repeats the call until this much time has passed (per sample)."""
SAMPLES = 5
"""Samples per measurement; the median is reported."""

FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from ml import artifact
from ml.score import Scorer
from ml.explain import explain_batch
t1 = time.perf_counter()
import sys
scorer = Scorer(artifact.load(sys.stdin.buffer.read()))
x = np.zeros((16, scorer.n_features))
t2 = time.perf_counter()
scorer.score_row(x[0]); scorer.score_batch(x); explain_batch(scorer, x)
t3 = time.perf_counter()
print(t1 - t0, t3 - t2)
"""


def measure(call: Callable[[], object], min_seconds: float) -> dict:
    """Seconds per call over SAMPLES samples of >= min_seconds each: median and best."""
    call()
    per_call = []
    for _ in range(SAMPLES):
        reps, start = 0, time.perf_counter()
        while True:  # bounded: stops once min_seconds have passed
            call()
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        per_call.append(elapsed / reps)
    return {"median": statistics.median(per_call), "best": min(per_call)}


def figures(timing: dict, rows: int) -> dict:
    return {
        "latency_s": timing["median"],
        "rows_per_s": rows / timing["median"],
        "best_latency_s": timing["best"],
    }


def first_call_seconds(model_bytes: bytes) -> dict:
    """Import and first-call (compile or cache load) times in fresh processes."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold_cache", "warm_cache"):
            result = subprocess.run(
                [sys.executable, "-c", FIRST_CALL],
                input=model_bytes,
                capture_output=True,
                check=True,
                env=env,
            )
            imports, first = (float(v) for v in result.stdout.split())
            out[label] = {"import_s": round(imports, 3), "first_calls_s": round(first, 3)}
    return out


def multicore(scorer: Scorer, x: np.ndarray, min_seconds: float) -> dict:
    """The batch kernels on one thread and on every core, measured in the same run."""
    cores = default_workers()
    out: dict = {"rows": len(x), "threads": cores}
    for name, call in (
        ("score", lambda w: scorer.score_batch(x, workers=w)),
        ("explain", lambda w: explain_batch(scorer, x, workers=w)),
    ):
        one = measure(lambda c=call: c(1), min_seconds)
        every = measure(lambda c=call: c(cores), min_seconds)
        out[name] = {
            "one_thread_rows_per_s": len(x) / one["median"],
            "all_cores_rows_per_s": len(x) / every["median"],
            "ratio_all_cores_to_one": one["median"] / every["median"],
            "best_all_cores_rows_per_s": len(x) / every["best"],
        }
    return out


def end_to_end_csv(model_data: bytes, names: tuple[str, ...], rows: int) -> dict:
    """`vigil model score` on a generated CSV: total rows/s and where the time goes."""
    rng = np.random.default_rng(99)
    x = rng.normal(size=(rows, len(names)))
    x[::20] *= 5.0
    with tempfile.TemporaryDirectory() as tmp:
        model_path, csv_path, out_path = (
            Path(tmp, "m.vmodel"),
            Path(tmp, "rows.csv"),
            Path(tmp, "o"),
        )
        model_path.write_bytes(model_data)
        np.savetxt(csv_path, x, fmt="%.3f", delimiter=",", header=",".join(names), comments="")
        report: dict = {"rows": rows, "csv_bytes": csv_path.stat().st_size}
        for label, workers in (("all_cores", None), ("one_thread", 1)):
            report[label] = score_steps(model_path, csv_path, out_path, workers)
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            vigil(["model", "score", str(model_path), str(csv_path), "--out", str(out_path),
                   "--force"], standalone_mode=False)  # fmt: skip
        total = time.perf_counter() - start
        report["command_s"] = total
        report["command_rows_per_s"] = rows / total
        report["output_bytes"] = out_path.stat().st_size
    return report


def score_steps(model_path: Path, csv_path: Path, out_path: Path, workers: int | None) -> dict:
    """The steps of `vigil model score --out`, timed one by one (the model already loaded)."""
    m = model_cmd._load_model(model_path)
    scorer = Scorer(m)
    t0 = time.perf_counter()
    rows = model_cmd._load_csv(csv_path).columns(m.feature_names)
    t1 = time.perf_counter()
    result = scorer.score_batch(rows, workers)
    t2 = time.perf_counter()
    explained = explain_batch(scorer, rows, model_cmd.DEFAULT_TOP_K, workers)
    t3 = time.perf_counter()
    model_cmd._write(out_path, model_cmd.format_scores_csv(m, result, explained), force=True)
    t4 = time.perf_counter()
    return {
        "threads": workers or default_workers(),
        "rows_per_s": len(rows) / (t4 - t0),
        "seconds": {
            "read": t1 - t0,
            "score": t2 - t1,
            "explain": t3 - t2,
            "write": t4 - t3,
            "total": t4 - t0,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="shorter timings (noisier)")
    parser.add_argument("--csv-rows", type=int, default=MAX_ROWS, help="rows of the CSV scored")
    args = parser.parse_args()
    min_seconds = 0.05 if args.quick else MIN_SECONDS

    rng = np.random.default_rng(2026)
    x_train = rng.normal(size=(args.train_rows, args.features))
    x_train[::50] += rng.normal(scale=6.0, size=(len(x_train[::50]), args.features))
    result = train(x_train, None, TrainParams(args.trees, "auto", "auto", 1.0, 7))
    estimator, model = result.estimator, result.model
    scorer = Scorer(model)
    x_test = rng.normal(size=(max(BATCH_SIZES), args.features))
    x_test[::20] *= 5.0

    ours_all = scorer.score_batch(x_test)
    reference = estimator.score_samples(x_test)
    report: dict = {
        "what": "anomaly scoring latency: Vigil Numba kernel vs scikit-learn score_samples",
        "model": {
            "trees": model.n_trees,
            "features": model.n_features,
            "subsample": model.contributors[0].subsample,
            "nodes": int(scorer.nodes.shape[0]),
            "artifact_bytes": len(model.data),
        },
        "agreement": {
            "max_abs_score_diff": float(np.abs(ours_all.scores - reference).max()),
            "verdict_mismatches": int(
                (ours_all.outliers != (estimator.predict(x_test) == -1)).sum()
            ),
        },
        "first_call": first_call_seconds(model.data),
        "batches": [],
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine()},
        "timing": {
            "samples": SAMPLES,
            "min_seconds_per_sample": min_seconds,
            "latency_s": "median over samples",
            "best_latency_s": "fastest sample (least disturbed by other load)",
            "load_average_at_start": os.getloadavg()[0],
        },
    }
    row = x_test[0].tolist()
    for size in BATCH_SIZES:
        batch = x_test[:size]
        ours = measure(lambda b=batch: scorer.score_batch(b), min_seconds)
        theirs = measure(lambda b=batch: estimator.score_samples(b), min_seconds)
        explain = measure(lambda b=batch: explain_batch(scorer, b), min_seconds)
        entry = {
            "rows": size,
            "ours_batch": figures(ours, size),
            "sklearn": figures(theirs, size),
            "speedup_batch": theirs["median"] / ours["median"],
            "speedup_batch_best": theirs["best"] / ours["best"],
            "ours_explain_latency_s": explain["median"],
        }
        if size == 1:
            single = measure(lambda: scorer.score_row(row), min_seconds)
            entry["ours_row"] = figures(single, 1)
            entry["speedup_row"] = theirs["median"] / single["median"]
            entry["speedup_row_best"] = theirs["best"] / single["best"]
        report["batches"].append(entry)
    report["multicore"] = multicore(scorer, rng.normal(size=(MAX_ROWS, args.features)), min_seconds)
    report["end_to_end_csv"] = end_to_end_csv(model.data, model.feature_names, args.csv_rows)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
