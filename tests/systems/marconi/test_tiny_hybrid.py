"""The tiny hybrid (random-init) and the engine: resumption is exact (spec §4 tests 1-4)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tenfold.systems.marconi.costmodel import HybridModelSpec  # noqa: E402
from tenfold.systems.marconi.engine import HybridEngine  # noqa: E402
from tenfold.systems.marconi.tiny_hybrid import TinyHybridLM, ssd_chunked, ssd_recurrent  # noqa: E402
from tenfold.systems.marconi.traces import chat_trace  # noqa: E402


@pytest.fixture(scope="module")
def model() -> TinyHybridLM:
    torch.set_num_threads(1)
    return TinyHybridLM.create(seed=0)


def test_chunked_ssd_equals_recurrence() -> None:
    g = torch.Generator().manual_seed(0)
    t, h, p, n = 150, 4, 8, 16
    x = torch.randn(t, h, p, generator=g)
    dt = torch.rand(t, h, generator=g) * 0.5
    a = -dt * torch.rand(h, generator=g)
    b = torch.randn(t, n, generator=g)
    c = torch.randn(t, n, generator=g)
    h0 = torch.randn(h, p, n, generator=g)
    y1, s1 = ssd_chunked(x, dt, a, b, c, h0, chunk=32)
    y2, s2 = ssd_recurrent(x, dt, a, b, c, h0)
    assert torch.allclose(y1, y2, atol=1e-5) and torch.allclose(s1, s2, atol=1e-5)


def test_model_chunked_equals_recurrent(model: TinyHybridLM) -> None:
    ids = torch.randint(0, model.cfg.vocab, (70,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a, _ = model.prefill(ids, model.empty_state())
        b, _ = model.prefill(ids, model.empty_state(), recurrent=True)
    assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.parametrize("p", [0, 97, 64, 199])  # start, random, block boundary, L-1
def test_resume_from_checkpoint_equals_full_prefill(model: TinyHybridLM, p: int) -> None:
    ids = torch.randint(0, model.cfg.vocab, (200,), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        full, _ = model.prefill(ids, model.empty_state())
        _, st = model.prefill(ids[:p], model.empty_state())
        resumed = st.checkpoint()  # SSM states only ...
        resumed.kv = st.kv  # ... plus KV[0, p)
        tail, _ = model.prefill(ids[p:], resumed)
    assert tail.shape == full[p:].shape
    assert (tail - full[p:]).abs().max().item() <= 1e-5


def test_spec_from_torch_reads_real_sizes(model: TinyHybridLM) -> None:
    spec = HybridModelSpec.from_torch(model)
    st = model.empty_state()
    assert spec.ckpt_bytes == sum(c.nbytes + h.nbytes for c, h in st.ssm) + model.cfg.d_model * 4
    assert spec.kv_token_bytes == 2 * model.cfg.d_model * 4
    assert 405 < spec.ckpt_bytes / spec.kv_token_bytes < 425  # about 420 tokens of KV, like the 7B ratio


def test_engine_logits_identical_with_and_without_cache(model: TinyHybridLM) -> None:
    trace = chat_trace(3, seed=4, turns=(3, 3), input_mean=40, output_mean=30)
    engine = HybridEngine(model, "marconi", capacity_bytes=32 << 20)
    reused = computed = 0
    for req in trace.requests:
        res = engine.serve(req.input_tokens, req.output_tokens)
        with torch.inference_mode():
            full, _ = model.prefill(torch.tensor(req.input_tokens), model.empty_state(), all_logits=False)
        assert (res.first_logits - full[-1]).abs().max().item() <= 1e-5
        reused += res.reused
        computed += res.prefill_tokens
    assert reused > computed  # multi-turn chat: most of each prompt is cached history
    # byte accounting of the cache equals the real tensors it holds
    assert engine.cache.used_bytes == engine.cached_tensor_bytes()
    assert engine.cache.tree.recount() == (engine.cache.tree.n_states, engine.cache.tree.kv_tokens)


def test_engine_full_hit_and_branch(model: TinyHybridLM) -> None:
    engine = HybridEngine(model, "marconi", capacity_bytes=32 << 20)
    g = torch.Generator().manual_seed(5)
    a = tuple(torch.randint(0, 1000, (50,), generator=g).tolist())
    b = tuple(torch.randint(0, 1000, (20,), generator=g).tolist())
    engine.serve(a + b, (7, 8))
    res = engine.serve((*a, 9, 9), ())  # branches mid-edge at 50: checkpoint there
    assert (res.reused, res.rebuild_tokens) == (0, 0)
    res = engine.serve(a, ())
    assert (res.reused, res.prefill_tokens) == (50, 0)  # a full hit: logits from the cached hidden state
    with torch.inference_mode():
        full, _ = model.prefill(torch.tensor(a), model.empty_state(), all_logits=False)
    assert (res.first_logits - full[-1]).abs().max().item() <= 1e-5
    assert engine.cache.used_bytes == engine.cached_tensor_bytes()
