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


@pytest.mark.parametrize(("argv", "message"), [
    (["vision", "show", "--seed", "-1"], "config field '--seed' = -1: must be >= 0"),
    (["vision", "show", "--out", "{tmp}/x.txt"], "config field '--out' = '{tmp}/x.txt': must end in an image suffix"),
    (["vision", "show", "--out", "/proc/nope/x.png"],
     "config field '--out' = '/proc/nope/x.png': its directory cannot be created"),
    (["vision", "detect", "missing.mp4", "--stride", "0"], "config field '--stride' = 0: must be >= 1"),
    (["vision", "detect", "missing.mp4", "--stride", "-3"], "config field '--stride' = -3: must be >= 1"),
])
def test_bad_seed_out_and_stride_exit_2_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         argv: list[str], message: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--out" not in argv and argv[1] == "show":
        argv += ["--out", str(tmp_path / "v.png")]
    assert main(argv) == 2
    assert message.replace("{tmp}", str(tmp_path)) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_world_seeds_must_be_non_negative() -> None:
    from tenfold.errors import ConfigError
    from tenfold.vision import DriveWorld, PanoramaWorld

    for world in (PanoramaWorld, DriveWorld):
        with pytest.raises(ConfigError, match=r"config field 'seed' = -1: must be in \[0, inf\]"):
            world(seed=-1)
