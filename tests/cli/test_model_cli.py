"""`vigil model`: train, inspect, score, merge through the real command line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Training and scoring CSVs: 3 named features, 6 rows pushed out along `hour`."""
    path = tmp_path_factory.mktemp("model-cli")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    x[:6, 1] += 9.0
    lines = ["amount,hour,velocity"] + [",".join(repr(v) for v in row) for row in x.tolist()]
    (path / "train.csv").write_text("\n".join(lines) + "\n")
    rows = ["id,velocity,amount,hour"] + [
        f"{i},{r[2]!r},{r[0]!r},{r[1]!r}" for i, r in enumerate(x[:20].tolist())
    ]
    (path / "rows.csv").write_text("\n".join(rows) + "\n")
    return path


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
    return result


def train(workdir: Path, name: str, *extra: str, files: tuple[str, ...] = ("train.csv",)) -> Path:
    out = workdir / name
    if not out.exists():
        paths = [str(workdir / f) for f in files]
        run("model", "train", *paths, "--out", str(out), "--trees", "40", *extra)
    return out


def test_train_inspect_and_score(workdir: Path) -> None:
    more = workdir / "more.csv"
    more.write_text("amount,hour,velocity\n" + "0.5,0.1,-0.2\n" * 30)
    model = train(workdir, "a.vmodel", "--seed", "1", files=("train.csv", "more.csv"))
    info = json.loads(run("model", "inspect", str(model), "--json").output)
    assert info["model_id"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert info["features"] == ["amount", "hour", "velocity"]
    assert info["trees"] == 40 and info["offset"] == -0.5
    contributor = info["contributors"][0]
    data_digest = hashlib.sha256((workdir / "train.csv").read_bytes()).hexdigest()
    more_digest = hashlib.sha256(more.read_bytes()).hexdigest()
    assert sorted(contributor["anchors"]) == sorted([more_digest, data_digest])
    assert sorted((d["digest"], d["rows"]) for d in info["datasets"]) == sorted(
        [(data_digest, 400), (more_digest, 30)]
    )
    assert "format" in info and info["format"].endswith("v3")
    assert contributor["hyper_parameters"]["random_state"] == 1
    assert "scikit-learn" in contributor["libraries"]
    text = run("model", "inspect", str(model)).output
    assert info["model_id"] in text and "amount, hour, velocity" in text
    assert f"dataset     {more_digest}  30 rows" in text

    result = run("model", "score", str(model), str(workdir / "rows.csv"), "--top", "2")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "score",
        "verdict",
        "path_sum",
        "top1",
        "top1_share",
        "top2",
        "top2_share",
    ]
    assert len(rows) == 20
    assert all(r["verdict"] == "outlier" and r["top1"] == "hour" for r in rows[:6])
    assert all(-1.0 <= float(r["score"]) < 0.0 for r in rows)
    assert "scored 20 rows" in result.stderr


def test_scores_file_matches_the_library_and_is_not_overwritten(workdir: Path) -> None:
    from ml import artifact
    from ml.dataset import parse_csv
    from ml.score import Scorer

    model = train(workdir, "a.vmodel", "--seed", "1", "--anchor", "ab" * 32)
    out = workdir / "scores.csv"
    run("model", "score", str(model), str(workdir / "rows.csv"), "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    loaded = artifact.load(model.read_bytes())
    data = parse_csv((workdir / "rows.csv").read_bytes()).columns(loaded.feature_names)
    expected = Scorer(loaded).score_batch(data)
    assert [float(r["score"]) for r in rows] == expected.scores.tolist()
    assert [int(r["path_sum"]) for r in rows] == expected.path_sums.tolist()
    before = out.read_bytes()
    result = run(
        "model", "score", str(model), str(workdir / "rows.csv"), "--out", str(out), ok=False
    )
    assert "already exists" in result.output and out.read_bytes() == before
    run("model", "score", str(model), str(workdir / "rows.csv"), "--out", str(out), "--force")


def test_training_is_reproducible_and_output_protected(workdir: Path) -> None:
    first = train(workdir, "r1.vmodel", "--seed", "5", "--max-samples", "0.5")
    second = train(workdir, "r2.vmodel", "--seed", "5", "--max-samples", "0.5")
    assert first.read_bytes() == second.read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert first.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".tmp")] == []
    result = run("model", "train", str(workdir / "train.csv"), "--out", str(first), ok=False)
    assert "already exists" in result.output
    assert first.read_bytes() == second.read_bytes()


