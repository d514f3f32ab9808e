"""Sanity flags: cheap checks that catch an evaluation that cannot be trusted.

A robust-accuracy number is only as good as the attacks behind it. Gradient
masking (saturated softmax, non-differentiable layers, probabilities fed to a
logit loss, randomness) makes gradient attacks fail without making the model
robust (Athalye, Carlini and Wagner, ICML 2018; Carlini et al., "On Evaluating
Adversarial Robustness", 2019). Each check below is one small function that
returns a flag (a JSON-ready dict) or None; :data:`FLAGS` lists them by code.
The codes are the anchors of their sections in ``docs/evaluate.md``, which say
when each fires, what it means and what to do.

>>> sorted(FLAGS)  # doctest: +NORMALIZE_WHITESPACE
['blackbox-beats-whitebox', 'eps-too-large', 'not-zero-at-huge-eps',
 'probability-outputs', 'randomised-model', 'zero-gradients']
>>> eps_too_large([0.1, 0.5], diameter=1.0, norm="linf")["evidence"]
{'eps': [0.5], 'diameter': 1.0, 'limit': 0.3333333333333333}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch

from hoodwink.errors import StochasticModelWarning

if TYPE_CHECKING:
    from hoodwink.attacks.base import Attack
    from hoodwink.models.base import Classifier

__all__ = [
    "FLAGS",
    "FlagInfo",
    "Severity",
    "blackbox_beats_whitebox",
    "eps_too_large",
    "not_zero_at_huge_eps",
    "probability_outputs",
    "randomised_model",
    "zero_gradients",
]

Severity = Literal["info", "warning", "error"]

#: Where the flags are documented; each flag's ``doc`` is this plus ``#<code>``.
DOC = "docs/evaluate.md"
#: Samples compared by the output checks (probabilities, randomness).
PROBE_N = 64
#: Clean-correct samples whose input gradient is inspected.
GRADIENT_N = 256
#: A gradient whose largest entry is at most this is "exactly zero".
ZERO_GRAD = 1e-12
#: Fraction of inspected samples with a zero gradient at which zero-gradients fires.
ZERO_GRAD_FRACTION = 0.10
#: Clean-correct samples attacked at half the input range.
HUGE_EPS_N = 32
#: A grid eps above this fraction of the input box's diameter fires eps-too-large.
EPS_LIMIT = 1.0 / 3.0
#: Fraction of attacked samples (at least 2 samples) a black-box stage must break.
BLACKBOX_FRACTION = 0.02


@dataclass(frozen=True)
class FlagInfo:
    """One sanity flag: its code, severity and title.

    Attributes
    ----------
    code : str
        Stable identifier, also the anchor of its section in ``docs/evaluate.md``.
    severity : {"info", "warning", "error"}
        "error": the robust accuracy is very likely overestimated; "warning": it
        may be, or the setup is unusual.
    title : str
        A few words for a report heading.
    """

    code: str
    severity: Severity
    title: str

    @property
    def doc(self) -> str:
        """The documentation link, ``docs/evaluate.md#<code>``."""
        return f"{DOC}#{self.code}"

    def raise_(self, message: str, evidence: Mapping[str, Any]) -> dict[str, Any]:
        """The flag as a record entry (``code, severity, title, message, evidence, doc``)."""
        return {"code": self.code, "severity": self.severity, "title": self.title,
                "message": message, "evidence": dict(evidence), "doc": self.doc}


#: Every flag by code, in the order the checks run.
FLAGS: dict[str, FlagInfo] = {f.code: f for f in (
    FlagInfo("eps-too-large", "warning", "Budget larger than a third of the input range"),
    FlagInfo("probability-outputs", "warning", "Probabilities fed to a logit loss"),
    FlagInfo("randomised-model", "error", "The model is random"),
    FlagInfo("zero-gradients", "error", "Zero gradients"),
    FlagInfo("not-zero-at-huge-eps", "error", "Not broken at a huge budget"),
    FlagInfo("blackbox-beats-whitebox", "error", "Black-box attack beats white-box attacks"),
)}


def _r(v: float) -> float:
    """A number rounded for evidence (6 significant digits)."""
    return float(f"{v:.6g}")


