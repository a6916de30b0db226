"""``OpenAIBackend``: any OpenAI-compatible server (vLLM, SGLang, ``tenfold llm serve``) over httpx.

Chat calls send vLLM's ``add_generation_prompt`` and ``continue_final_message`` in the body
(the ``extra_body`` of the ``openai`` client), which vLLM, SGLang and tenfold's own server
accept; ``logprobs``/``top_logprobs`` map to the completions API's integer ``logprobs`` and
the chat API's boolean ``logprobs`` plus ``top_logprobs``. Usage comes from the server's
``usage`` (``prompt_tokens_details.cached_tokens`` where the server reports prefix hits;
vLLM needs ``--enable-prompt-tokens-details``).

Connection failures (and, for GETs, any transport error) and HTTP 502/503/504 are retried with
exponential back-off; a POST that may have reached the server (a read timeout) is never retried,
so no duplicate generation is queued;
what still fails raises :class:`~tenfold.errors.BackendError` naming the URL. A server that
rejects one of the fields above (an HTTP 400/422 whose message names it), or answers a
``next_token`` call without ``top_logprobs``, raises its subclass
:class:`~tenfold.errors.BackendCapabilityError` naming the server and the field. ``metrics()``
reads Prometheus ``/metrics`` (vLLM's ``vllm:`` gauges, or ``tenfold:`` from tenfold's server).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenfold.core.api import api
from tenfold.core.config import check_range
from tenfold.errors import BackendCapabilityError, BackendError

from .backend import (
    FinishReason,
    Generation,
    GenerationStream,
    Message,
    NextToken,
    SamplingParams,
    TokenLogprob,
    Usage,
    check_messages,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenAIBackend", "RemoteStream", "ServerMetrics"]

_RETRY_STATUS = (502, 503, 504)
_CAPABILITY_FIELDS = ("continue_final_message", "add_generation_prompt", "top_logprobs", "logprobs")
"""Request fields a server may not implement; ``top_logprobs`` is tested before its substring ``logprobs``."""


@dataclass(frozen=True)
class ServerMetrics:
    """Gauges read from a server's ``/metrics`` (summed over label sets)."""

    kv_cache_usage: float
    """Fraction of the KV cache in use, 0..1."""
    running: int
    """Requests being decoded."""
    waiting: int
    """Requests queued."""
    raw: dict[str, float] = field(default_factory=dict)
    """Every unlabelled-or-summed sample by metric name."""


def _finish(reason: Any) -> FinishReason:
    return "length" if reason == "length" else "stop"


