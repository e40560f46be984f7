"""`vigil model score`'s output CSV: the compiled formatter writes what the csv module wrote.

The reference below is the formatting the command used before it had a compiled formatter
(csv.writer, one row at a time); the bytes must not change, whatever the names need
(quotes, commas, non-ASCII), with empty cells where fewer features split than asked for,
and whatever the thread count.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from click.testing import CliRunner
from ml_testing import make_data

import ml.score
from cli.main import main
from cli.model import scores_csv
from ml.explain import PPM, explain_batch
from ml.score import Scorer
from ml.train import TrainParams, train


def reference_csv(model, rows: np.ndarray, top: int) -> str:
    scorer = Scorer(model)
    result = scorer.score_batch(rows, workers=1)
    explained = explain_batch(scorer, rows, top, workers=1)
    k = explained.features.shape[1]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["score", "verdict", "path_sum"]
    for j in range(1, k + 1):
        header += [f"top{j}", f"top{j}_share"]
    writer.writerow(header)
    for i in range(result.path_sums.shape[0]):
        line = [
            repr(float(result.scores[i])),
            "outlier" if result.outliers[i] else "inlier",
            str(int(result.path_sums[i])),
        ]
        named = explained.row(i, model.feature_names)
        for j in range(k):
            if j < len(named):
                share = named[j][1]
                line += [named[j][0], f"{share // PPM}.{share % PPM:06d}"]
            else:
                line += ["", ""]
        writer.writerow(line)
    return out.getvalue()


@pytest.fixture(scope="module")
def awkward():
    """Names the csv module must quote, and a constant column that never splits."""
    x = make_data(21, n=600, d=4, outliers=30)
    x[:, 3] = 1.0
    names = ["plain", 'with,comma "quoted"', "é naïve", "constant"]
    return train(x, names, TrainParams(30, 64, 0.05, 1.0, 4)).model, x


@pytest.mark.parametrize("top", [1, 3, 4])
def test_the_bytes_are_the_csv_modules(awkward, top: int) -> None:
    model, x = awkward
    text, outliers = scores_csv(model, x, top, workers=1)
    assert text.decode() == reference_csv(model, x, top)
    assert outliers == int(Scorer(model).score_batch(x).outliers.sum()) > 0
    assert ",,\n" in text.decode() or top < 4  # the constant feature never explains a row


def test_the_command_writes_the_same_file_on_any_thread_count(
    awkward, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(ml.score, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(ml.score, "MIN_CHUNK_ROWS", 7)
    model, x = awkward
    (tmp_path / "m.vmodel").write_bytes(model.data)
    lines = [",".join(f'"{n}"' if "," in n else n for n in model.feature_names)]
    lines[0] = lines[0].replace('"quoted"', '""quoted""')
    lines += [",".join(repr(v) for v in row) for row in x.tolist()]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    outputs = []
    for threads in ("1", "2", "3"):
        out = tmp_path / f"scores-{threads}.csv"
        result = CliRunner().invoke(
            main,
            ["model", "score", str(tmp_path / "m.vmodel"), str(tmp_path / "rows.csv"),
             "--out", str(out), "--threads", threads],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2] == reference_csv(model, x, 3).encode()
    bad = CliRunner().invoke(
        main,
        ["model", "score", str(tmp_path / "m.vmodel"), str(tmp_path / "rows.csv"),
         "--threads", "0"],
    )  # fmt: skip
    assert bad.exit_code != 0 and "--threads" in bad.output
