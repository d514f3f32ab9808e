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
    """``1 / (1 + exp(-s))`` without overflow: exp is only taken of a non-positive number."""
    if s >= 0:
        return 1.0 / (1.0 + math.exp(-s))
    e = math.exp(s)
    return e / (1.0 + e)


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
    from hoodwink._validation import check_real, is_real, reject

    owner = "toy_example"
    alpha = check_real(owner, "alpha", alpha)
    b = check_real(owner, "b", b)
    for name, v in (("x", x), ("w", w)):
        if isinstance(v, str) or not all(is_real(e) and math.isfinite(float(e)) for e in v):
            reject(owner, name, v, "a sequence of finite floats")
    if len(x) != len(w) or not x:
        reject(owner, "w", w, f"as long as x ({len(x)} values) and not empty")
    xs, ws = tuple(float(v) for v in x), tuple(float(v) for v in w)
    score = sum(wi * xi for wi, xi in zip(ws, xs, strict=True)) + b
    x_adv = tuple(xi + alpha * wi for xi, wi in zip(xs, ws, strict=True))
    score_adv = sum(wi * xi for wi, xi in zip(ws, x_adv, strict=True)) + b
    if not all(math.isfinite(v) for v in (score, score_adv, *x_adv)):
        reject(owner, "alpha", alpha, "small enough that x + alpha * w and its score stay "
               "finite floats", hint="The toy example needs |alpha| well below 1e300.")
    return ToyResult(
        x=xs, w=ws, b=b, alpha=alpha, x_adv=x_adv, score=score, probability=_sigmoid(score),
        score_adv=score_adv, probability_adv=_sigmoid(score_adv), gain=score_adv - score,
    )
