"""Marconi in two minutes: the spec's worked example at 3 GB, then a seeded chat trace
replayed through Marconi, SGLang+ and vLLM+ at 2 GB of the 7B hybrid's cache."""

from tenfold.systems.marconi import PRESETS, chat_trace, make_cache, replay

spec = PRESETS.get("nvidia-hybrid-7b")
print(f"7B hybrid: {spec.ckpt_bytes:,} B per checkpoint, {spec.kv_token_bytes:,} B of KV per token")

cache = make_cache("marconi", spec, 3 * 10**9)
for name, seq in [("R1", [1, 2, 3, 4, 5]), ("R2", [1, 2, 6, 7]), ("R3", [1, 2, 6, 8]),
                  ("R4", [1, 2, 6, 7, 9]), ("R5", [1, 2, 3, 4])]:
    lookup = cache.lookup(seq)
    cache.commit(lookup, seq)
    print(f"{name} {seq}: reuse {lookup.reusable_len}, checkpoint at {lookup.checkpoint_at}")

trace = chat_trace(40, seed=0)
print(f"chat trace: {len(trace)} requests, {trace.input_tokens:,} input tokens")
for policy in ("vllm+", "sglang+", "marconi"):
    stats = replay(trace, make_cache(policy, spec, 2 * 10**9))
    alpha = "" if stats.alpha is None else f", tuned alpha {stats.alpha}"
    print(f"{policy:8s} token hit rate {stats.token_hit_rate:6.2%}, requests with a hit {stats.request_hit_rate:6.2%}"
          f"{alpha}")
