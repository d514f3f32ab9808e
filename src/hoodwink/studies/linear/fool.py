"""Fool a linear classifier with its own templates, and the closed forms behind it.

For a linear model ``z = W x + b`` the gradient of class t's score with respect
to the input is its template ``w_t``, so the essay's fooling image is simply
``x + alpha * d`` with ``d = w_t`` (add the target's template) or
``d = w_t - w_y`` (add the target's template and subtract the true class's:
the steepest L2 direction for the pairwise margin). Everything about this
attack has a closed form.

Smallest alpha that makes t the prediction
------------------------------------------
Along the ray ``x + alpha d`` the logits are ``z_j + alpha g_j`` with
``g = W d``. Class t is the (strict) arg-max if and only if, for every j != t,

    alpha * a_j > r_j,   where a_j = g_t - g_j = (w_t - w_j) . d  and  r_j = z_j - z_t.

* j with ``a_j > 0`` give lower bounds ``alpha > r_j / a_j``;
* j with ``a_j < 0`` give upper bounds ``alpha < r_j / a_j``;
* j with ``a_j = 0`` need ``r_j < 0`` whatever alpha is.

So the set of alpha >= 0 at which t wins is an interval ``(lo, hi)`` with
``lo = max(0, max_{a_j > 0} r_j / a_j)`` and ``hi = min_{a_j < 0} r_j / a_j``
(infinite when no ``a_j < 0``). The smallest flipping alpha is ``lo`` (an
infimum: at ``lo`` itself t ties with the binding class) when ``lo < hi`` and
every ``a_j = 0`` constraint holds; otherwise the ray never reaches class t
and :func:`minimal_alpha` returns ``inf``. With ``d = w_t`` this happens when
another class's template correlates more with ``w_t`` than ``w_t`` does
itself (``w_j . w_t > ||w_t||^2``). The closed form ignores the [0, 1] box:
the attack is unclipped, as in the essay.

Smallest perturbation that changes the prediction
-------------------------------------------------
For the untargeted question "how far is x from leaving its predicted class
k?" the answer is exact for any norm: the region where k wins is the
polyhedron ``{(w_k - w_j) . x' + b_k - b_j >= 0 for all j}``, and the distance
from an inner point to the outside of a polyhedron is the distance to the
nearest facet hyperplane, so

    dist_p(x) = min_{j != k} (z_k - z_j) / ||w_k - w_j||_q,   1/p + 1/q = 1,

with q = 2 for the L2 distance and q = 1 for the L∞ distance
(:func:`minimal_distance`). It also ignores the box bounds, so it is a lower
bound on what an attack confined to [0, 1] needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from hoodwink._validation import Options, check, check_choice, check_int, check_real
from hoodwink.errors import InputError, ShapeError
from hoodwink.studies.linear.model import LinearModel

__all__ = [
    "Direction",
    "FoolCurve",
    "alpha_curve",
    "fooling_confidence",
    "measured_minimal_alpha",
    "minimal_alpha",
    "minimal_distance",
    "template_attack",
    "template_direction",
]

Direction = Literal["target", "difference"]
DistanceNorm = Literal["l2", "linf"]


def _labels(v: torch.Tensor | int | None, n: int, c: int, name: str) -> torch.Tensor | None:
    if v is None:
        return None
    t = torch.full((n,), int(v), dtype=torch.int64) if isinstance(v, int) else torch.as_tensor(v)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise InputError(f"{name} must hold integer class indices; got dtype {t.dtype}.")
    if t.shape != (n,):
        raise InputError(f"{name} has shape {tuple(t.shape)}; expected ({n},) for {n} inputs.")
    if bool(((t < 0) | (t >= c)).any()):
        raise InputError(f"{name} has classes outside 0..{c - 1}.")
    return t.to(torch.int64)


def _target(v: torch.Tensor | int, n: int, c: int) -> torch.Tensor:
    t = _labels(v, n, c, "target")
    if t is None:
        raise InputError("target is required: give the class to fool the model into.")
    return t


def _inputs(model: LinearModel, x: torch.Tensor, owner: str) -> torch.Tensor:
    """``x`` checked: a real, finite tensor of shape (N, *input_shape) or (N, D)."""
    if not isinstance(model, LinearModel):
        raise InputError(f"The model of {owner} must be a LinearModel; got "
                         f"{type(model).__name__}. Load one with LinearModel.load.")
    if not isinstance(x, torch.Tensor):
        raise InputError(f"x of {owner} must be a torch.Tensor of shape (N, "
                         f"{', '.join(map(str, model.input_shape))}); got {type(x).__name__}.")
    if x.dtype == torch.bool or x.is_complex():
        raise ShapeError(f"x of {owner} has dtype {x.dtype}; it must hold real numbers.")
    if x.ndim < 2 or (x.shape[0] > 0 and x[0].numel() != model.input_dim):
        raise ShapeError(
            f"x of {owner} has shape {tuple(x.shape)}; the model takes a batch of shape "
            f"(N, {', '.join(map(str, model.input_shape))}) or (N, {model.input_dim}). Add a "
            "batch dimension to a single input with x[None]."
        )
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"x of {owner} contains NaN or infinite values; the closed forms "
                         "need finite inputs.")
    return x


def _describe(v: object) -> str:
    if isinstance(v, torch.Tensor):
        bad = "" if bool(torch.isfinite(v).all()) or v.is_complex() else ", not all finite"
        return f"a tensor of shape {tuple(v.shape)}, dtype {v.dtype}{bad}"
    return type(v).__name__


def _alphas(alpha: torch.Tensor | float, n: int, owner: str) -> torch.Tensor | float:
    """A finite alpha: one number, or a tensor of shape () or (N,)."""
    if isinstance(alpha, torch.Tensor):
        if alpha.shape not in ((), (n,)) or alpha.is_complex() or alpha.dtype == torch.bool:
            raise ShapeError(f"The 'alpha' parameter of {owner} must be a float or a real "
                             f"tensor of shape ({n},); got shape {tuple(alpha.shape)}, dtype "
                             f"{alpha.dtype}.")
        if not bool(torch.isfinite(alpha).all()):
            raise InputError(f"The 'alpha' parameter of {owner} contains NaN or infinite "
                             "values; give finite steps.")
        return alpha
    return check_real(owner, "alpha", alpha)


def _logits64(model: LinearModel, x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1).to(torch.float64)
    return flat @ model.weight.to(torch.float64).T + model.bias.to(torch.float64)


def _check_direction(direction: str, owner: str) -> None:
    check(owner, "direction", direction, Options(("target", "difference")),
          hint="'target' adds the target's template (d = w_t), 'difference' adds "
               "d = w_t - w_y.")


def _step(x: torch.Tensor, d: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """``x + alpha * d`` with one alpha for all inputs or one per input (shape (N,))."""
    a = torch.as_tensor(alpha, dtype=x.dtype)
    return x + a.reshape(-1, *([1] * (x.ndim - 1))) * d


def template_direction(
    model: LinearModel,
    x: torch.Tensor,
    target: torch.Tensor | int,
    y: torch.Tensor | int | None = None,
    *,
    direction: Direction = "target",
) -> torch.Tensor:
    """The perturbation direction ``d`` per input, shaped like ``x``.

    Parameters
    ----------
    model : LinearModel
    x : torch.Tensor, shape (N, *input_shape)
    target : int or int tensor of shape (N,)
    y : int or int tensor of shape (N,), optional
        The class to move away from for ``direction="difference"``; defaults
        to the model's prediction on ``x``.
    direction : {"target", "difference"}
        ``d = w_t`` or ``d = w_t - w_y``.

    Returns
    -------
    torch.Tensor, same shape as ``x``
    """
    _check_direction(direction, "template_direction")
    x = _inputs(model, x, "template_direction")
    n = x.shape[0]
    t = _target(target, n, model.num_classes)
    w = model.weight.to(torch.float64)
    d = w[t]
    if direction == "difference":
        yy = _labels(y, n, model.num_classes, "y")
        if yy is None:
            yy = model.predict(x)
        d = d - w[yy]
    return d.reshape(x.shape).to(x.dtype)


def template_attack(
    model: LinearModel,
    x: torch.Tensor,
    target: torch.Tensor | int,
    alpha: torch.Tensor | float,
    y: torch.Tensor | int | None = None,
    *,
    direction: Direction = "target",
    clip: bool = False,
) -> torch.Tensor:
    """``x + alpha * d``: add (a multiple of) the target's template.

    Parameters
    ----------
    model, x, target, y, direction : see :func:`template_direction`
    alpha : float or tensor of shape (N,)
        Step along ``d``, in units of the template (not of pixels).
    clip : bool, default False
        Clip the result to [0, 1]. The essay (and the closed form of
        :func:`minimal_alpha`) do not clip.

    Returns
    -------
    torch.Tensor, same shape as ``x``
    """
    x = _inputs(model, x, "template_attack")
    alpha = _alphas(alpha, x.shape[0], "template_attack")
    out = _step(x, template_direction(model, x, target, y, direction=direction), alpha)
    return out.clamp(0.0, 1.0) if clip else out


def minimal_alpha(
    model: LinearModel,
    x: torch.Tensor,
    target: torch.Tensor | int,
    y: torch.Tensor | int | None = None,
    *,
    direction: Direction = "target",
) -> torch.Tensor:
    """Closed-form smallest alpha >= 0 at which ``x + alpha d`` is classified as ``target``.

    See the module docstring for the derivation.

    Parameters
    ----------
    model, x, target, y, direction : see :func:`template_direction`

    Returns
    -------
    torch.Tensor, shape (N,), float64
        0 where ``x`` is already classified as the target, ``inf`` where no
        alpha >= 0 makes it so (the target is never reached along the ray).

    Examples
    --------
    >>> import torch
    >>> from hoodwink.studies.linear import LinearModel, minimal_alpha
    >>> m = LinearModel(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2), (2,))
    >>> round(float(minimal_alpha(m, torch.tensor([[0.8, 0.2]]), 1)[0]), 6)  # (0.8 - 0.2) / 1
    0.6
    """
    x = _inputs(model, x, "minimal_alpha")
    n = x.shape[0]
    d = template_direction(model, x, target, y, direction=direction).reshape(n, -1)
    w = model.weight.to(torch.float64)
    z = _logits64(model, x)
    g = d.to(torch.float64) @ w.T  # g_j = w_j . d, shape (N, C)
    t = _target(target, n, model.num_classes)
    rows = torch.arange(n)
    a = g[rows, t][:, None] - g  # a_j = (w_t - w_j) . d
    r = z - z[rows, t][:, None]  # r_j = z_j - z_t
    others = torch.ones_like(a, dtype=torch.bool)
    others[rows, t] = False
    # Relative tolerance for "a_j = 0": templates are float32.
    tol = 1e-9 * (g.abs().amax(dim=1, keepdim=True) + 1e-300)
    pos = others & (a > tol)
    neg = others & (a < -tol)
    zero = others & ~pos & ~neg
    ratio = r / torch.where(pos | neg, a, torch.ones_like(a))
    lo = torch.where(pos, ratio, torch.full_like(a, -math.inf)).amax(dim=1).clamp_min(0.0)
    hi = torch.where(neg, ratio, torch.full_like(a, math.inf)).amin(dim=1)
    blocked = (zero & (r >= 0)).any(dim=1)
    never = blocked | (lo >= hi)
    return torch.where(never, torch.full_like(lo, math.inf), lo)


def measured_minimal_alpha(
    model: LinearModel,
    x: torch.Tensor,
    target: torch.Tensor | int,
    y: torch.Tensor | int | None = None,
    *,
    direction: Direction = "target",
    alpha_max: float,
    grid: int = 2000,
    refine: int = 40,
) -> torch.Tensor:
    """The smallest flipping alpha found by evaluating the model, without the closed form.

    Scans ``grid`` evenly spaced alphas in [0, alpha_max] for the first at
    which the model predicts the target, then bisects between it and the
    previous grid point ``refine`` times. Used to check :func:`minimal_alpha`.

    Returns
    -------
    torch.Tensor, shape (N,), float64
        ``inf`` where no grid point is classified as the target.
    """
    owner = "measured_minimal_alpha"
    x = _inputs(model, x, owner)
    alpha_max = check_real(owner, "alpha_max", alpha_max, low=0, closed="neither")
    grid = check_int(owner, "grid", grid, low=1)
    refine = check_int(owner, "refine", refine, low=0)
    n = x.shape[0]
    t = _target(target, n, model.num_classes)
    d = template_direction(model, x, t, y, direction=direction).to(torch.float64)
    x64 = x.to(torch.float64)

    def hits(alpha: torch.Tensor) -> torch.Tensor:
        return _logits64(model, _step(x64, d, alpha)).argmax(dim=1) == t

    alphas = torch.linspace(0.0, alpha_max, grid + 1, dtype=torch.float64)
    first = torch.full((n,), -1, dtype=torch.int64)
    for i, a in enumerate(alphas):
        h = hits(a.expand(n)) & (first < 0)
        first[h] = i
    out = torch.full((n,), math.inf, dtype=torch.float64)
    found = first >= 0
    hi = alphas[first.clamp_min(0)]
    lo = alphas[(first - 1).clamp_min(0)]
    for _ in range(refine):
        mid = (lo + hi) / 2
        h = hits(mid)
        hi = torch.where(h, mid, hi)
        lo = torch.where(h, lo, mid)
    out[found] = torch.where(first[found] == 0, torch.zeros_like(hi[found]), hi[found])
    return out


def alpha_curve(
    model: LinearModel,
    x: torch.Tensor,
    target: torch.Tensor | int,
    alphas: torch.Tensor,
    y: torch.Tensor | int | None = None,
    *,
    direction: Direction = "target",
) -> FoolCurve:
    """Target probability and prediction along ``x + alpha d`` for each alpha.

    Parameters
    ----------
    model, x, target, y, direction : see :func:`template_direction`
    alphas : torch.Tensor, shape (A,)

    Returns
    -------
    FoolCurve
    """
    x = _inputs(model, x, "alpha_curve")
    if not (isinstance(alphas, torch.Tensor) and alphas.ndim == 1 and not alphas.is_complex()
            and alphas.dtype != torch.bool and bool(torch.isfinite(alphas).all())):
        raise InputError("The 'alphas' parameter of alpha_curve must be a 1-D tensor of "
                         "finite steps, e.g. torch.linspace(0, 1, 51); got "
                         f"{_describe(alphas)}.")
    n = x.shape[0]
    t = _target(target, n, model.num_classes)
    d = template_direction(model, x, t, y, direction=direction)
    probs, preds = [], []
    for a in alphas.tolist():
        p = model.probabilities(_step(x, d, a))
        probs.append(p[torch.arange(n), t])
        preds.append(p.argmax(dim=1))
    flat = d.reshape(n, -1)
    return FoolCurve(
        alphas=alphas.to(torch.float64),
        target_probability=torch.stack(probs, dim=1),
        prediction=torch.stack(preds, dim=1),
        direction_linf=flat.abs().amax(dim=1).to(torch.float64),
        direction_l2=flat.norm(dim=1).to(torch.float64),
    )


@dataclass(frozen=True)
class FoolCurve:
    """The template attack along a grid of alphas.

    Attributes
    ----------
    alphas : torch.Tensor, shape (A,)
    target_probability : torch.Tensor, shape (N, A)
        Softmax probability of the target at each alpha.
    prediction : torch.Tensor, shape (N, A)
    direction_linf, direction_l2 : torch.Tensor, shape (N,)
        ``||d||_inf`` and ``||d||_2``: the perturbation at alpha has norm
        ``alpha * ||d||``.
    """

    alphas: torch.Tensor
    target_probability: torch.Tensor
    prediction: torch.Tensor
    direction_linf: torch.Tensor
    direction_l2: torch.Tensor

    def first_alpha_reaching(self, probability: float) -> torch.Tensor:
        """Per input, the first grid alpha whose target probability is >= ``probability``.

        ``inf`` where none is.
        """
        ok = self.target_probability >= probability
        idx = ok.to(torch.int64).argmax(dim=1)
        vals = self.alphas[idx]
        return torch.where(ok.any(dim=1), vals, torch.full_like(vals, math.inf))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "alphas": self.alphas.tolist(),
            "target_probability": self.target_probability.tolist(),
            "prediction": self.prediction.tolist(),
            "direction_linf": self.direction_linf.tolist(),
            "direction_l2": self.direction_l2.tolist(),
        }


def minimal_distance(
    model: LinearModel, x: torch.Tensor, *, norm: DistanceNorm = "l2"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact smallest perturbation (in ``norm``) that changes the model's prediction.

    ``min_{j != k} (z_k - z_j) / ||w_k - w_j||_q`` with k the predicted class,
    q = 2 for ``norm="l2"`` and q = 1 (the dual of L∞) for ``norm="linf"``.
    Box bounds are ignored (see the module docstring).

    Parameters
    ----------
    model : LinearModel
    x : torch.Tensor, shape (N, *input_shape)
    norm : {"l2", "linf"}

    Returns
    -------
    distance : torch.Tensor, shape (N,), float64
    nearest : torch.Tensor, shape (N,), int64
        The class j whose boundary is nearest.

    Examples
    --------
    >>> import torch
    >>> from hoodwink.studies.linear import LinearModel, minimal_distance
    >>> m = LinearModel(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2), (2,))
    >>> d, j = minimal_distance(m, torch.tensor([[1.0, 0.0]]), norm="linf")
    >>> float(d[0]), int(j[0])  # margin 1 over ||(1, -1)||_1 = 2
    (0.5, 1)
    """
    check_choice("minimal_distance", "norm", norm, ("l2", "linf"))
    x = _inputs(model, x, "minimal_distance")
    w = model.weight.to(torch.float64)
    z = _logits64(model, x)
    k = z.argmax(dim=1)
    n, c = z.shape
    dist = torch.full((n,), math.inf, dtype=torch.float64)
    nearest = torch.zeros(n, dtype=torch.int64)
    q = 2.0 if norm == "l2" else 1.0
    for cls in range(c):
        rows = (k == cls).nonzero()[:, 0]
        if rows.numel() == 0:
            continue
        diff_norm = torch.linalg.vector_norm(w[cls][None] - w, ord=q, dim=1)  # (C,)
        margin = z[rows, cls][:, None] - z[rows]  # (n_k, C)
        ratio = margin / diff_norm.clamp_min(1e-300)[None]
        ratio[:, cls] = math.inf
        ratio[:, diff_norm == 0] = math.inf
        best, arg = ratio.min(dim=1)
        dist[rows] = best
        nearest[rows] = arg
    return dist, nearest


