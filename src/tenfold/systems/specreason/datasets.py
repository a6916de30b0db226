"""User-supplied benchmark datasets (spec §5): local JSONL or parquet with the HF column names.

Nothing is downloaded: point a loader at a file exported from the Hugging Face hub.

- AIME 2024 (``Maxwell-Jia/AIME_2024``): ``ID``, ``Problem``, ``Answer`` (lower-case names are
  accepted too); all 30 rows, integer answers.
- MATH-500 (``HuggingFaceH4/MATH-500``): ``problem``, ``answer``, ``unique_id``; the first
  100 rows by default, answers graded as math expressions.
- GPQA-Diamond (``Idavidrein/gpqa``, ``gpqa_diamond``): ``Question``, ``Correct Answer``,
  ``Incorrect Answer 1..3``; the first 100 rows, options shuffled by a seed so the answer is
  not always A (unless ``artifact_compat``).

Every row is checked when the file is loaded: a file that cannot be read (a directory, a
corrupt parquet, text that is not UTF-8, bad JSON), a row that lacks a needed column, or a
null or empty value in one raises :class:`~.errors.DatasetError` naming the file, and the
row (counted from 0) and column where there is one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tenfold.core.config import check_range

from .errors import DatasetError
from .grader import shuffle_options

__all__ = ["DATASETS", "DatasetItem", "load_aime", "load_dataset", "load_gpqa", "load_math500", "read_rows"]

GradeKind = Literal["int", "math", "choice"]


@dataclass(frozen=True)
class DatasetItem:
    """One problem: its id, text, gold answer, how to grade it, and options (GPQA only)."""

    id: str
    problem: str
    gold: str
    kind: GradeKind
    options: dict[str, str] | None = None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl``/``.json`` or ``.parquet`` file, as dicts; DatasetError naming the file otherwise."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"dataset file {path} is a directory, not a file")
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise DatasetError(f"reading {path} needs pyarrow: pip install pyarrow") from exc
        try:
            table = pq.read_table(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DatasetError(f"{path} is not a readable parquet file: {exc}") from exc
        return [dict(r) for r in table.to_pylist()]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc}); JSON lines / JSON files must be UTF-8") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if path.suffix == ".json":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"{path} is not valid JSON: {exc}") from exc
        rows = (doc.get("rows") or doc.get("data")) if isinstance(doc, dict) else doc
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise DatasetError(f"{path}: line {n} is not valid JSON: {exc}") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"{path} must hold one JSON object per row (a JSON list, or an object with 'rows' or "
                           "'data', or JSON lines)")
    return rows


def _column(rows: Sequence[Mapping[str, Any]], names: Sequence[str], path: Path) -> str:
    """The first of ``names`` that row 0 has, after checking that every row has it with a value.

    DatasetError names the file, the row and the column: a column row 0 lacks (listing row 0's
    columns), a later row that lacks it (listing that row's columns), or a null or empty value.
    """
    first = rows[0]
    name = next((n for n in names if n in first), None)
    if name is None:
        also = f" (also tried {list(names[1:])})" if len(names) > 1 else ""
        raise DatasetError(f"{path}: missing column {names[0]!r}{also}; row 0 has columns {sorted(first)}")
    for i, row in enumerate(rows):
        if name not in row:
            raise DatasetError(f"{path}: row {i} lacks column {name!r} (row {i} has columns {sorted(row)})")
        value = row[name]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DatasetError(f"{path}: row {i}, column {name!r} is null")
        if not str(value).strip():
            raise DatasetError(f"{path}: row {i}, column {name!r} is empty")
    return name


def _rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Every row of the file (checked against ``limit`` first); DatasetError when there are none."""
    if limit is not None:
        check_range("limit", limit, lo=1)
    rows = read_rows(path)
    if not rows:
        raise DatasetError(f"{path} has no rows")
    return rows


def load_aime(path: Path, limit: int | None = None) -> list[DatasetItem]:
    """AIME rows: ``Problem``/``problem`` and ``Answer``/``answer`` (integer answers)."""
    rows = _rows(path, limit)
    p, a = _column(rows, ("Problem", "problem"), path), _column(rows, ("Answer", "answer"), path)
    ids = next((c for c in ("ID", "id", "unique_id") if all(c in r for r in rows)), None)
    return [DatasetItem(str(r[ids]) if ids else str(i), str(r[p]), str(r[a]), "int")
            for i, r in enumerate(rows[:limit])]


def load_math500(path: Path, limit: int | None = 100) -> list[DatasetItem]:
    """MATH-500 rows: ``problem`` and ``answer`` (the first ``limit``, default 100)."""
    rows = _rows(path, limit)
    p, a = _column(rows, ("problem",), path), _column(rows, ("answer",), path)
    return [DatasetItem(str(r.get("unique_id", i)), str(r[p]), str(r[a]), "math") for i, r in enumerate(rows[:limit])]


def load_gpqa(path: Path, limit: int | None = 100, *, seed: int = 0,
              artifact_compat: bool = False) -> list[DatasetItem]:
    """GPQA rows: ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``; options shuffled by seed.

    ``artifact_compat`` keeps the artifact's order (the correct answer always A).
    """
    rows = _rows(path, limit)
    cols = [_column(rows, (c,), path) for c in
            ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")]
    out: list[DatasetItem] = []
    for i, r in enumerate(rows[:limit]):
        q, correct, *wrong = (str(r[c]).strip() for c in cols)
        if artifact_compat:
            options, gold = dict(zip("ABCD", [correct, *wrong], strict=True)), "A"
        else:
            options, gold = shuffle_options(correct, wrong, seed * 100_003 + i)
        out.append(DatasetItem(str(r.get("Record ID", i)), q, gold, "choice", options))
    return out


DATASETS = {"aime": load_aime, "math500": load_math500, "gpqa": load_gpqa}
"""Loader per dataset name (the CLI's ``--dataset NAME FILE``)."""


def load_dataset(name: str, path: Path, limit: int | None = None, *, seed: int = 0,
                 artifact_compat: bool = False) -> list[DatasetItem]:
    """Load dataset ``name`` (``aime``, ``math500``, ``gpqa``) from ``path`` (``artifact_compat``: GPQA unshuffled)."""
    from tenfold.errors import UnknownNameError

    if name not in DATASETS:
        raise UnknownNameError("dataset", name, sorted(DATASETS))
    if name == "gpqa":
        return load_gpqa(path, limit if limit is not None else 100, seed=seed, artifact_compat=artifact_compat)
    if name == "math500":
        return load_math500(path, limit if limit is not None else 100)
    return load_aime(path, limit)
