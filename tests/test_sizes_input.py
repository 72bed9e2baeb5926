"""Sizes that are not sizes are a ValueError with the usual hint, never an OverflowError: the agent's start-up
and ``doctor`` turn a ValueError into a message about the setting, anything else into a traceback."""

from __future__ import annotations

import pytest

from sparecycles.sizes import parse_size


@pytest.mark.parametrize("text", ["1" + "0" * 400, "1" + "0" * 400 + "GiB", "9" * 309 + ".5 TB", "1" * 5000 + "b"])
def test_a_size_too_large_for_a_float_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"too large to be a size; write it like 500MB, 8GiB or 1\.5TB"):
        parse_size(text)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "NaN", "Infinity", "inf GB", "nanMB", "1e400", "-1GB"])
def test_a_size_that_is_not_a_finite_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a size; write it like 500MB, 8GiB or 1\.5TB"):
        parse_size(text)


def test_a_large_but_finite_size_is_still_read() -> None:
    assert parse_size("1" + "0" * 300) == int(float("1" + "0" * 300))
    assert parse_size("16 TiB") == 16 * 2**40