def test_merge(workdir: Path) -> None:
    a = train(workdir, "a.vmodel", "--seed", "1", "--anchor", "ab" * 32)
    b = train(workdir, "b.vmodel", "--seed", "2", "--max-samples", "100")
    c = train(workdir, "c.vmodel", "--seed", "3", "--contamination", "0.05")
    out1, out2 = workdir / "m1.vmodel", workdir / "m2.vmodel"
    run("model", "merge", str(a), str(b), "--out", str(out1))
    run("model", "merge", str(b), str(a), "--out", str(out2))
    assert out1.read_bytes() == out2.read_bytes()
    info = json.loads(run("model", "inspect", str(out1), "--json").output)
    assert info["trees"] == 80 and len(info["contributors"]) == 2
    result = run("model", "merge", str(a), str(c), "--out", str(workdir / "m3.vmodel"), ok=False)
    assert "offsets" in result.output
    run("model", "merge", str(a), str(c), "--out", str(workdir / "m3.vmodel"), "--offset", "-0.52")
    result = run("model", "merge", str(a), str(a), "--out", str(workdir / "m4.vmodel"), ok=False)
    assert "twice" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("amount,hour,velocity\n1,2\n", "line 2: expected 3 fields"),
        ("amount,hour,velocity\n1,2,x\n", "not a decimal number"),
        ("amount,hour\n1,2\n", "missing column(s): velocity"),
        ("", "empty"),
    ],
)
def test_bad_scoring_csv_gives_a_clear_error(workdir: Path, content: str, message: str) -> None:
    model = train(workdir, "a.vmodel", "--seed", "1", "--anchor", "ab" * 32)
    bad = workdir / "bad.csv"
    bad.write_text(content)
    result = run("model", "score", str(model), str(bad), ok=False)
    assert message in result.output


def test_corrupted_artifact_gives_a_clear_error(workdir: Path) -> None:
    model = train(workdir, "a.vmodel", "--seed", "1", "--anchor", "ab" * 32)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = workdir / "bad.vmodel"
    bad.write_bytes(bytes(data))
    for args in (["inspect", str(bad)], ["score", str(bad), str(workdir / "rows.csv")]):
        result = run("model", *args, ok=False)
        assert "not a valid model" in result.output
    result = run(
        "model", "merge", str(model), str(bad), "--out", str(workdir / "x.vmodel"), ok=False
    )
    assert "not a valid model" in result.output and not (workdir / "x.vmodel").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-samples", "lots"], "--max-samples"),
        (["--contamination", "0.9"], "contamination"),
        (["--anchor", "12"], "--anchor"),
        (["--trees", "0"], "--trees"),
        (["--max-features", "auto"], "--max-features"),
    ],
)
def test_bad_training_options(workdir: Path, args: list[str], message: str) -> None:
    out = workdir / "never.vmodel"
    result = run("model", "train", str(workdir / "train.csv"), "--out", str(out), *args, ok=False)
    assert message in result.output and not out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("amount,hour\n1,2\n3,nan\n", "line 3, column 'hour'"),
        ("amount,hour\n1,2\n", "rows per tree"),
        ("amount,amount\n1,2\n3,4\n", "duplicate"),
    ],
)
def test_bad_training_csv_gives_a_clear_error(workdir: Path, content: str, message: str) -> None:
    data = workdir / "bad-train.csv"
    data.write_text(content)
    out = workdir / "never.vmodel"
    result = run("model", "train", str(data), "--out", str(out), ok=False)
    assert message in result.output and not out.exists()


def test_train_reads_at_most_max_training_files(tmp_path: Path) -> None:
    from cli.model import MAX_TRAINING_FILES

    paths = []
    for i in range(MAX_TRAINING_FILES + 1):
        path = tmp_path / f"part{i}.csv"
        path.write_text(f"a,b\n{i},{i % 3}\n{i + 1},{i % 5}\n{i + 2},{i % 7}\n")
        paths.append(str(path))
    over = run("model", "train", *paths, "--out", str(tmp_path / "x.vmodel"), ok=False)
    assert f"at most {MAX_TRAINING_FILES} training files" in over.output
    at_bound = run("model", "train", *paths[:-1], "--out", str(tmp_path / "m.vmodel"),
                   "--trees", "3", "--json")  # fmt: skip
    assert len(json.loads(at_bound.output)["datasets"]) == MAX_TRAINING_FILES
