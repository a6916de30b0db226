"""The benchmark result document, schema ``tenfold.result/1``.

One JSON file per benchmark at ``results/<system>/<bench>.json``::

    {
      "schema": "tenfold.result/1", "system": "marconi", "bench": "hit_rate", "quick": true,
      "config": {...full config...},
      "env": {"python": "3.11.7", "torch": "2.13.0+cpu", "cpu": "model, cores", "git_sha": "abc1234"},
      "arms": {"vllm_plus": {"token_hit_rate": 0.11}, "marconi": {"token_hit_rate": 0.38}},
      "headline": {"metric": "...", "ours": "marconi", "baseline": "vllm_plus",
                   "value": 3.45, "higher_is_better": true},
      "duration_s": 212.4
    }

Two optional keys carry what a plot needs beyond the arms table: ``series`` (panel ->
arm -> ``{"x": [...], "y": [...]}``, e.g. CDFs or sweeps) and ``notes`` (free text, such as
which substitute model was used). :func:`validate` runs on every write and every read.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from tenfold.errors import ResultError

__all__ = ["SCHEMA", "build_result", "env_block", "read_result", "result_path", "validate", "write_result"]

SCHEMA = "tenfold.result/1"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
_REQUIRED = ("schema", "system", "bench", "quick", "config", "env", "arms", "headline", "duration_s")
_OPTIONAL = ("series", "notes")


def _cpu_model() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def _git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def env_block() -> dict[str, str]:
    """Where a result was measured: Python, torch, CPU and the git commit."""
    # The distribution version carries the local tag ("2.13.0+cpu") without importing torch.
    torch_version = _version("torch") or "not installed"
    return {
        "python": platform.python_version(),
        "torch": torch_version,
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "git_sha": _git_sha(),
    }


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(doc: Mapping[str, Any]) -> None:
    """Raise ResultError naming the first key that breaks ``tenfold.result/1``."""
    if not isinstance(doc, Mapping):
        raise ResultError(f"a result must be a JSON object, got {type(doc).__name__}")
    for key in _REQUIRED:
        if key not in doc:
            raise ResultError(f"result is missing key {key!r}")
    extra = set(doc) - set(_REQUIRED) - set(_OPTIONAL)
    if extra:
        raise ResultError(f"result has unknown keys {sorted(extra)}; allowed: {list(_REQUIRED + _OPTIONAL)}")
    if doc["schema"] != SCHEMA:
        raise ResultError(f"result schema is {doc['schema']!r}, expected {SCHEMA!r}")
    for key in ("system", "bench"):
        if not isinstance(doc[key], str) or not _NAME.match(doc[key]):
            raise ResultError(f"result {key} {doc[key]!r} must be a lower-case name ([a-z0-9_.+-])")
    if not isinstance(doc["quick"], bool):
        raise ResultError(f"result quick {doc['quick']!r} must be true or false")
    if not isinstance(doc["config"], Mapping):
        raise ResultError("result config must be an object")
    env = doc["env"]
    if not isinstance(env, Mapping):
        raise ResultError("result env must be an object")
    for key in ("python", "torch", "cpu", "git_sha"):
        if not isinstance(env.get(key), str):
            raise ResultError(f"result env is missing string {key!r}")
    arms = doc["arms"]
    if not isinstance(arms, Mapping) or not arms:
        raise ResultError("result arms must be a non-empty object of arm -> metrics")
    for arm, metrics in arms.items():
        if not isinstance(metrics, Mapping) or not metrics:
            raise ResultError(f"arm {arm!r} must map metric names to numbers")
        for metric, value in metrics.items():
            if value is not None and not _finite_number(value):
                raise ResultError(f"arm {arm!r} metric {metric!r} = {value!r} is not a finite number")
    head = doc["headline"]
    if not isinstance(head, Mapping):
        raise ResultError("result headline must be an object")
    for key in ("metric", "ours", "baseline", "value", "higher_is_better"):
        if key not in head:
            raise ResultError(f"result headline is missing {key!r}")
    if not isinstance(head["metric"], str) or not head["metric"]:
        raise ResultError(f"headline metric {head['metric']!r} must be a non-empty string")
    for key in ("ours", "baseline"):
        if head[key] not in arms:
            raise ResultError(f"headline {key} {head[key]!r} is not an arm; arms: {sorted(arms)}")
    if not _finite_number(head["value"]):
        raise ResultError(f"headline value {head['value']!r} is not a finite number")
    if not isinstance(head["higher_is_better"], bool):
        raise ResultError("headline higher_is_better must be true or false")
    if not _finite_number(doc["duration_s"]) or doc["duration_s"] < 0:
        raise ResultError(f"result duration_s {doc['duration_s']!r} must be a number >= 0")
    if "notes" in doc and not isinstance(doc["notes"], str):
        raise ResultError("result notes must be a string")
    if "series" in doc:
        _validate_series(doc["series"])


def _validate_series(series: Any) -> None:
    if not isinstance(series, Mapping):
        raise ResultError("result series must map panel -> arm -> {x, y}")
    for panel, lines in series.items():
        if not isinstance(lines, Mapping) or not lines:
            raise ResultError(f"series panel {panel!r} must map arm names to {{x, y}}")
        for arm, xy in lines.items():
            if not isinstance(xy, Mapping) or set(xy) != {"x", "y"}:
                raise ResultError(f"series {panel!r}/{arm!r} must be an object with exactly x and y")
            xs, ys = xy["x"], xy["y"]
            if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
                raise ResultError(f"series {panel!r}/{arm!r}: x and y must be lists of equal length")
            if not all(_finite_number(v) for v in xs + ys):
                raise ResultError(f"series {panel!r}/{arm!r} holds a value that is not a finite number")


def build_result(
    *,
    system: str,
    bench: str,
    quick: bool,
    config: Mapping[str, Any],
    arms: Mapping[str, Mapping[str, float | None]],
    headline: Mapping[str, Any],
    duration_s: float,
    series: Mapping[str, Mapping[str, Mapping[str, list[float]]]] | None = None,
    notes: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Assemble and validate a result document."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "system": system,
        "bench": bench,
        "quick": quick,
        "config": dict(config),
        "env": dict(env) if env is not None else env_block(),
        "arms": {arm: dict(metrics) for arm, metrics in arms.items()},
        "headline": dict(headline),
        "duration_s": round(float(duration_s), 3),
    }
    if series is not None:
        doc["series"] = {p: {a: {"x": list(xy["x"]), "y": list(xy["y"])} for a, xy in lines.items()}
                         for p, lines in series.items()}
    if notes is not None:
        doc["notes"] = notes
    validate(doc)
    return doc


def result_path(out_dir: Path, system: str, bench: str) -> Path:
    return Path(out_dir) / system / f"{bench}.json"


def write_result(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Validate and write ``out_dir/<system>/<bench>.json`` atomically."""
    validate(doc)
    path = result_path(out_dir, doc["system"], doc["bench"])
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def read_result(path: Path) -> dict[str, Any]:
    """Read and validate one result file."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path}: not valid JSON: {exc}") from None
    try:
        validate(doc)
    except ResultError as exc:
        raise ResultError(f"{path}: {exc}") from None
    return dict(doc)
