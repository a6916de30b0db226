from __future__ import annotations

import pytest

from tenfold.errors import ConfigError, UnknownNameError
from tenfold.systems.marconi.costmodel import PRESETS, HybridModelSpec, attn_flops, mamba_flops, mlp_flops


def test_7b_preset_sizes_exact() -> None:
    spec = HybridModelSpec.preset("nvidia-hybrid-7b")
    assert spec.ckpt_bytes == 26_787_840
    assert spec.kv_token_bytes == 65_536
    assert round(spec.ckpt_bytes / spec.kv_token_bytes) == 409


def test_prefill_flops_is_layer_weighted_sum() -> None:
    spec = PRESETS.get("nvidia-hybrid-7b")
    d, n, length = 4096, 128, 1000
    assert attn_flops(length, d) == 8 * length * d * d + 4 * length * length * d
    assert mlp_flops(length, d) == 16 * length * d * d
    assert mamba_flops(length, d, n) == 12 * length * d * d + 16 * length * d * n + 10 * length * d
    expected = 4 * attn_flops(length, d) + 28 * mlp_flops(length, d) + 24 * mamba_flops(length, d, n)
    assert spec.prefill_flops(length) == expected
    assert spec.prefill_flops(0) == 0.0


def test_bad_spec_and_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="'d' = 0"):
        HybridModelSpec(n_ssm=1, n_attn=1, n_mlp=1, d=0, n=2)
    with pytest.raises(UnknownNameError, match="unknown model preset 'jamba'; known: nvidia-hybrid-7b"):
        HybridModelSpec.preset("jamba")


@pytest.mark.parametrize(("field", "value"), [("d", float("nan")), ("d", 4.5), ("n_ssm", float("nan")),
                                              ("n", True)])
def test_spec_sizes_must_be_integers(field: str, value: object) -> None:
    kw: dict[str, object] = {"n_ssm": 1, "n_attn": 1, "n_mlp": 1, "d": 4, "n": 2, field: value}
    with pytest.raises(ConfigError, match=f"config field '{field}'.*must be an integer"):
        HybridModelSpec(**kw)  # type: ignore[arg-type]


def test_block_size_must_be_an_integer() -> None:
    from tenfold.systems.marconi.config import MarconiConfig

    with pytest.raises(ConfigError, match=r"'block_size' = 2\.5: must be an integer"):
        MarconiConfig(block_size=2.5)  # type: ignore[arg-type]
