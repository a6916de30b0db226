"""The OpenAI-compatible server, in-process through FastAPI's TestClient (an httpx.Client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import httpx
import pytest
from fastapi.testclient import TestClient

from tenfold.errors import BackendError
from tenfold.llm import OpenAIBackend, SamplingParams, ScriptedBackend, TinyGPTBackend, make_app
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
        ("/v1/completions", b'{"prompt": "a", "logprobs": 50}', "'top_logprobs' = 50"),
        ("/v1/completions", b'{"prompt": "a", "stream": "yes"}', "'stream' must be bool"),
        ("/v1/completions", b'{"prompt": "a", "echo": true}', "'echo' is not supported"),
        ("/v1/chat/completions", b'{"messages": "hi"}', "non-empty list"),
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
