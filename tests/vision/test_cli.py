"""``tenfold vision show|detect|models`` through the real top-level CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenfold.cli import main
from tenfold.vision import clip_path, read_image


def test_show_writes_the_view_with_boxes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "view.png"
    args = ["vision", "show", "--world", "panorama", "--pan", "30", "--tilt", "0", "--zoom", "2", "--seed", "1"]
    assert main([*args, "--out", str(out)]) == 0
    image = read_image(out)
    assert image.shape == (108, 192, 3)
    assert "person=" in capsys.readouterr().out
    plain = tmp_path / "plain.png"
    assert main([*args, "--out", str(plain), "--no-boxes"]) == 0
    assert not np.array_equal(image, read_image(plain))  # boxes were drawn


def test_show_drive_world(tmp_path: Path) -> None:
    out = tmp_path / "drive.png"
    assert main(["vision", "show", "--world", "drive", "--seed", "2", "--frame", "40", "--out", str(out)]) == 0
    assert read_image(out).shape == (144, 256, 3)


def test_show_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vision", "show", "--pan", "45", "--out", str(tmp_path / "x.png")]) == 2
    assert "'pan' = 45" in capsys.readouterr().err
    assert main(["vision", "show", "--world", "moon", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown world 'moon'; known: drive, panorama" in capsys.readouterr().err


def test_detect_prints_per_frame_counts(capsys: pytest.CaptureFixture[str]) -> None:
    video = str(clip_path("carphone_pristine"))
    assert main(["vision", "detect", video, "--detector", "hog", "--max-frames", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["0", "1", "2"]
    assert all(int(line.split("\t")[2]) >= 0 for line in lines)


def test_detect_yolo_json(capsys: pytest.CaptureFixture[str]) -> None:
    video = str(clip_path("bikes"))
    assert main(["vision", "detect", video, "--detector", "yolo-person", "--max-frames", "1", "--json"]) == 0
    import json

    row = json.loads(capsys.readouterr().out)
    assert row["frame"] == 0 and row["count"] == len(row["boxes"])


def test_detect_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(clip_path("bikes").read_bytes()[:5000])
    assert main(["vision", "detect", str(bad), "--detector", "hog"]) == 1
    assert "broken.mp4" in capsys.readouterr().err
    assert main(["vision", "detect", str(bad), "--detector", "ssd"]) == 2
    assert "known:" in capsys.readouterr().err


def test_models_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vision", "models"]) == 0
    out = capsys.readouterr().out
    assert "yolo-person\tdetector" in out and "trained in-process" in out
