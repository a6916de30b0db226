"""User-supplied benchmark datasets (spec §5): local JSONL or parquet with the HF column names.

Nothing is downloaded: point a loader at a file exported from the Hugging Face hub.

- AIME 2024 (``Maxwell-Jia/AIME_2024``): ``ID``, ``Problem``, ``Answer`` (lower-case names are
  accepted too); all 30 rows, integer answers.
- MATH-500 (``HuggingFaceH4/MATH-500``): ``problem``, ``answer``, ``unique_id``; the first
  100 rows by default, answers graded as math expressions.
- GPQA-Diamond (``Idavidrein/gpqa``, ``gpqa_diamond``): ``Question``, ``Correct Answer``,
  ``Incorrect Answer 1..3``; the first 100 rows, options shuffled by a seed so the answer is
  not always A (unless ``artifact_compat``).

A file that lacks a needed column raises :class:`~.errors.DatasetError` naming the file, the
column and the columns it has.
"""

from __future__ import annotations

import json
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
    """Rows of a ``.jsonl``/``.json`` or ``.parquet`` file, as dicts."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise DatasetError(f"reading {path} needs pyarrow: pip install pyarrow") from exc
        return [dict(r) for r in pq.read_table(path).to_pylist()]
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            doc = json.loads(text)
            rows = doc if isinstance(doc, list) else doc.get("rows") or doc.get("data")
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, AttributeError) as exc:
        raise DatasetError(f"{path} is not valid JSON lines / JSON: {exc}") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"{path} must hold one JSON object per row")
    return rows


def _column(rows: Sequence[Mapping[str, Any]], names: Sequence[str], path: Path) -> str:
    """The first of ``names`` that every row has; DatasetError naming the file and the columns otherwise."""
    have = sorted(rows[0]) if rows else []
    for name in names:
        if rows and all(name in r for r in rows):
            return name
    raise DatasetError(f"{path}: missing column {names[0]!r} (also tried {list(names[1:])}); "
                       f"the file has columns {have}")


def _head(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    if limit is not None:
        check_range("limit", limit, lo=1)
        return rows[:limit]
    return rows


def load_aime(path: Path, limit: int | None = None) -> list[DatasetItem]:
    """AIME rows: ``Problem``/``problem`` and ``Answer``/``answer`` (integer answers)."""
    rows = _head(read_rows(path), limit)
    if not rows:
        raise DatasetError(f"{path} has no rows")
    p, a = _column(rows, ("Problem", "problem"), path), _column(rows, ("Answer", "answer"), path)
    ids = next((c for c in ("ID", "id", "unique_id") if all(c in r for r in rows)), None)
    return [DatasetItem(str(r[ids]) if ids else str(i), str(r[p]), str(r[a]), "int") for i, r in enumerate(rows)]


def load_math500(path: Path, limit: int | None = 100) -> list[DatasetItem]:
    """MATH-500 rows: ``problem`` and ``answer`` (the first ``limit``, default 100)."""
    rows = _head(read_rows(path), limit)
    if not rows:
        raise DatasetError(f"{path} has no rows")
    p, a = _column(rows, ("problem",), path), _column(rows, ("answer",), path)
    return [DatasetItem(str(r.get("unique_id", i)), str(r[p]), str(r[a]), "math") for i, r in enumerate(rows)]


def load_gpqa(path: Path, limit: int | None = 100, *, seed: int = 0,
              artifact_compat: bool = False) -> list[DatasetItem]:
    """GPQA rows: ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``; options shuffled by seed.

    ``artifact_compat`` keeps the artifact's order (the correct answer always A).
    """
    rows = _head(read_rows(path), limit)
    if not rows:
        raise DatasetError(f"{path} has no rows")
    cols = [_column(rows, (c,), path) for c in
            ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")]
    out: list[DatasetItem] = []
    for i, r in enumerate(rows):
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