def fooling_confidence(
    model: LinearModel, x: torch.Tensor, *, eps: float, clip: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Highest wrong-class probability reachable with an L∞ perturbation of size eps.

    For every class t other than the prediction k, the perturbation
    ``eps * sign(w_t - w_k)`` raises ``z_t - z_k`` by the most any L∞
    perturbation of size ``eps`` can, namely ``eps * ||w_t - w_k||_1``. The
    result is then clipped to [0, 1] (``clip=True``) and the probability of t
    is read off; the function returns the best t's.

    Parameters
    ----------
    model : LinearModel
    x : torch.Tensor, shape (N, *input_shape)
    eps : float >= 0
    clip : bool, default True

    Returns
    -------
    confidence : torch.Tensor, shape (N,), float64
        ``max_{t != k} p_t(x + eps sign(w_t - w_k))``.
    fooled : torch.Tensor of bool, shape (N,)
        Whether any of those perturbations changes the prediction.
    """
    eps = check_real("fooling_confidence", "eps", eps, low=0)
    x = _inputs(model, x, "fooling_confidence")
    n = x.shape[0]
    flat = x.reshape(n, -1).to(torch.float64)
    w = model.weight.to(torch.float64)
    b = model.bias.to(torch.float64)
    k = (flat @ w.T + b).argmax(dim=1)
    best = torch.zeros(n, dtype=torch.float64)
    fooled = torch.zeros(n, dtype=torch.bool)
    for t in range(model.num_classes):
        delta = eps * torch.sign(w[t][None] - w[k])
        xa = flat + delta
        if clip:
            xa = xa.clamp(0.0, 1.0)
        p = torch.softmax(xa @ w.T + b, dim=1)
        mask = k != t
        best = torch.where(mask, torch.maximum(best, p[:, t]), best)
        fooled |= mask & (p.argmax(dim=1) != k)
    return best, fooled


def summarize(values: torch.Tensor) -> dict[str, float | None]:
    """Mean, median and the share of infinite values of a per-sample tensor."""
    v = values.to(torch.float64)
    fin = v[torch.isfinite(v)]
    return {
        "mean": float(fin.mean()) if fin.numel() else None,
        "median": float(fin.median()) if fin.numel() else None,
        "never": float((~torch.isfinite(v)).to(torch.float64).mean()) if v.numel() else None,
    }
