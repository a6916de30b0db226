"""Request traces: the JSONL schema, synthetic generators and the ShareGPT chat trace.

Spec §5. A trace is a list of requests ``(session_id, turn_id, ts, input_tokens,
output_tokens)``; ``input_tokens`` holds the whole prompt (history included) and
``output_tokens`` the reply, both as token ids. Replays run requests in timestamp order,
one at a time. One JSON object per line::

    {"session_id": "s0", "turn_id": 0, "ts": 0.0, "input_tokens": [1, 2], "output_tokens": [3]}

Generators are seeded (``numpy.random.Generator``) and draw token ids uniformly from the
SmolLM2 vocabulary, so distinct messages never share prefixes by accident.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tenfold.core.registry import Registry
from tenfold.errors import ConfigError, TraceError

__all__ = [
    "GENERATORS",
    "VOCAB",
    "Request",
    "Trace",
    "agent_trace",
    "chat_trace",
    "iter_sharegpt_records",
    "load_trace",
    "save_trace",
    "sharegpt_trace",
    "smollm2_tokenizer",
    "sysprompt_trace",
]

VOCAB = 49_152
"""SmolLM2's vocabulary size: synthetic ids are drawn from [0, VOCAB)."""
WORDS_PER_SECOND = 90 / 60
"""Typing speed for think times: 90 words per minute, as in the artifact."""
MAX_INPUT = 32_768
"""A ShareGPT session ends at its first input longer than this."""


@dataclass(frozen=True)
class Request:
    session_id: str
    turn_id: int
    ts: float
    input_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "turn_id": self.turn_id, "ts": self.ts,
                "input_tokens": list(self.input_tokens), "output_tokens": list(self.output_tokens)}


@dataclass(frozen=True)
class Trace:
    """Requests in replay order (timestamp, then session, then turn), plus a name."""

    name: str
    requests: tuple[Request, ...]

    @classmethod
    def of(cls, name: str, requests: Sequence[Request]) -> Trace:
        order = {sid: i for i, sid in enumerate(dict.fromkeys(r.session_id for r in requests))}
        return cls(name, tuple(sorted(requests, key=lambda r: (r.ts, order[r.session_id], r.turn_id))))

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def n_sessions(self) -> int:
        return len({r.session_id for r in self.requests})

    @property
    def input_tokens(self) -> int:
        return sum(len(r.input_tokens) for r in self.requests)

    def head_sessions(self, n: int) -> Trace:
        """The trace restricted to its first ``n`` sessions (by first appearance)."""
        keep = set(list(dict.fromkeys(r.session_id for r in self.requests))[:n])
        return Trace(f"{self.name}[:{n}]", tuple(r for r in self.requests if r.session_id in keep))


# -- JSONL ------------------------------------------------------------------------------

_FIELDS = ("session_id", "turn_id", "ts", "input_tokens", "output_tokens")


