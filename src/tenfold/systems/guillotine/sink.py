"""The test host's sink: an HTTP server that logs every request (ground truth of what left).

Standard library only and run by path (``python -I sink.py LOG ADDR PORT`` inside the
test-host namespace), so starting it costs no package import.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["sink_main"]


def sink_main(log: str, addr: str, port: int) -> None:
    """Log every request to ``log`` as JSONL and answer 200 'ok'."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _log(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            rec = {"method": self.command, "path": self.path, "body_hex": body.hex(),
                   "attest": self.headers.get("X-Guillotine-Attest", "")}
            with lock, open(log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _log

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer((addr, port), Handler)
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    sink_main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
