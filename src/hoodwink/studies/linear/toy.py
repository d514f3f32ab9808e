"""The essay's toy example: fooling a 10-dimensional logistic regression.

With ``x = [2, -1, 3, -2, 2, 2, 1, -4, 5, 1]`` and
``w = [-1, -1, 1, -1, 1, -1, 1, 1, -1, 1]`` (no bias) the score ``w . x`` is -3
and ``P(class 1) = sigmoid(-3) = 0.0474``. Nudging every coordinate by 0.5 in
the direction of its weight, ``x + 0.5 w``, raises the score by
``0.5 * ||w||_1 = 5`` to 2, and ``P(class 1)`` to ``sigmoid(2) = 0.8808``.
Because ``w`` is a vector of signs, ``0.5 w = 0.5 sign(w)``: this is also the
FGSM step of size 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["TOY_W", "TOY_X", "ToyResult", "toy_example"]

TOY_X: tuple[float, ...] = (2, -1, 3, -2, 2, 2, 1, -4, 5, 1)
TOY_W: tuple[float, ...] = (-1, -1, 1, -1, 1, -1, 1, 1, -1, 1)


def _sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s))


@dataclass(frozen=True)
class ToyResult:
    """The toy example's numbers.

    Attributes
    ----------
    x, w, x_adv : tuple of float
        Input, weights and ``x + alpha * w``.
    alpha : float
    score, score_adv : float
        ``w . x + b`` before and after.
    probability, probability_adv : float
        ``P(class 1)`` before and after.
    gain : float
        ``score_adv - score = alpha * w . w`` (``alpha * ||w||_1`` for sign weights).
    """

    x: tuple[float, ...]
    w: tuple[float, ...]
    b: float
    alpha: float
    x_adv: tuple[float, ...]
    score: float
    probability: float
    score_adv: float
    probability_adv: float
    gain: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def toy_example(
    alpha: float = 0.5,
    x: tuple[float, ...] = TOY_X,
    w: tuple[float, ...] = TOY_W,
    b: float = 0.0,
) -> ToyResult:
    """Compute the toy example (defaults reproduce the essay).

    Examples
    --------
    >>> r = toy_example()
    >>> r.score, round(r.probability, 4), r.score_adv, round(r.probability_adv, 4)
    (-3.0, 0.0474, 2.0, 0.8808)
    >>> r.x_adv
    (1.5, -1.5, 3.5, -2.5, 2.5, 1.5, 1.5, -3.5, 4.5, 1.5)
    """
    from hoodwink._validation import check_real, reject

    alpha = check_real("toy_example", "alpha", alpha)
    if len(x) != len(w) or not x:
        reject("toy_example", "w", w, f"as long as x ({len(x)} values) and not empty")
    score = float(sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b)
    x_adv = tuple(float(xi + alpha * wi) for xi, wi in zip(x, w, strict=True))
    score_adv = float(sum(wi * xi for wi, xi in zip(w, x_adv, strict=True)) + b)
    return ToyResult(
        x=tuple(float(v) for v in x), w=tuple(float(v) for v in w), b=float(b),
        alpha=float(alpha), x_adv=x_adv, score=score, probability=_sigmoid(score),
        score_adv=score_adv, probability_adv=_sigmoid(score_adv), gain=score_adv - score,
    )