def _token_list(where: str, name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise TraceError(f"{where}: field {name!r} must be a list of token ids, got {type(value).__name__}")
    for tok in value:
        if isinstance(tok, bool) or not isinstance(tok, int) or tok < 0:
            raise TraceError(f"{where}: field {name!r} holds a bad token id {tok!r} (need an integer >= 0)")
    return tuple(value)


def parse_request(obj: Any, where: str) -> Request:
    """One request from a decoded JSON object; ``where`` is ``file:line`` for errors."""
    if not isinstance(obj, dict):
        raise TraceError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise TraceError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    sid = obj["session_id"]
    if isinstance(sid, bool) or not isinstance(sid, (str, int)):
        raise TraceError(f"{where}: bad session_id {sid!r} (need a string or integer)")
    turn = obj["turn_id"]
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 0:
        raise TraceError(f"{where}: bad turn_id {turn!r} (need an integer >= 0)")
    ts = obj["ts"]
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise TraceError(f"{where}: bad ts {ts!r} (need a finite number of seconds)")
    return Request(str(sid), turn, float(ts), _token_list(where, "input_tokens", obj["input_tokens"]),
                   _token_list(where, "output_tokens", obj["output_tokens"]))


def load_trace(path: str | Path) -> Trace:
    """Load a JSONL trace; a malformed line raises TraceError with ``file:line``."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: no such trace file")
    requests: list[Request] = []
    last: dict[str, tuple[float, int, int]] = {}
    with p.open(encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, 1):
            where = f"{p}:{lineno}"
            if any("\udc80" <= ch <= "\udcff" for ch in line):
                raise TraceError(f"{where}: not UTF-8 text")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{where}: not valid JSON ({exc.msg})") from None
            req = parse_request(obj, where)
            prev = last.get(req.session_id)
            if prev is not None:
                if req.ts < prev[0]:
                    raise TraceError(f"{where}: ts {req.ts} decreases within session {req.session_id!r} "
                                     f"(line {prev[2]} has {prev[0]})")
                if req.turn_id <= prev[1]:
                    raise TraceError(f"{where}: turn_id {req.turn_id} does not increase within session "
                                     f"{req.session_id!r} (line {prev[2]} has {prev[1]})")
            last[req.session_id] = (req.ts, req.turn_id, lineno)
            requests.append(req)
    if not requests:
        raise TraceError(f"{p}: the trace holds no requests")
    return Trace.of(p.stem, requests)


def save_trace(trace: Trace, path: str | Path) -> Path:
    """Write JSONL through a temporary file renamed into place."""
    from tenfold.core.assets import atomic_path

    target = Path(path)
    if target.is_dir():
        raise ConfigError("out", str(target), "is a directory; give a .jsonl file path")
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for req in trace.requests:
            fh.write(json.dumps(req.to_json(), separators=(",", ":")) + "\n")
    return target


# -- synthetic generators ---------------------------------------------------------------

def _check_sps(sps: float) -> None:
    if not sps > 0:
        raise ConfigError("sps", sps, "sessions per second must be > 0")


def _ids(rng: np.random.Generator, n: int) -> tuple[int, ...]:
    return tuple(int(t) for t in rng.integers(0, VOCAB, size=max(1, n)))


def _around(rng: np.random.Generator, mean: float) -> int:
    """mean ± 50%, uniform (design choice)."""
    return max(1, round(rng.uniform(0.5 * mean, 1.5 * mean)))


def _think_s(n_user_tokens: int) -> float:
    # NOTE: synthetic text has no spaces; we take 0.75 words per token (design choice),
    # typed at 90 words per minute like the ShareGPT trace.
    return 0.75 * n_user_tokens / WORDS_PER_SECOND


def chat_trace(n_sessions: int = 100, *, sps: float = 1.0, seed: int = 0, input_mean: float = 80,
               output_mean: float = 250, turns: tuple[int, int] = (10, 20),
               prefix: Callable[[np.random.Generator], tuple[int, ...]] | None = None,
               name: str = "chat") -> Trace:
    """Multi-turn chat: U[10,20] turns; user messages of about 80 tokens and replies of
    about 250, each ±50% uniform; each input is the whole history plus the new message."""
    _check_sps(sps)
    rng = np.random.default_rng(seed)
    out: list[Request] = []
    for s in range(n_sessions):
        history = prefix(rng) if prefix is not None else ()
        ts = s / sps
        for t in range(int(rng.integers(turns[0], turns[1] + 1))):
            user = _ids(rng, _around(rng, input_mean))
            reply = _ids(rng, _around(rng, output_mean))
            if t > 0:
                ts += _think_s(len(user))
            out.append(Request(f"s{s}", t, round(ts, 6), history + user, reply))
            history = history + user + reply
    return Trace.of(name, out)


def sysprompt_trace(n_sessions: int = 100, *, sps: float = 1.0, seed: int = 0, n_prompts: int = 5,
                    prompt_len: int = 1000) -> Trace:
    """Chat sessions that each start with one of ``n_prompts`` shared system prompts."""
    prompts = [_ids(np.random.default_rng([seed, 7, i]), prompt_len) for i in range(n_prompts)]
    return chat_trace(n_sessions, sps=sps, seed=seed, name="sysprompt",
                      prefix=lambda rng: prompts[int(rng.integers(0, n_prompts))])


def agent_trace(n_sessions: int = 20, *, sps: float = 0.05, seed: int = 0, task_len: int = 2000,
                obs_mean: float = 800, action_len: int = 150, gap_mean_s: float = 5.0,
                max_turns: int = 50, keep_rounds: int = 5) -> Trace:
    """SWE-style agent sessions (design choice): a task, then per turn the agent's action
    (the output) and the environment's observation (lognormal, mean ``obs_mean``);
    observations older than the last ``keep_rounds`` rounds are dropped from the prompt
    (their actions stay). Turn gaps are exponential with mean ``gap_mean_s``; a session has
    U[10, max_turns] turns."""
    _check_sps(sps)
    rng = np.random.default_rng(seed)
    sigma = 1.0
    mu = math.log(obs_mean) - sigma * sigma / 2
    out: list[Request] = []
    for s in range(n_sessions):
        task = _ids(rng, task_len)
        rounds: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        ts = s / sps
        # NOTE: U[10, max_turns] turns per session (design choice; the spec bounds it at 50).
        for t in range(int(rng.integers(min(10, max_turns), max_turns + 1))):
            prompt = task
            for j, (action, obs) in enumerate(rounds):
                prompt += action + (obs if j >= len(rounds) - keep_rounds else ())
            action = _ids(rng, action_len)
            out.append(Request(f"a{s}", t, round(ts, 6), prompt, action))
            rounds.append((action, _ids(rng, int(rng.lognormal(mu, sigma)))))
            ts += float(rng.exponential(gap_mean_s))
    return Trace.of("agent", out)


# -- ShareGPT ---------------------------------------------------------------------------

def iter_sharegpt_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a (possibly truncated) ShareGPT JSON array, decoded one at a time with
    ``raw_decode``; stops at ``]`` or at the unterminated last record."""
    text = path.read_text(encoding="utf-8")
    dec = json.JSONDecoder()
    i = text.find("[")
    if i < 0:
        raise TraceError(f"{path}:1: not a JSON array of conversations")
    i += 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            return
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            return  # the truncated tail
        if isinstance(obj, dict):
            yield obj


Tokenize = Callable[[list[str]], list[list[int]]]


def smollm2_tokenizer() -> Tokenize:
    """SmolLM2's tokenizer, read from the packaged GGUF (no hub access).

    NOTE: this moves to ``tenfold.llm`` once that layer is stable; marconi must not import
    it yet.
    """
    return _smollm2_cached()


_TOKENIZER: list[Tokenize] = []


def _smollm2_cached() -> Tokenize:
    if not _TOKENIZER:
        from tenfold.core.assets import asset_path, set_hub_offline

        set_hub_offline()
        from transformers import AutoTokenizer

        gguf = asset_path("smollm2-gguf")
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)

        def encode(texts: list[str]) -> list[list[int]]:
            return [list(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]

        _TOKENIZER.append(encode)
    return _TOKENIZER[0]


def _sharegpt_sessions(path: Path, n_sessions: int, min_messages: int) -> list[list[tuple[str, str]]]:
    """(user, reply) pairs of the first ``n_sessions`` records with >= ``min_messages``."""
    sessions: list[list[tuple[str, str]]] = []
    for rec in iter_sharegpt_records(path):
        conv = rec.get("conversations")
        if not isinstance(conv, list) or len(conv) < min_messages:
            continue
        # NOTE: messages pair up by position (2i as the user turn, 2i+1 as the reply),
        # whatever their roles, as the artifact does (the file splits conversations, so
        # some parts start with a reply).
        pairs = [(str(conv[k].get("value", "")) if isinstance(conv[k], dict) else "",
                  str(conv[k + 1].get("value", "")) if isinstance(conv[k + 1], dict) else "")
                 for k in range(0, len(conv) - 1, 2)]
        sessions.append(pairs)
        if len(sessions) == n_sessions:
            break
    return sessions


def sharegpt_trace(n_sessions: int = 100, *, sps: float = 1.0, path: Path | None = None,
                   tokenize: Tokenize | None = None, tokenizer_name: str = "smollm2",
                   artifact_compat: bool = False, min_messages: int = 20, use_cache: bool = True) -> Trace:
    """The multi-turn ShareGPT trace: conversations with >= 20 messages, input = history +
    user message, output = the reply, tokenized with SmolLM2 (the paper used Llama-2).

    Session ``s`` starts at ``s/sps``; each later turn waits (spaces in the user text) /
    (90/60) seconds. A session ends at its first input over 32,768 tokens. Token ids are
    cached under the tenfold cache dir, keyed by a hash of the inputs.
    """
    _check_sps(sps)
    if path is None:
        from tenfold.core.assets import asset_path

        path = asset_path("sharegpt-v3")
    sessions = _sharegpt_sessions(path, n_sessions, min_messages)
    render: Callable[[str, str], str]
    if artifact_compat:
        # NOTE: the artifact tokenizes json.dumps(message).
        render = lambda role, text: json.dumps({"from": role, "value": text})  # noqa: E731
    else:
        # NOTE: plain message text, no chat template (design choice): the history is the
        # concatenation of the messages' own tokens, so it is an exact prefix.
        render = lambda role, text: text  # noqa: E731
    texts = [render(role, m) for pairs in sessions for u, r in pairs for role, m in (("human", u), ("gpt", r))]
    ids = _tokenize_cached(texts, tokenize, tokenizer_name, use_cache)
    out: list[Request] = []
    k = 0
    for s, pairs in enumerate(sessions):
        history: tuple[int, ...] = ()
        ts = s / sps
        ended = False
        for t, (user_text, _reply) in enumerate(pairs):
            user, reply = tuple(ids[k]), tuple(ids[k + 1])
            k += 2
            if ended:
                continue
            if t > 0:
                ts += user_text.count(" ") / WORDS_PER_SECOND
            prompt = history + user
            if len(prompt) > MAX_INPUT:
                ended = True
                continue
            out.append(Request(f"sg{s}", t, round(ts, 6), prompt, reply))
            history = prompt + reply
    return Trace.of(f"sharegpt{'-compat' if artifact_compat else ''}", out)


def _tokenize_cached(texts: list[str], tokenize: Tokenize | None, tokenizer_name: str,
                     use_cache: bool) -> list[list[int]]:
    key = hashlib.sha256(json.dumps([tokenizer_name, texts]).encode()).hexdigest()[:24]
    target = None
    if use_cache and tokenize is None:
        from tenfold.core.assets import cache_dir

        target = cache_dir("marconi", "tokens") / f"{key}.json"
        if target.is_file():
            cached = json.loads(target.read_text())
            if isinstance(cached, list) and len(cached) == len(texts):
                return [list(map(int, ids)) for ids in cached]
    encode = tokenize if tokenize is not None else smollm2_tokenizer()
    ids: list[list[int]] = []
    batch = 256
    for i in range(0, len(texts), batch):
        ids.extend(encode(texts[i:i + batch]))
    if target is not None:
        from tenfold.core.assets import atomic_path

        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(ids, separators=(",", ":")))
    return ids


GENERATORS: Registry[Callable[..., Trace]] = Registry("trace source")
GENERATORS.add("chat", chat_trace)
GENERATORS.add("sysprompt", sysprompt_trace)
GENERATORS.add("agent", agent_trace)
GENERATORS.add("sharegpt", sharegpt_trace)