def _usage(doc: dict[str, Any], seconds: float) -> Usage:
    u = doc.get("usage") or {}
    prompt = int(u.get("prompt_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return Usage(prompt - cached, cached, int(u.get("completion_tokens") or 0), seconds)


_Logprobs = tuple[tuple[TokenLogprob, ...], tuple[tuple[TokenLogprob, ...], ...]]


def _parse_logprobs(choice: dict[str, Any], chat: bool) -> _Logprobs:
    lp = choice.get("logprobs")
    if not lp:
        return (), ()
    if chat:
        content = lp.get("content") or []
        chosen = tuple(TokenLogprob(c["token"], float(c["logprob"])) for c in content)
        tops = tuple(
            tuple(TokenLogprob(t["token"], float(t["logprob"])) for t in c.get("top_logprobs") or []) for c in content
        )
    else:
        pairs = zip(lp.get("tokens") or [], lp.get("token_logprobs") or [], strict=False)
        chosen = tuple(TokenLogprob(t, float(v)) for t, v in pairs)
        tops = tuple(
            tuple(TokenLogprob(t, float(v)) for t, v in (d or {}).items()) for d in lp.get("top_logprobs") or []
        )
    tops = tuple(tuple(sorted(t, key=lambda x: -x.logprob)) for t in tops)
    return chosen, tops if any(tops) else ()


class RemoteStream(GenerationStream):
    """A streamed generation: iterate for text pieces; then read :attr:`result`."""

    def __init__(self, backend: OpenAIBackend, path: str, body: dict[str, Any], chat: bool) -> None:
        self._backend, self._path, self._body, self._chat = backend, path, body, chat
        self._result: Generation | None = None

    def __iter__(self) -> Iterator[str]:
        if self._result is not None:
            return
        start = time.perf_counter()
        url = self._backend.base_url + self._path
        text, reason, usage_doc = "", None, {}
        try:
            with self._backend.client.stream("POST", url, json=self._body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._backend.raise_for(url, resp, self._body)
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    doc = json.loads(data)
                    if "error" in doc:
                        raise BackendError(f"{url} failed mid-stream: {doc['error'].get('message')}")
                    if doc.get("usage"):
                        usage_doc = doc
                    for choice in doc.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") if self._chat else choice.get("text")
                        if piece:
                            text += piece
                            yield piece
                        reason = choice.get("finish_reason") or reason
        except self._backend.transport_errors() as exc:
            raise BackendError(f"cannot stream from {url}: {exc}") from None
        self._result = Generation(text, _finish(reason), _usage(usage_doc, time.perf_counter() - start))


@api(stability="beta")
class OpenAIBackend:
    """An OpenAI-compatible HTTP server behind :class:`~tenfold.llm.LLMBackend`."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        context_window: int | None = None,
        send_chat_flags: bool = True,
        http_client: httpx.Client | None = None,
    ) -> None:
        check_range("timeout_s", timeout_s, lo=0.0, lo_open=True)
        check_range("retries", retries, lo=0)
        url = base_url.rstrip("/")
        self.base_url = url if url.endswith("/v1") else url + "/v1"
        self.root_url = self.base_url[: -len("/v1")]
        self._model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._window = context_window
        self.send_chat_flags = send_chat_flags
        # An injected client (e.g. over httpx.MockTransport in tests) replaces the default one.
        self._client: httpx.Client | None = http_client

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.Client(timeout=self.timeout_s, headers=headers)
        return self._client

    def close(self) -> None:
        """Close the HTTP connection pool (also done on ``with`` exit and on garbage collection)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    @staticmethod
    def transport_errors() -> tuple[type[Exception], ...]:
        import httpx

        return (httpx.TransportError,)

    @staticmethod
    def retryable_post_errors() -> tuple[type[Exception], ...]:
        """Transport errors after which a POST is retried: only those where nothing was sent."""
        import httpx

        return (httpx.ConnectError, httpx.ConnectTimeout)

    def raise_for(self, url: str, resp: httpx.Response, body: dict[str, Any] | None = None) -> None:
        """Raise BackendError for an HTTP error answer, quoting the server's message.

        A 400/422 whose message names a capability field the request sent (``continue_final_message``,
        ``add_generation_prompt``, ``top_logprobs``, ``logprobs``) raises BackendCapabilityError.
        """
        try:
            err = resp.json().get("error")
            message = err.get("message") if isinstance(err, dict) else err
        except (ValueError, AttributeError):
            message = resp.text[:300]
        detail = f"{url} answered HTTP {resp.status_code}: {message}"
        if resp.status_code in (400, 422) and body is not None:
            named = next((f for f in _CAPABILITY_FIELDS if f in body and f in str(message)), None)
            if named is not None:
                raise BackendCapabilityError(self.base_url, named, detail)
        raise BackendError(detail)

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
        last: Exception | str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))  # retry back-off, not a faked timing
            try:
                resp = self.client.request(method, url, json=body)
            except self.transport_errors() as exc:
                if method != "GET" and not isinstance(exc, self.retryable_post_errors()):
                    # The request may have reached the server (e.g. a read timeout while it decodes):
                    # sending it again would queue a duplicate generation behind the first.
                    raise BackendError(f"{method} {url} failed after it was sent (not retried): "
                                       f"{type(exc).__name__}: {exc}") from None
                last = exc
                continue
            if resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code >= 400:
                self.raise_for(url, resp, body)
            return resp
        raise BackendError(f"cannot reach {url} after {self.retries + 1} attempts: {last}")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self._request("POST", self.base_url + path, body)
        data: dict[str, Any] = resp.json()
        return data

    def _models(self) -> list[dict[str, Any]]:
        data = self._request("GET", self.base_url + "/models").json().get("data") or []
        if not data:
            raise BackendError(f"{self.base_url}/models lists no models")
        return list(data)

    # -- LLMBackend ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        if self._model is None:
            self._model = str(self._models()[0]["id"])
        return self._model

    @property
    def context_window(self) -> int:
        if self._window is None:
            entry = next((m for m in self._models() if m.get("id") == self.name), {})
            window = entry.get("max_model_len")
            if not isinstance(window, int):
                raise BackendError(
                    f"{self.base_url}/models does not report max_model_len for {self.name!r}; "
                    "pass context_window= to OpenAIBackend"
                )
            self._window = window
        return self._window

    @property
    def supports_prefix_cache(self) -> bool:
        return True  # the server decides; usage reports what it reused

    def _sampling(self, params: SamplingParams, chat: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.name,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.logprobs or params.top_logprobs:
            if chat:
                body["logprobs"] = True
                body["top_logprobs"] = params.top_logprobs
            else:
                body["logprobs"] = params.top_logprobs
        return body

    def _chat_body(self, messages: Sequence[Message], params: SamplingParams, flags: dict[str, bool]) -> dict[str, Any]:
        body = self._sampling(params, chat=True)
        body["messages"] = check_messages(messages)
        if self.send_chat_flags:
            body.update(flags)
        return body

    def _generation(self, doc: dict[str, Any], chat: bool, seconds: float) -> Generation:
        choices = doc.get("choices") or []
        if not choices:
            raise BackendError(f"{self.base_url} answered without choices: {str(doc)[:200]}")
        choice = choices[0]
        text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
        chosen, tops = _parse_logprobs(choice, chat)
        return Generation(text or "", _finish(choice.get("finish_reason")), _usage(doc, seconds), None, chosen, tops)

    def complete(self, prompt: str, params: SamplingParams | None = None) -> Generation:
        params = params or SamplingParams()
        body = self._sampling(params, chat=False) | {"prompt": prompt}
        start = time.perf_counter()
        doc = self._post("/completions", body)
        return self._generation(doc, False, time.perf_counter() - start)

    def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
    ) -> Generation:
        flags = {"add_generation_prompt": add_generation_prompt, "continue_final_message": continue_final_message}
        body = self._chat_body(messages, params or SamplingParams(), flags)
        start = time.perf_counter()
        doc = self._post("/chat/completions", body)
        return self._generation(doc, True, time.perf_counter() - start)

    def stream_complete(self, prompt: str, params: SamplingParams | None = None) -> RemoteStream:
        """Stream a completion: iterate for text pieces, then read ``.result``."""
        body = self._sampling(params or SamplingParams(), chat=False)
        body |= {"prompt": prompt, "stream": True, "stream_options": {"include_usage": True}}
        return RemoteStream(self, "/completions", body, chat=False)

    def stream_chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
    ) -> RemoteStream:
        """Stream a chat answer: iterate for text pieces, then read ``.result``."""
        flags = {"add_generation_prompt": add_generation_prompt, "continue_final_message": continue_final_message}
        body = self._chat_body(messages, params or SamplingParams(), flags)
        body |= {"stream": True, "stream_options": {"include_usage": True}}
        return RemoteStream(self, "/chat/completions", body, chat=True)

    def next_token(self, prompt: str | Sequence[Message], k: int = 10, **chat_flags: bool) -> NextToken:
        check_range("k", k, lo=1, hi=20)
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=k)
        gen = self.complete(prompt, params) if isinstance(prompt, str) else self.chat(prompt, params, **chat_flags)
        if not gen.top_logprobs:
            raise BackendCapabilityError(
                self.base_url, "top_logprobs",
                "the answer carried no top_logprobs; the call needs a server that returns them",
            )
        return NextToken(gen.top_logprobs[0], gen.usage)

    def count_tokens(self, text: str) -> int:
        body = {"model": self.name, "prompt": text, "add_special_tokens": False}
        resp = self._request("POST", self.root_url + "/tokenize", body)
        count = resp.json().get("count")
        if not isinstance(count, int):
            raise BackendError(f"{self.root_url}/tokenize answered without an integer 'count'")
        return count

    # -- server state -------------------------------------------------------------------------
    def health(self) -> bool:
        """True when ``/health`` answers 200."""
        try:
            return self.client.get(self.root_url + "/health", timeout=5.0).status_code == 200
        except self.transport_errors():
            return False

    def metrics(self) -> ServerMetrics:
        """KV-cache usage and running/waiting requests from ``/metrics``."""
        text = self._request("GET", self.root_url + "/metrics").text
        raw: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_part, _, value = line.rpartition(" ")
            name = name_part.split("{", 1)[0].strip()
            try:
                raw[name] = raw.get(name, 0.0) + float(value)
            except ValueError:
                continue

        def pick(*names: str) -> float:
            for prefix in ("vllm:", "tenfold:", "sglang:"):
                for n in names:
                    if prefix + n in raw:
                        return raw[prefix + n]
            return 0.0

        return ServerMetrics(
            kv_cache_usage=pick("kv_cache_usage_perc", "gpu_cache_usage_perc", "token_usage"),
            running=int(pick("num_requests_running", "num_running_reqs")),
            waiting=int(pick("num_requests_waiting", "num_queue_reqs")),
            raw=raw,
        )
