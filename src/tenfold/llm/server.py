"""An OpenAI-compatible HTTP server over any in-process ``LLMBackend`` (FastAPI + uvicorn).

``tenfold llm serve --engine transformers`` runs this over a TransformersBackend; systems
wrap their own backends the same way (``make_app(backend)``). Endpoints:

- ``GET /health``, ``GET /v1/models``;
- ``POST /v1/completions`` and ``POST /v1/chat/completions``: ``max_tokens``, ``temperature``,
  ``top_p``, ``seed``, ``stop``, ``logprobs``/``top_logprobs``, ``stream`` (server-sent
  events, real token by token where the backend can stream), and vLLM's chat extensions
  ``add_generation_prompt`` and ``continue_final_message``; ``usage`` carries
  ``prompt_tokens_details.cached_tokens`` from the prefix cache;
- ``POST /tokenize`` (vLLM's shape: ``{"count", "max_model_len"}``);
- ``GET /metrics``: Prometheus text with ``tenfold:num_requests_running``,
  ``tenfold:num_requests_waiting`` and ``tenfold:kv_cache_usage_perc``.

Requests are parsed by hand, so any malformed body (bad JSON, a wrong type, an out-of-range
value, a prompt over the context window, an explicit ``max_tokens`` that does not fit beside
the prompt, ``stream`` with ``logprobs``) is an HTTP 400 with an OpenAI-style JSON error body
and the server keeps serving. One backend call runs at a time (a lock); waiting requests
are counted for ``/metrics``. A stream decodes in a worker thread that holds the lock and
checks between pieces whether the client is still there, so a disconnect frees the server.
"""

# NOTE: no `from __future__ import annotations` here: FastAPI reads the endpoints' annotations
# at run time, and `Request` is imported inside make_app to keep fastapi out of `import tenfold.llm`.
import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tenfold.errors import BackendError, ConfigError

