"""The essay's toy logistic regression, to four decimals."""

from __future__ import annotations

import pytest

from hoodwink.studies.linear import toy_example


def test_toy_numbers_match_the_essay() -> None:
    r = toy_example()
    assert r.score == -3.0
    assert round(r.probability, 4) == 0.0474
    assert r.x_adv == (1.5, -1.5, 3.5, -2.5, 2.5, 1.5, 1.5, -3.5, 4.5, 1.5)
    assert r.score_adv == 2.0
    assert round(r.probability_adv, 4) == 0.8808
    assert r.gain == pytest.approx(0.5 * 10)


def test_toy_rejects_mismatched_vectors() -> None:
    from hoodwink.errors import ConfigError

    with pytest.raises(ConfigError):
        toy_example(x=(1.0, 2.0), w=(1.0,))
