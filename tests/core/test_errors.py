"""Errors cross a process boundary intact: their type, message and fields survive pickling."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

from tenfold.errors import BackendCapabilityError, ConfigError, TenfoldError, UnknownNameError


def _raise_config_error(seconds: float) -> None:
    raise ConfigError("seconds", seconds, "must be in (0, 60]")


@pytest.mark.parametrize("err", [
    ConfigError("seconds", 0.0, "must be in (0, 60]"),
    UnknownNameError("policy", "zzz", ["gcc", "tarzan"]),
    BackendCapabilityError("http://h:8000/v1", "top_logprobs", "returned none"),
    TenfoldError("plain message"),
])
def test_errors_pickle_with_their_message_and_fields(err: TenfoldError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.__dict__ == err.__dict__


def test_a_config_error_from_a_pool_worker_reaches_the_caller() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool, \
            pytest.raises(ConfigError, match=r"config field 'seconds' = 0.0: must be in \(0, 60\]") as info:
        pool.submit(_raise_config_error, 0.0).result()
    assert (info.value.field, info.value.value, info.value.allowed) == ("seconds", 0.0, "must be in (0, 60]")