from .backend import Generation, GenerationStream, LLMBackend, SamplingParams, check_messages

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["RequestError", "bind", "check_port", "make_app", "serve"]


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` with an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "internal_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.status}}


def _get(body: dict[str, Any], key: str, types: tuple[type, ...], default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in types:
        raise RequestError(f"'{key}' must be {' or '.join(t.__name__ for t in types)}, got {value!r}", key)
    if not isinstance(value, types):
        raise RequestError(f"'{key}' must be {' or '.join(t.__name__ for t in types)}, got {value!r:.80}", key)
    return value


def _max_tokens_key(body: dict[str, Any], chat: bool) -> str | None:
    """The key the client set the decode budget with, or None when it left the default."""
    if chat and body.get("max_completion_tokens") is not None:
        return "max_completion_tokens"
    return "max_tokens" if body.get("max_tokens") is not None else None


def _params(body: dict[str, Any], *, chat: bool, default_max: int) -> SamplingParams:
    stop = _get(body, "stop", (str, list), [])
    stops = [stop] if isinstance(stop, str) else stop
    if not all(isinstance(s, str) for s in stops):
        raise RequestError(f"'stop' must be a string or a list of strings, got {stop!r:.80}", "stop")
    if _get(body, "n", (int,), 1) != 1:
        raise RequestError("only 'n' = 1 is supported", "n")
    if _get(body, "echo", (bool,), False):
        raise RequestError("'echo' is not supported", "echo")
    if chat:
        logprobs = bool(_get(body, "logprobs", (bool,), False))
        top = int(_get(body, "top_logprobs", (int,), 0))
        if top and not logprobs:
            raise RequestError("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        completion = _get(body, "max_completion_tokens", (int,), None)
        max_tokens = completion if completion is not None else _get(body, "max_tokens", (int,), default_max)
    else:
        lp = _get(body, "logprobs", (int,), None)
        logprobs, top = lp is not None, int(lp or 0)
        max_tokens = _get(body, "max_tokens", (int,), default_max)
    try:
        return SamplingParams(
            max_tokens=int(max_tokens),
            temperature=float(_get(body, "temperature", (int, float), 1.0)),
            top_p=float(_get(body, "top_p", (int, float), 1.0)),
            seed=_get(body, "seed", (int,), None),
            stop=tuple(stops),
            logprobs=logprobs,
            top_logprobs=top,
        )
    except ConfigError as exc:
        field = exc.field
        if field == "max_tokens":
            field = _max_tokens_key(body, chat) or field
        elif field == "top_logprobs" and not chat:
            field = "logprobs"  # the completions API's name for the top-k count
        raise RequestError(f"'{field}' = {exc.value!r}: {exc.allowed}", field) from None


def _usage(gen: Generation) -> dict[str, Any]:
    u = gen.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.decode_tokens,
        "total_tokens": u.prompt_tokens + u.decode_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def _completion_logprobs(gen: Generation) -> dict[str, Any] | None:
    if not gen.token_logprobs:
        return None
    return {
        "tokens": [t.token for t in gen.token_logprobs],
        "token_logprobs": [t.logprob for t in gen.token_logprobs],
        "top_logprobs": [{c.token: c.logprob for c in top} for top in gen.top_logprobs] or None,
    }


def _chat_logprobs(gen: Generation) -> dict[str, Any] | None:
    if not gen.token_logprobs:
        return None
    tops = gen.top_logprobs or tuple(() for _ in gen.token_logprobs)
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.token.encode()),
                "top_logprobs": [
                    {"token": c.token, "logprob": c.logprob, "bytes": list(c.token.encode())} for c in top
                ],
            }
            for t, top in zip(gen.token_logprobs, tops, strict=True)
        ]
    }


class _State:
    """The backend, its lock and the counters /metrics reports."""

    def __init__(self, backend: LLMBackend) -> None:
        self.backend = backend
        self.lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.guard = threading.Lock()

    def acquire(self) -> None:
        with self.guard:
            self.waiting += 1
        self.lock.acquire()
        with self.guard:
            self.waiting -= 1
            self.running += 1

    def release(self) -> None:
        with self.guard:
            self.running -= 1
        self.lock.release()

    def kv_usage(self) -> float:
        usage = getattr(self.backend, "prefix_cache_usage", None)  # in-process backends offer it
        return float(usage()) if callable(usage) else 0.0


def _handle(state: _State, body: dict[str, Any], *, chat: bool) -> tuple[Iterator[str] | None, Any]:
    """Validate and start one request; return (stream of text pieces or None, finisher)."""
    backend = state.backend
    model = body.get("model")
    if model is not None and model != backend.name:
        raise RequestError(f"model {model!r} is not served here; this server serves {backend.name!r}", "model", 404)
    default_max = 16 if not chat else min(512, backend.context_window)
    params = _params(body, chat=chat, default_max=default_max)
    stream = bool(_get(body, "stream", (bool,), False))
    if stream and (params.logprobs or params.top_logprobs):
        # Streamed pieces are not one token each, so per-token logprobs have no chunk to ride on.
        raise RequestError("'logprobs' is not supported with 'stream': true; request logprobs without streaming",
                           "logprobs")
    started: GenerationStream | None = None
    call: Callable[[], Generation]
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(f"'messages' must be a non-empty list of messages, got {messages!r:.80}", "messages")
        try:
            turns: Sequence[dict[str, str]] = check_messages(messages)
        except BackendError as exc:
            raise RequestError(str(exc), "messages") from None
        flags = {
            "add_generation_prompt": bool(_get(body, "add_generation_prompt", (bool,), True)),
            "continue_final_message": bool(_get(body, "continue_final_message", (bool,), False)),
        }
        if hasattr(backend, "stream_chat"):
            started = backend.stream_chat(turns, params, **flags)  # lazy: tokenizes, decodes nothing yet
        call = lambda: backend.chat(turns, params, **flags)  # noqa: E731
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise RequestError(f"'prompt' must be a non-empty string, got {prompt!r:.80}", "prompt")
        if hasattr(backend, "stream_complete"):
            started = backend.stream_complete(prompt, params)
        text = prompt
        call = lambda: backend.complete(text, params)  # noqa: E731
    prompt_tokens = getattr(started, "prompt_tokens", None)  # in-process streams know it before decoding
    key = _max_tokens_key(body, chat)
    window = backend.context_window
    if key is not None and isinstance(prompt_tokens, int) and prompt_tokens + params.max_tokens > window:
        # vLLM's behaviour: an explicit budget that cannot fit is an error, not a silent cap.
        raise RequestError(
            f"'{key}' = {params.max_tokens} is too large: the prompt has {prompt_tokens} tokens and model "
            f"{backend.name!r} has a context window of {window} tokens, so at most "
            f"{max(window - prompt_tokens, 0)} tokens can be decoded",
            key,
        )
    if started is not None and (stream or prompt_tokens is not None):
        final = started
        return (iter(final) if stream else None), lambda: final.result
    return None, call


def make_app(backend: LLMBackend) -> "FastAPI":
    """The FastAPI application serving ``backend``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    state = _State(backend)
    app = FastAPI(title="tenfold llm serve", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    async def _request_error(_req: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(RequestError(f"malformed request: {exc.errors()}").body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes (404) and methods (405) get the same OpenAI-style body as everything else.
        error = RequestError(f"{_req.method} {_req.url.path}: {exc.detail}", status=exc.status_code)
        return JSONResponse(error.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(RequestError(f"internal error: {exc}", status=500).body(), status_code=500)

    async def _body(req: Request) -> dict[str, Any]:
        raw = await req.body()
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise RequestError("the request body is nested too deeply to parse") from None
        if not isinstance(data, dict):
            raise RequestError("the request body must be a JSON object")
        return data

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        entry = {"id": backend.name, "object": "model", "owned_by": "tenfold", "max_model_len": backend.context_window}
        return {"object": "list", "data": [entry]}

    @app.post("/tokenize")
    async def tokenize(req: Request) -> dict[str, Any]:
        body = await _body(req)
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise RequestError(f"'prompt' must be a string, got {prompt!r:.80}", "prompt")
        return {"count": backend.count_tokens(prompt), "max_model_len": backend.context_window}

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        label = f'{{model_name="{backend.name}"}}'
        lines = []
        for metric, value in (
            ("num_requests_running", state.running),
            ("num_requests_waiting", state.waiting),
            ("kv_cache_usage_perc", state.kv_usage()),
        ):
            lines += [f"# TYPE tenfold:{metric} gauge", f"tenfold:{metric}{label} {value}"]
        return PlainTextResponse("\n".join(lines) + "\n")

    def _run(body: dict[str, Any], *, chat: bool) -> Any:
        kind = "chat.completion" if chat else "text_completion"
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        try:
            # Validation and tokenization happen here, outside the lock; model work inside it.
            pieces, finish = _handle(state, body, chat=chat)
            if body.get("stream") is not True:
                state.acquire()
                try:
                    gen: Generation = finish()
                finally:
                    state.release()
                choice: dict[str, Any] = {"index": 0, "finish_reason": gen.finish_reason}
                if chat:
                    choice["message"] = {"role": "assistant", "content": gen.text}
                    choice["logprobs"] = _chat_logprobs(gen)
                else:
                    choice["text"] = gen.text
                    choice["logprobs"] = _completion_logprobs(gen)
                return {"id": rid, "object": kind, "created": created, "model": backend.name,
                        "choices": [choice], "usage": _usage(gen)}
        except (BackendError, ConfigError) as exc:
            raise RequestError(str(exc)) from None
        chunk_kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str, reason: str | None) -> str:
            choice: dict[str, Any] = {"index": 0, "finish_reason": reason}
            if chat:
                choice["delta"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            doc = {"id": rid, "object": chunk_kind, "created": created, "model": backend.name, "choices": [choice]}
            return f"data: {json.dumps(doc)}\n\n"

        def pump(emit: Callable[[tuple[str, Any]], None], stop: threading.Event) -> None:
            # Decoding runs in this worker thread, which holds the backend lock; it checks `stop`
            # between pieces, so a client that goes away ends the decoding and frees the lock.
            state.acquire()
            it = iter(pieces) if pieces is not None else iter(())
            try:
                if stop.is_set():
                    return
                for piece in it:
                    emit(("piece", piece))
                    if stop.is_set():
                        return
                emit(("done", finish()))
            except (BackendError, ConfigError) as exc:
                emit(("error", RequestError(str(exc))))
            except Exception as exc:  # reported to the client; the server keeps serving
                emit(("error", RequestError(f"internal error: {exc}", status=500)))
            finally:
                close = getattr(it, "close", None)
                if callable(close):
                    close()
                state.release()
                emit(("end", None))

        async def events() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            stop = threading.Event()

            def emit(item: tuple[str, Any]) -> None:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                except RuntimeError:  # the event loop is gone (server shutting down)
                    stop.set()

            threading.Thread(target=pump, args=(emit, stop), name="tenfold-llm-stream", daemon=True).start()
            try:
                while True:
                    kind_, value = await queue.get()
                    if kind_ == "piece":
                        yield chunk(value, None)
                    elif kind_ == "done":
                        gen: Generation = value
                        yield chunk("" if pieces is not None else gen.text, gen.finish_reason)
                        doc = {"id": rid, "object": chunk_kind, "created": created, "model": backend.name,
                               "choices": [], "usage": _usage(gen)}
                        yield f"data: {json.dumps(doc)}\n\n"
                    elif kind_ == "error":
                        yield f"data: {json.dumps(value.body())}\n\n"
                    else:
                        break
                yield "data: [DONE]\n\n"
            finally:
                stop.set()  # a disconnect cancels this generator here; the worker stops at its next piece

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(req: Request) -> Any:
        body = await _body(req)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_run, body, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(req: Request) -> Any:
        body = await _body(req)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_run, body, chat=True)

    return app


def check_port(port: int) -> int:
    """``port`` if it is a TCP port number (0..65535; 0 picks a free one), else ConfigError."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError("port", port, "must be a TCP port number in 0..65535")
    return port


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; BackendError naming the port when it cannot be bound."""
    check_port(port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise BackendError(f"host {host!r} is not a loopback address; tenfold serves on 127.0.0.1 only")
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise BackendError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (is port {port} in use?)") from None
    sock.set_inheritable(True)
    return sock


def serve(backend: LLMBackend, *, host: str = "127.0.0.1", port: int = 8000, sock: socket.socket | None = None) -> None:
    """Run the server in the foreground until interrupted (loopback only by default).

    ``sock``: a socket from :func:`bind` (the CLI binds before loading the model, so a taken
    port fails fast); otherwise ``host:port`` is bound here. The banner prints once bound.
    """
    import uvicorn

    if sock is None:
        sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"tenfold llm serve: {backend.name} on http://{bound_host}:{bound_port}/v1", flush=True)
    server = uvicorn.Server(uvicorn.Config(make_app(backend), log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