# ---------------------------------------------------------------------------- the checks
def eps_too_large(eps: Sequence[float], *, diameter: float,
                  norm: str) -> dict[str, Any] | None:
    """``eps-too-large``: a grid eps above a third of the input box's diameter.

    At such a budget almost any input can be moved to almost any other, so
    robust accuracy there measures nothing; usually the budget was given in the
    wrong units (8 instead of 8/255) or the wrong norm.

    Parameters
    ----------
    eps : sequence of float
        The grid.
    diameter : float
        The input box's diameter in ``norm`` (``max(upper - lower) * d**(1/p)``).
    norm : str

    Returns
    -------
    dict or None
        The flag, with evidence ``eps`` (the offending budgets), ``diameter``
        and ``limit``.
    """
    limit = EPS_LIMIT * diameter
    big = [float(e) for e in eps if e > limit]
    if not big:
        return None
    return FLAGS["eps-too-large"].raise_(
        f"eps {', '.join(f'{e:.4g}' for e in big)} exceeds a third of the input range in "
        f"{norm} ({limit:.4g} of {diameter:.4g}); at such budgets robust accuracy means "
        "little. Give budgets in raw input units (8/255, not 8).",
        {"eps": big, "diameter": diameter, "limit": limit})


def probability_outputs(model: Classifier, x: torch.Tensor,
                        logit_attacks: Sequence[str], *,
                        scores: torch.Tensor | None = None) -> dict[str, Any] | None:
    """``probability-outputs``: the scores look like probabilities while a logit loss runs.

    Fires when the model declares ``output="probabilities"``, or its scores on up
    to 64 inputs are non-negative rows summing to 1 (a network ending in a
    softmax), and some attack works on the scores (cross-entropy, margin, DLR).
    A softmax in front of those losses flattens their gradients and can hide
    adversarials from gradient attacks.

    Parameters
    ----------
    model : Classifier
    x : torch.Tensor, shape (N, ...)
        Inputs (the first 64 are used).
    logit_attacks : sequence of str
        Names of the attacks that use a loss on the scores; the check is
        skipped when empty.
    scores : torch.Tensor, shape (M, C), optional
        The model's scores on ``x[:M]``, from a pass made already (the
        evaluation reuses its gradient pass); computed here when None.

    Returns
    -------
    dict or None
        The flag, with evidence ``output``, ``rows``, ``min_score``,
        ``max_row_sum_error`` and ``attacks``.
    """
    if not logit_attacks:
        return None
    output = model.capabilities.output
    if output == "labels":
        return None
    scores_fn = getattr(model, "scores", None)
    if not callable(scores_fn):
        return None
    xs = x[:PROBE_N]
    s = (scores_fn(xs) if scores is None else scores[:PROBE_N]).detach().double()
    min_score = float(s.min()) if s.numel() else 0.0
    row_err = float((s.sum(dim=1) - 1).abs().max()) if s.numel() else 0.0
    looks = bool(s.numel()) and min_score >= 0 and row_err <= 1e-4
    if not (looks or output == "probabilities"):
        return None
    why = ("the model declares output='probabilities'" if output == "probabilities"
           else f"its scores on {xs.shape[0]} inputs are non-negative rows summing to 1")
    return FLAGS["probability-outputs"].raise_(
        f"The model's scores look like probabilities ({why}) while {', '.join(logit_attacks)} "
        "use a loss on logits; a softmax flattens their gradients. Wrap the network without "
        "its final softmax (or give its logits), then evaluate again.",
        {"output": output, "rows": int(xs.shape[0]), "min_score": _r(min_score),
         "max_row_sum_error": _r(row_err), "attacks": list(logit_attacks)})


