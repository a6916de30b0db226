"""Result JSON: round trip and validation with exact messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenfold.core.results import SCHEMA, env_block, read_result, validate, write_result
from tenfold.errors import ResultError
from tests.core.builders import ENV, result_doc


def test_round_trip_is_exact(tmp_path: Path) -> None:
    doc = result_doc(series={"cdf": {"ours": {"x": [1.0, 2.0], "y": [0.5, 1.0]}}}, notes="substitute model")
    path = write_result(doc, tmp_path)
    assert path == tmp_path / "demo" / "hit_rate.json"
    assert read_result(path) == doc
    assert json.loads(path.read_text())["schema"] == SCHEMA == "tenfold.result/1"


def test_env_block_has_the_required_keys() -> None:
    env = env_block()
    assert set(env) >= {"python", "torch", "cpu", "git_sha"}
    assert env["torch"].startswith("2.13.0")
    assert env["cpu"].endswith(" cores")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("arms"), "result is missing key 'arms'"),
        (lambda d: d.update(schema="tenfold.result/0"),
         "result schema is 'tenfold.result/0', expected 'tenfold.result/1'"),
        (lambda d: d.update(system="Bad Name"),
         "result system 'Bad Name' must be a lower-case name ([a-z0-9_.+-])"),
        (lambda d: d["arms"]["ours"].update(hit_rate=float("nan")),
         "arm 'ours' metric 'hit_rate' = nan is not a finite number"),
        (lambda d: d["headline"].update(ours="nobody"),
         "headline ours 'nobody' is not an arm; arms: ['baseline', 'ours']"),
        (lambda d: d.update(extra=1), "result has unknown keys ['extra']"),
        (lambda d: d["env"].pop("git_sha"), "result env is missing string 'git_sha'"),
        (lambda d: d.update(duration_s=-1), "result duration_s -1 must be a number >= 0"),
        (lambda d: d.update(series={"cdf": {"ours": {"x": [1.0], "y": []}}}),
         "series 'cdf'/'ours': x and y must be lists of equal length"),
    ],
)
def test_validation_names_the_broken_key(change, message) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(json.dumps(result_doc()))
    change(doc)
    with pytest.raises(ResultError) as info:
        validate(doc)
    assert str(info.value).startswith(message)


def test_read_rejects_invalid_files_with_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "demo" / "x.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(ResultError, match=r"x\.json: not valid JSON"):
        read_result(bad)
    bad.write_text(json.dumps({"schema": SCHEMA}))
    with pytest.raises(ResultError, match=r"x\.json: result is missing key 'system'"):
        read_result(bad)


def test_write_refuses_an_invalid_doc_and_writes_nothing(tmp_path: Path) -> None:
    doc = dict(result_doc())
    doc["headline"] = {**doc["headline"], "value": float("inf")}
    with pytest.raises(ResultError, match="headline value inf is not a finite number"):
        write_result(doc, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_builder_keeps_given_env() -> None:
    assert result_doc()["env"] == ENV
