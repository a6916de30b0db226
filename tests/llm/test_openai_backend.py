"""OpenAIBackend's wire format, retries and errors, against httpx.MockTransport and a dead port."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tenfold.errors import BackendCapabilityError, BackendError
from tenfold.llm import OpenAIBackend, SamplingParams, free_port

Handler = Callable[[httpx.Request], httpx.Response]

COMPLETION = {
    "choices": [{"index": 0, "text": " Paris", "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 8}},
}
VLLM_METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="smollm2"} 5.0
vllm:num_requests_waiting{engine="0",model_name="smollm2"} 11.0
vllm:kv_cache_usage_perc{engine="0",model_name="smollm2"} 0.97
vllm:prompt_tokens_total{engine="0",model_name="smollm2"} 12800.0
"""


def backend_with(handler: Handler, **kwargs: object) -> tuple[OpenAIBackend, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.Client(transport=httpx.MockTransport(record))
    return OpenAIBackend("http://gpu-host:8000/v1", "m", http_client=client, backoff_s=0.0, **kwargs), seen  # type: ignore[arg-type]


def test_an_unreachable_server_raises_backend_error_with_the_url() -> None:
    port = free_port()
    remote = OpenAIBackend(f"http://127.0.0.1:{port}", "m", retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(BackendError, match=rf"cannot reach http://127\.0\.0\.1:{port}/v1/completions after 2 attempts"):
        remote.complete("hi")
    remote.close()
    assert not OpenAIBackend(f"http://127.0.0.1:{port}").health()


def test_503_is_retried_then_succeeds() -> None:
    answers = [httpx.Response(503), httpx.Response(503), httpx.Response(200, json=COMPLETION)]
    remote, seen = backend_with(lambda _r: answers.pop(0), retries=2)
    gen = remote.complete("The capital of France is", SamplingParams(max_tokens=2))
    assert len(seen) == 3
    assert gen.text == " Paris"
    assert (gen.usage.prefill_tokens, gen.usage.cached_tokens, gen.usage.decode_tokens) == (4, 8, 2)


def test_a_read_timeout_on_a_generation_post_is_not_retried() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    remote, seen = backend_with(slow, retries=3)
    with pytest.raises(BackendError, match=r"POST http://gpu-host:8000/v1/completions failed after it was sent "
                                           r"\(not retried\): ReadTimeout"):
        remote.complete("hi", SamplingParams(max_tokens=2))
    assert len(seen) == 1  # one generation queued on the server, not four


def test_a_connect_error_on_a_post_is_retried_then_succeeds() -> None:
    answers: list[httpx.Response | None] = [None, None, httpx.Response(200, json=COMPLETION)]

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if answer is None:
            raise httpx.ConnectError("connection refused", request=request)
        return answer

    remote, seen = backend_with(flaky, retries=2)
    assert remote.complete("hi", SamplingParams(max_tokens=2)).text == " Paris"
    assert len(seen) == 3


def test_a_client_error_is_not_retried_and_quotes_the_server() -> None:
    body = {"error": {"message": "This model's maximum context length is 1024 tokens. However, you requested 5000"}}
    remote, seen = backend_with(lambda _r: httpx.Response(400, json=body), retries=3)
    with pytest.raises(BackendError, match=r"http://gpu-host:8000/v1/completions answered HTTP 400: .*1024 .*5000"):
        remote.complete("x")
    assert len(seen) == 1


def test_chat_sends_sampling_logprobs_and_the_chat_flags_in_the_body() -> None:
    answer = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "7"}, "finish_reason": "length",
                     "logprobs": {"content": [{"token": "7", "logprob": -0.1, "top_logprobs": [
                         {"token": "9", "logprob": -2.0}, {"token": "7", "logprob": -0.1}]}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 1},
    }
    remote, seen = backend_with(lambda _r: httpx.Response(200, json=answer))
    msgs = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "score: "}]
    nt = remote.next_token(msgs, k=10, add_generation_prompt=False, continue_final_message=True)
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/chat/completions"
    assert body == {
        "model": "m", "max_tokens": 1, "temperature": 0.0, "top_p": 1.0, "logprobs": True, "top_logprobs": 10,
        "messages": msgs, "add_generation_prompt": False, "continue_final_message": True,
    }
    assert [t.token for t in nt.top] == ["7", "9"]  # sorted best first
    assert nt.usage.prompt_tokens == 30