def randomised_model(model: Classifier, x: torch.Tensor, *,
                     scores: torch.Tensor | None = None) -> dict[str, Any] | None:
    """``randomised-model``: two passes on the same inputs disagree.

    Runs the model twice on up to 64 inputs and compares the scores (labels for
    a label-only model). A random model (dropout at test time, random
    transforms, noise) makes each attack see a different function: single
    attacks then underestimate what an attacker averaging over the randomness
    (EOT, Athalye et al., 2018) achieves.

    Parameters
    ----------
    model : Classifier
    x : torch.Tensor, shape (N, ...)
    scores : torch.Tensor, shape (M, C), optional
        The scores of a first pass on ``x[:M]`` made already (the evaluation
        reuses its gradient pass): only the second pass runs here.

    Returns
    -------
    dict or None
        The flag, with evidence ``compared``, ``labels_differ`` and
        ``max_score_difference``.
    """
    xs = x[:PROBE_N]
    scores_fn = getattr(model, "scores", None)
    if model.capabilities.output != "labels" and callable(scores_fn):
        first = scores_fn(xs) if scores is None else scores[:PROBE_N]
        a, b = first.detach().double(), scores_fn(xs).detach().double()
        diff = float((a - b).abs().max()) if a.numel() else 0.0
        scale = 1.0 + (float(a.abs().max()) if a.numel() else 0.0)
        labels_differ = int((a.argmax(1) != b.argmax(1)).sum())
        random = labels_differ > 0 or diff > 1e-4 * scale
    else:
        pa, pb = model.predict(xs), model.predict(xs)
        labels_differ = int((pa != pb).sum())
        diff = float("nan")
        random = labels_differ > 0
    if not random:
        return None
    evidence: dict[str, Any] = {"compared": int(xs.shape[0]), "labels_differ": labels_differ}
    if diff == diff:
        evidence["max_score_difference"] = _r(diff)
    return FLAGS["randomised-model"].raise_(
        f"Two passes on the same {xs.shape[0]} inputs disagree ({labels_differ} labels "
        "differ); the model is random, so single attacks overestimate its robustness. "
        "Remove the randomness for the evaluation, or attack its expectation (EOT).",
        evidence)


def zero_gradients(model: Classifier, x: torch.Tensor, y: torch.Tensor, *,
                   gradient: torch.Tensor | None = None) -> dict[str, Any] | None:
    """``zero-gradients``: many clean-correct samples have an exactly zero CE gradient.

    Computes the cross-entropy gradient with respect to the input on up to 256
    clean-correct samples; fires when at least 10% have ``max |g| <= 1e-12``.
    That is a saturated softmax (huge logits) or a non-differentiable layer
    (rounding, thresholds, argmax): gradient attacks then have nothing to
    follow, and their failure says nothing about robustness. Skipped for a
    model without gradients.

    Parameters
    ----------
    model : Classifier
    x : torch.Tensor, shape (M, ...)
        Clean-correct inputs.
    y : torch.Tensor, shape (M,)
        Their labels.
    gradient : torch.Tensor, optional
        The cross-entropy input gradient of ``x[:K]`` computed already (K up
        to 256); computed here when None.

    Returns
    -------
    dict or None
        The flag, with evidence ``checked``, ``zero``, ``fraction`` and
        ``threshold``.
    """
    grad_fn = getattr(model, "loss_gradient", None)
    if not model.capabilities.differentiable or not callable(grad_fn) or x.shape[0] == 0:
        return None
    xs, ys = x[:GRADIENT_N], y[:GRADIENT_N]
    g = grad_fn(xs, ys, loss="ce")[2] if gradient is None else gradient[:GRADIENT_N]
    gmax = g.detach().abs().flatten(1).amax(dim=1)
    zero = int((gmax <= ZERO_GRAD).sum())
    frac = zero / xs.shape[0]
    if frac < ZERO_GRAD_FRACTION:
        return None
    return FLAGS["zero-gradients"].raise_(
        f"{zero} of {xs.shape[0]} clean-correct samples have an exactly zero cross-entropy "
        f"input gradient (max |g| <= {ZERO_GRAD:g}): a saturated softmax or a "
        "non-differentiable layer. Gradient attacks cannot work here; rely on the "
        "black-box and minimum-norm results, or remove the masking (e.g. use logits, "
        "a differentiable approximation of the layer).",
        {"checked": int(xs.shape[0]), "zero": zero, "fraction": _r(frac),
         "threshold": ZERO_GRAD})


