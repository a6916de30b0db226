"""The OpenAI-compatible server, in-process through FastAPI's TestClient (an httpx.Client)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient

from tenfold.errors import BackendError, ConfigError
from tenfold.llm import (
    Generation,
    GenerationStream,
    OpenAIBackend,
    SamplingParams,
    ScriptedBackend,
    TinyGPTBackend,
    Usage,
    make_app,
)
from tenfold.llm.server import bind
from tests.llm._shared import tiny_backend


@pytest.fixture
def tiny_client() -> Iterator[tuple[TinyGPTBackend, TestClient]]:
    backend = tiny_backend()
    with TestClient(make_app(backend)) as client:
        yield backend, client


def test_health_models_and_tokenize(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    _, client = tiny_client
    assert client.get("/health").json() == {"status": "ok"}
    models = client.get("/v1/models").json()
    assert models["data"][0]["id"] == "tiny-gpt-test"
    assert models["data"][0]["max_model_len"] == 512
    assert client.post("/tokenize", json={"prompt": "abc"}).json() == {"count": 3, "max_model_len": 512}


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/completions", b"{oops", "not valid JSON"),
        ("/v1/completions", b'"a string"', "must be a JSON object"),
        ("/v1/completions", b'{"prompt": ""}', "'prompt' must be a non-empty string"),
        ("/v1/completions", b'{"prompt": "a", "max_tokens": "ten"}', "'max_tokens' must be int"),
        ("/v1/completions", b'{"prompt": "a", "max_tokens": 0}', "'max_tokens' = 0: must be in (0, inf]"),
        ("/v1/completions", b'{"prompt": "a", "logprobs": 50}', "'logprobs' = 50"),
        ("/v1/completions", b'{"prompt": "a", "stream": "yes"}', "'stream' must be bool"),
        ("/v1/completions", b'{"prompt": "a", "echo": true}', "'echo' is not supported"),
        ("/v1/chat/completions", b'{"messages": "hi"}', "'messages' must be a non-empty list of messages, got 'hi'"),
        ("/v1/chat/completions", b'{"messages": [{"role": "x", "content": "y"}]}', "role = 'x'"),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "y"}], "top_logprobs": 3}',
         "needs 'logprobs': true"),
        ("/v1/chat/completions",
         b'{"messages": [{"role": "user", "content": "y"}], "continue_final_message": true}', "role 'assistant'"),
        ("/v1/completions", b'{"prompt": "' + b"a" * 600 + b'"}', "context window of 512"),
    ],
)
def test_malformed_requests_get_400_with_a_json_error_and_the_server_keeps_serving(
    tiny_client: tuple[TinyGPTBackend, TestClient], path: str, body: bytes, needle: str
) -> None:
    _, client = tiny_client
    resp = client.post(path, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]
    ok = client.post("/v1/completions", json={"prompt": "Question:", "max_tokens": 3, "temperature": 0})
    assert ok.status_code == 200
    assert ok.json()["usage"]["completion_tokens"] == 3


def test_a_wrong_model_name_is_a_404(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    _, client = tiny_client
    resp = client.post("/v1/completions", json={"model": "gpt-9", "prompt": "a"})
    assert resp.status_code == 404
    assert "this server serves 'tiny-gpt-test'" in resp.json()["error"]["message"]


def test_completion_logprobs_follow_the_openai_shape(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    backend, client = tiny_client
    body = {"prompt": "Question: what is", "max_tokens": 3, "temperature": 0, "logprobs": 2}
    choice = client.post("/v1/completions", json=body).json()["choices"][0]
    direct = backend.complete("Question: what is", SamplingParams(max_tokens=3, top_logprobs=2))
    assert choice["text"] == direct.text
    assert choice["logprobs"]["tokens"] == [t.token for t in direct.token_logprobs]
    assert len(choice["logprobs"]["top_logprobs"]) == 3
    assert all(len(d) == 2 for d in choice["logprobs"]["top_logprobs"])


def test_openai_backend_through_the_app_matches_the_backend(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    backend, client = tiny_client
    remote = OpenAIBackend("http://testserver", http_client=cast(httpx.Client, client))
    params = SamplingParams(max_tokens=8, top_logprobs=3)
    local = backend.chat([{"role": "user", "content": "Question: what is 1 plus 1?"}], params)
    over_http = remote.chat([{"role": "user", "content": "Question: what is 1 plus 1?"}], params)
    assert over_http.text == local.text
    # The second call reuses the first one's cached prefix, so logprobs agree to float rounding.
    assert [t.token for t in over_http.token_logprobs] == [t.token for t in local.token_logprobs]
    assert [t.logprob for t in over_http.token_logprobs] == pytest.approx(
        [t.logprob for t in local.token_logprobs], abs=1e-5
    )
    assert [[t.token for t in top] for top in over_http.top_logprobs] == [
        [t.token for t in top] for top in local.top_logprobs
    ]
    assert over_http.usage.decode_tokens == local.usage.decode_tokens
    assert remote.count_tokens("Question") == 8
    assert remote.context_window == 512


def test_streaming_sends_real_pieces_and_usage(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    backend, client = tiny_client
    remote = OpenAIBackend("http://testserver", http_client=cast(httpx.Client, client))
    stream = remote.stream_complete("Question: what is 3", SamplingParams(max_tokens=10))
    pieces = list(stream)
    expected = backend.complete("Question: what is 3", SamplingParams(max_tokens=10))
    assert len(pieces) >= 2
    assert "".join(pieces) == expected.text == stream.result.text
    assert stream.result.usage.decode_tokens == 10
    assert stream.result.finish_reason == "length"
    chat = remote.stream_chat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4))
    assert "".join(chat) == chat.result.text


def test_a_backend_that_cannot_stream_still_streams_one_chunk() -> None:
    fake = ScriptedBackend(["Hello there, friend."])
    with TestClient(make_app(fake)) as client:
        remote = OpenAIBackend("http://testserver", http_client=cast(httpx.Client, client))
        stream = remote.stream_complete("hi", SamplingParams(max_tokens=10))
        assert list(stream) == ["Hello there, friend."]
        assert stream.result.usage.decode_tokens == 5


def test_metrics_report_cache_and_queue(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    _, client = tiny_client
    remote = OpenAIBackend("http://testserver", http_client=cast(httpx.Client, client))
    remote.complete("Question: what is 9", SamplingParams(max_tokens=2))
    m = remote.metrics()
    assert (m.running, m.waiting) == (0, 0)
    assert 0.0 < m.kv_cache_usage <= 1.0


def test_serve_refuses_a_non_loopback_host() -> None:
    from tenfold.llm import serve

    with pytest.raises(BackendError, match="not a loopback address"):
        serve(ScriptedBackend([]), host="0.0.0.0")


class _SlowStream(GenerationStream):
    """Pieces every 20 ms, practically forever; ``produced`` counts what was decoded."""

    def __init__(self, produced: list[int]) -> None:
        self.produced = produced

    def __iter__(self) -> Iterator[str]:
        for i in range(10_000):
            time.sleep(0.02)
            self.produced.append(i)
            yield "x"
        self._result = Generation("x" * 10_000, "length", Usage(1, 0, 10_000))


class _SlowBackend(ScriptedBackend):
    def __init__(self) -> None:
        super().__init__(["ok"] * 10)
        self.produced: list[int] = []

    def stream_complete(self, prompt: str, params: SamplingParams | None = None) -> _SlowStream:
        return _SlowStream(self.produced)


@contextlib.contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a thread (TestClient buffers whole responses)."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_a_client_that_disconnects_mid_stream_frees_the_server() -> None:
    backend = _SlowBackend()
    with _uvicorn(make_app(backend)) as url:
        with httpx.Client(base_url=url, timeout=10) as streamer:
            body = {"prompt": "hi", "max_tokens": 10_000, "stream": True}
            with streamer.stream("POST", "/v1/completions", json=body) as resp:
                first = next(line for line in resp.iter_lines() if line.startswith("data:"))
                assert json.loads(first[5:])["choices"][0]["text"] == "x"
        # The connection is closed: the stream's worker stops decoding and releases the backend lock.
        start = time.monotonic()
        ok = httpx.post(url + "/v1/completions", json={"prompt": "hi", "max_tokens": 5}, timeout=5)
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["text"] == "ok"
        assert time.monotonic() - start < 5
        stopped_at = len(backend.produced)
        time.sleep(0.3)
        assert len(backend.produced) == stopped_at < 500  # decoding stopped, long before its 10k pieces
        metrics = httpx.get(url + "/metrics", timeout=5).text
        assert 'tenfold:num_requests_running{model_name="scripted-fake"} 0' in metrics


def test_a_max_tokens_over_the_context_window_is_a_400_naming_it(
    tiny_client: tuple[TinyGPTBackend, TestClient],
) -> None:
    _, client = tiny_client
    resp = client.post("/v1/completions", json={"prompt": "a" * 500, "max_tokens": 100})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == "max_tokens"
    assert error["message"] == (
        "'max_tokens' = 100 is too large: the prompt has 500 tokens and model 'tiny-gpt-test' has a context "
        "window of 512 tokens, so at most 12 tokens can be decoded"
    )
    chat = {"messages": [{"role": "user", "content": "a" * 400}], "max_completion_tokens": 200}
    resp = client.post("/v1/chat/completions", json=chat)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "max_completion_tokens"
    # Without an explicit budget the default is capped to what fits, as before.
    ok = client.post("/v1/completions", json={"prompt": "a" * 500, "max_tokens": 12, "temperature": 0})
    assert ok.status_code == 200
    assert ok.json()["usage"]["completion_tokens"] <= 12


def test_max_completion_tokens_zero_is_rejected_not_replaced(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    _, client = tiny_client
    body = {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 0, "max_tokens": 5}
    resp = client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "max_completion_tokens"
    assert resp.json()["error"]["message"].startswith("'max_completion_tokens' = 0")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"prompt": "a", "stream": True, "logprobs": 2}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}], "stream": True, "logprobs": True}),
    ],
)
def test_streaming_with_logprobs_is_a_400_naming_logprobs(
    tiny_client: tuple[TinyGPTBackend, TestClient], path: str, body: dict[str, Any]
) -> None:
    _, client = tiny_client
    resp = client.post(path, json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "logprobs"
    assert "'logprobs' is not supported with 'stream': true" in resp.json()["error"]["message"]


def test_a_deeply_nested_body_is_a_400(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    _, client = tiny_client
    deep = b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = client.post("/v1/completions", content=deep, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "the request body is nested too deeply to parse"


def test_unknown_routes_and_methods_get_openai_style_errors(tiny_client: tuple[TinyGPTBackend, TestClient]) -> None:
    _, client = tiny_client
    resp = client.get("/v1/nothing")
    assert resp.status_code == 404
    assert resp.json()["error"] == {"message": "GET /v1/nothing: Not Found", "type": "invalid_request_error",
                                    "param": None, "code": 404}
    resp = client.get("/v1/completions")
    assert resp.status_code == 405
    assert resp.json()["error"]["message"] == "GET /v1/completions: Method Not Allowed"


def test_bind_validates_the_port_and_names_a_taken_one() -> None:
    with pytest.raises(ConfigError, match=r"must be a TCP port number in 0\.\.65535"):
        bind("127.0.0.1", 70000)
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(BackendError, match=rf"cannot listen on 127\.0\.0\.1:{port}: .*is port {port} in use"):
            bind("127.0.0.1", port)
    finally:
        taken.close()