def test_completions_send_integer_logprobs_stop_and_seed() -> None:
    remote, seen = backend_with(lambda _r: httpx.Response(200, json=COMPLETION))
    remote.complete("p", SamplingParams(max_tokens=3, temperature=0.6, top_p=0.95, seed=4, stop=("\n\n",),
                                        top_logprobs=5))
    body = json.loads(seen[0].content)
    assert body == {"model": "m", "prompt": "p", "max_tokens": 3, "temperature": 0.6, "top_p": 0.95, "seed": 4,
                    "stop": ["\n\n"], "logprobs": 5}


def test_a_server_without_logprobs_is_reported() -> None:
    remote, _ = backend_with(lambda _r: httpx.Response(200, json=COMPLETION))
    with pytest.raises(BackendCapabilityError) as err:
        remote.next_token("p", k=5)
    assert (err.value.server, err.value.field) == ("http://gpu-host:8000/v1", "top_logprobs")
    assert str(err.value) == ("server http://gpu-host:8000/v1 does not support 'top_logprobs': "
                              "the answer carried no top_logprobs; the call needs a server that returns them")


def test_a_server_rejecting_continue_final_message_names_the_field() -> None:
    body = {"error": {"message": "Unrecognized request argument supplied: continue_final_message"}}
    remote, seen = backend_with(lambda _r: httpx.Response(400, json=body), retries=3)
    msgs = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "score: "}]
    with pytest.raises(BackendCapabilityError) as err:
        remote.next_token(msgs, k=10, add_generation_prompt=False, continue_final_message=True)
    assert (err.value.server, err.value.field) == ("http://gpu-host:8000/v1", "continue_final_message")
    assert "answered HTTP 400: Unrecognized request argument supplied: continue_final_message" in str(err.value)
    assert len(seen) == 1
    with pytest.raises(BackendCapabilityError, match="'continue_final_message'"):  # the streamed path too
        list(remote.stream_chat(msgs, continue_final_message=True))


def test_a_client_error_naming_a_field_the_request_did_not_send_stays_a_backend_error() -> None:
    body = {"error": {"message": "continue_final_message and add_generation_prompt conflict"}}
    remote, _ = backend_with(lambda _r: httpx.Response(400, json=body))
    with pytest.raises(BackendError) as err:
        remote.complete("p")
    assert type(err.value) is BackendError


def test_chat_flags_can_be_left_out_for_strict_servers() -> None:
    answer = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": {}}
    remote, seen = backend_with(lambda _r: httpx.Response(200, json=answer), send_chat_flags=False)
    remote.chat([{"role": "user", "content": "hello"}])
    assert "add_generation_prompt" not in json.loads(seen[0].content)


def test_vllm_metrics_are_parsed() -> None:
    remote, seen = backend_with(lambda _r: httpx.Response(200, text=VLLM_METRICS))
    m = remote.metrics()
    assert seen[0].url.path == "/metrics"
    assert (m.running, m.waiting, m.kv_cache_usage) == (5, 11, 0.97)
    assert m.raw["vllm:prompt_tokens_total"] == 12800.0


def test_count_tokens_uses_the_servers_tokenize_endpoint() -> None:
    remote, seen = backend_with(lambda _r: httpx.Response(200, json={"count": 4, "max_model_len": 1024}))
    assert remote.count_tokens("a b c d") == 4
    assert seen[0].url.path == "/tokenize"
    assert json.loads(seen[0].content)["add_special_tokens"] is False


def test_context_window_comes_from_the_model_list() -> None:
    models = {"data": [{"id": "m", "max_model_len": 1024}]}
    remote, _ = backend_with(lambda _r: httpx.Response(200, json=models))
    assert remote.context_window == 1024
    bare, _ = backend_with(lambda _r: httpx.Response(200, json={"data": [{"id": "m"}]}))
    with pytest.raises(BackendError, match="does not report max_model_len"):
        _ = bare.context_window