def not_zero_at_huge_eps(model: Classifier, x: torch.Tensor, y: torch.Tensor,
                         attack: Attack, *, eps: float,
                         broken: torch.Tensor | None = None) -> dict[str, Any] | None:
    """``not-zero-at-huge-eps``: a white-box attack at half the input range leaves samples robust.

    Runs ``attack`` (the first white-box fixed-budget attack of the
    evaluation) at ``eps``, half the input range in L∞ (half the box's
    diameter in L2 or L1), on up to 32 clean-correct samples. At that budget
    any working attack breaks every sample of an ordinary model; samples it
    leaves robust point to gradient masking or a broken attack setup.
    Samples a white-box fixed-budget attack of the run has already broken
    within ``eps`` (``broken``) are broken at that budget by definition and
    are not attacked again.

    Parameters
    ----------
    model : Classifier
    x : torch.Tensor, shape (M, ...)
        Clean-correct inputs.
    y : torch.Tensor, shape (M,)
    attack : Attack
        A white-box fixed-budget attack, already seeded.
    eps : float
        The huge budget.
    broken : torch.Tensor of bool, shape (M,), optional
        Which of ``x`` a white-box fixed-budget attack has broken within
        ``eps`` already.

    Returns
    -------
    dict or None
        The flag, with evidence ``eps``, ``checked``, ``already_broken``,
        ``attacked``, ``robust`` and ``attack``.
    """
    xs, ys = x[:HUGE_EPS_N], y[:HUGE_EPS_N]
    done = (torch.zeros(xs.shape[0], dtype=torch.bool) if broken is None
            else broken[:HUGE_EPS_N].detach().to("cpu", torch.bool))
    todo = torch.nonzero(~done).flatten().to(xs.device)
    if todo.numel() == 0:
        return None
    with warnings.catch_warnings():
        # The model's randomness has a flag of its own (randomised-model).
        warnings.simplefilter("ignore", StochasticModelWarning)
        res = attack(model, xs[todo], ys[todo], eps=eps)
    robust = int((~res.success).sum())
    if robust == 0:
        return None
    return FLAGS["not-zero-at-huge-eps"].raise_(
        f"{attack!r} at eps={eps:.4g} (half the input range) left {robust} of "
        f"{todo.numel()} samples unbroken; a working attack breaks them all at such a budget. "
        "Suspect gradient masking: check the other flags, try black-box attacks.",
        {"eps": eps, "checked": int(xs.shape[0]), "already_broken": int(done.sum()),
         "attacked": int(todo.numel()), "robust": robust, "attack": repr(attack)})


def blackbox_beats_whitebox(stages: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """``blackbox-beats-whitebox``: a score/label attack broke samples the white-box ones failed on.

    In the cascade a stage attacks only the samples every earlier attack
    failed on at that eps, so its ``broke`` count is the samples it alone
    found. Fires when a black-box stage (threat "scores" or "labels") that
    runs after at least one white-box attack breaks more than
    ``max(1, 2% of attacked)`` samples at some eps. A black-box attack has
    less information than a white-box one; when it does better, the gradients
    are misleading (masking).

    Parameters
    ----------
    stages : sequence of dict
        The ``attacks`` rows of the record (``name, eps, attacked, broke,
        threat``), in run order; minimum-norm stages have ``eps`` None.

    Returns
    -------
    dict or None
        The flag, with evidence ``stages`` (the offending ``eps, attack,
        broke, attacked``).
    """
    white_min_norm = any(s["eps"] is None and s["threat"] == "white-box" for s in stages)
    bad = []
    seen_white: set[float] = set()
    for s in stages:
        if s["eps"] is None:
            continue
        e = float(s["eps"])
        if s["threat"] == "white-box":
            seen_white.add(e)
            continue
        if not (white_min_norm or e in seen_white):
            continue
        if s["broke"] > max(1.0, BLACKBOX_FRACTION * s["attacked"]):
            bad.append({"eps": e, "attack": s["name"], "broke": int(s["broke"]),
                        "attacked": int(s["attacked"])})
    if not bad:
        return None
    first = bad[0]
    return FLAGS["blackbox-beats-whitebox"].raise_(
        f"{first['attack']} broke {first['broke']} of {first['attacked']} samples that every "
        f"white-box attack before it failed on at eps={first['eps']:.4g}. Gradients mislead "
        "the white-box attacks (gradient masking); trust the cascade's number, and examine "
        "the model's gradients.",
        {"stages": bad})

