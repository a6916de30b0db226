"""Local dataset loaders with the HF column names; a missing column raises DatasetError."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tenfold.errors import TenfoldError, UnknownNameError
from tenfold.systems.specreason.datasets import load_aime, load_dataset, load_gpqa, load_math500, read_rows
from tenfold.systems.specreason.errors import DatasetError


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_aime_and_math500(tmp_path: Path) -> None:
    aime = _jsonl(tmp_path / "aime.jsonl", [{"ID": "2024-I-1", "Problem": "p1", "Answer": 204, "Solution": "s"}])
    assert load_aime(aime)[0] == load_dataset("aime", aime)[0]
    item = load_aime(aime)[0]
    assert (item.id, item.problem, item.gold, item.kind) == ("2024-I-1", "p1", "204", "int")
    rows = [{"problem": f"q{i}", "answer": "\\frac{1}{2}", "unique_id": f"u{i}"} for i in range(150)]
    m = load_math500(_jsonl(tmp_path / "math.jsonl", rows))
    assert len(m) == 100 and m[3].problem == "q3" and m[3].kind == "math" and m[3].id == "u3"


def test_gpqa_options_are_shuffled_by_seed(tmp_path: Path) -> None:
    rows = [{"Question": f"q{i}", "Correct Answer": "right", "Incorrect Answer 1": "w1",
             "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"} for i in range(40)]
    path = _jsonl(tmp_path / "gpqa.jsonl", rows)
    items = load_gpqa(path, seed=0)
    assert all(it.options is not None and it.options[it.gold] == "right" for it in items)
    assert len({it.gold for it in items}) == 4  # not "always A"
    assert [it.gold for it in items] == [it.gold for it in load_gpqa(path, seed=0)]
    assert {it.gold for it in load_gpqa(path, artifact_compat=True)} == {"A"}


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", [{"question": "q", "solution": "s"}])
    with pytest.raises(DatasetError, match=r"bad\.jsonl: missing column 'problem'.*columns \['question', 'solution'\]"):
        load_math500(path)
    with pytest.raises(DatasetError, match="missing column 'Correct Answer'"):
        load_gpqa(_jsonl(tmp_path / "g.jsonl", [{"Question": "q"}]))
    with pytest.raises(DatasetError, match="does not exist"):
        read_rows(tmp_path / "none.jsonl")
    with pytest.raises(UnknownNameError, match="aime"):
        load_dataset("gsm8k", path)
    assert issubclass(DatasetError, TenfoldError) and issubclass(DatasetError, ValueError)


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "aime.parquet"
    pq.write_table(pa.table({"id": [60, 61], "problem": ["a", "b"], "answer": ["1", "2"]}), path)
    assert [(i.id, i.problem, i.gold) for i in load_aime(path)] == [("60", "a", "1"), ("61", "b", "2")]


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    corrupt = tmp_path / "aime.parquet"
    corrupt.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(corrupt))} is not a readable parquet file: "):
        load_aime(corrupt)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"problem": "caf\xe9", "answer": "1"}\n'.encode("latin-1"))
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(latin))} is not UTF-8 text \("):
        load_math500(latin)
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(DatasetError) as err:
        load_math500(folder)
    assert str(err.value) == f"dataset file {folder} is a directory, not a file"
    bad_line = _jsonl(tmp_path / "b.jsonl", [{"problem": "q", "answer": "1"}])
    bad_line.write_text(bad_line.read_text() + '{"problem": "q2", "answer": \n')
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(bad_line))}: line 2 is not valid JSON: "):
        load_math500(bad_line)
    bad_json = tmp_path / "c.json"
    bad_json.write_text('{"rows": [')
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(bad_json))} is not valid JSON: "):
        load_math500(bad_json)
    scalar = tmp_path / "d.json"
    scalar.write_text('"just a string"')
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(scalar))} must hold one JSON object per row"):
        load_math500(scalar)


def test_every_row_is_checked_and_named(tmp_path: Path) -> None:
    good = {"problem": "q", "answer": "1"}
    later = _jsonl(tmp_path / "later.jsonl", [good, good, {"problem": "q", "solution": "s"}])
    with pytest.raises(DatasetError) as err:
        load_math500(later)
    assert str(err.value) == f"{later}: row 2 lacks column 'answer' (row 2 has columns ['problem', 'solution'])"
    with pytest.raises(DatasetError, match="row 2 lacks column 'answer'"):
        load_math500(later, limit=1)  # rows past the limit are checked too
    first = _jsonl(tmp_path / "first.jsonl", [{"Question": "q"}, {**good}])
    with pytest.raises(DatasetError) as err:
        load_math500(first)
    assert str(err.value) == f"{first}: missing column 'problem'; row 0 has columns ['Question']"
    for value, what in ((None, "null"), ("  ", "empty")):
        path = _jsonl(tmp_path / f"{what}.jsonl", [good, {"problem": "q", "answer": value}])
        with pytest.raises(DatasetError) as err:
            load_math500(path)
        assert str(err.value) == f"{path}: row 1, column 'answer' is {what}"
    aime = _jsonl(tmp_path / "aime.jsonl", [{"Problem": "p", "Answer": 5}, {"Problem": "", "Answer": 6}])
    with pytest.raises(DatasetError) as err:
        load_aime(aime)
    assert str(err.value) == f"{aime}: row 1, column 'Problem' is empty"
    gpqa_row = {"Question": "q", "Correct Answer": "r", "Incorrect Answer 1": "a", "Incorrect Answer 2": "b",
                "Incorrect Answer 3": "c"}
    gpqa = _jsonl(tmp_path / "gpqa.jsonl", [gpqa_row, {**gpqa_row, "Incorrect Answer 2": None}])
    with pytest.raises(DatasetError) as err:
        load_gpqa(gpqa)
    assert str(err.value) == f"{gpqa}: row 1, column 'Incorrect Answer 2' is null"


def test_parquet_nulls_are_named(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "math.parquet"
    pq.write_table(pa.table({"problem": ["a", None], "answer": ["1", "2"]}), path)
    with pytest.raises(DatasetError) as err:
        load_math500(path)
    assert str(err.value) == f"{path}: row 1, column 'problem' is null"
