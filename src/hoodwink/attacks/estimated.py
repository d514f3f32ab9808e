"""Gradient attacks on estimated gradients: NES and finite differences from scores."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast, get_args

import torch

from hoodwink._validation import Interval, Options, check_choice, reject
from hoodwink.attacks._gate import ModelFacts, QueryGate, score_loss
from hoodwink.attacks._norms import NormName, clip_to_bounds
from hoodwink.attacks.base import (
    AttackInputs,
    BlackBoxAttack,
    GradientAttack,
    resolve_inner_attack,
)
from hoodwink.attacks.pgd import PGD
from hoodwink.errors import ConfigError
from hoodwink.losses import LossName
from hoodwink.progress import ProgressCallback

__all__ = ["EstimatedGradient", "Estimator"]

Estimator = Literal["nes", "fd"]

#: Largest ``samples``: far beyond any published setting (NES uses 50 to 100).
MAX_SAMPLES = 100_000
#: The default sigma, in raw input units (Ilyas et al. use 0.001 for pixels in [0, 1]).
_SIGMA = 1e-3
#: Most input values in one probe batch (64 MiB of float32); larger estimates are split.
_PROBE_ELEMENTS = 2**24
#: Floor of probabilities before their log, as the query gate's losses use it.
_TINY = 1e-30
_OWNER = "EstimatedGradient"


def _default_attack(norm: NormName) -> PGD:
    return PGD(norm=norm, steps=20, loss="margin", random_start=False)


@dataclass(frozen=True, kw_only=True)
class EstimatedGradient(BlackBoxAttack):
    """A gradient attack run on gradients estimated from score queries.

    Runs the algorithm of a white-box attack (PGD by default) on a view of the
    model whose input gradients are *estimated* from its scores, so any
    gradient attack becomes a score-based black-box attack:

    - ``estimator="nes"``: natural evolution strategies with antithetic
      Gaussian sampling (Ilyas, Engstrom, Athalye and Lin, "Black-box
      Adversarial Attacks with Limited Queries and Information", ICML 2018):
      with ``P = samples / 2`` directions ``u_i ~ N(0, I)``,
      ``g = sum_i (L(x + sigma u_i) - L(x - sigma u_i)) u_i / (2 sigma P)``,
      an unbiased estimate of the gradient of the sigma-smoothed loss.
    - ``estimator="fd"``: symmetric finite differences along ``P = samples /
      2`` random coordinates per estimate (Chen, Zhang, Sharma, Yi and Hsieh,
      "ZOO", AISec 2017): ``g_j = (L(x + sigma e_j) - L(x - sigma e_j)) /
      (2 sigma)`` on the chosen coordinates, 0 elsewhere.

    Both spend the same queries per estimate, so they compare query for query.
    Probes are clipped to the model bounds (near a bound the NES estimate is
    then biased, the finite difference one-sided). They are *not* snapped to
    the model's grid (``levels``): probes only estimate, the iterates the
    inner attack judges and returns are on the grid. A model defined only on
    its grid is then probed off it; choose ``sigma`` at least one grid step
    (the default) so that probes reach neighbouring grid points.

    Piecewise-constant models (random forests, kNN, any model with a grid it
    rounds to) have zero gradient almost everywhere: when ``sigma`` is below
    the distance to the next split, every probe gets the same score, the
    estimate is exactly zero, a sign step does nothing and the attack returns
    ``x``. A larger ``sigma`` smooths the model over that scale.

    Threat model: black box with scores (logits or probabilities; labels only
    are refused), untargeted or targeted, in the norms of the inner attack
    (PGD: L∞, L2, L1).

    Query cost: each gradient estimate costs ``samples + 1`` queries per
    active sample: one at the iterate, which gives the loss and the scores
    the inner attack judges iterates by (log-scores stand in for logits,
    log-probabilities for probability outputs), then the probes. Where PGD
    stops a sample (early stopping, the default) at an adversarial iterate,
    its probes are skipped: that step costs 1. A logits pass costs 1. With
    PGD, a restart of ``steps`` steps costs at most ``steps * (samples + 1) +
    1``; the base class's clean pass and final verification add 1
    each. The inner attack does not know the budget, so its ``steps`` are
    cut to ``floor((max_queries - 3) / (samples + 1))`` when they would not
    fit, and then its ``restarts`` to as many as the rest of the budget
    affords (at least 1). Inner attacks without ``steps`` (FGSM) estimate one
    gradient. Samples stop as the inner attack stops them (PGD: at the first
    adversarial iterate).

    Anytime: PGD's step length, when not given, is fixed from the inner
    attack's own ``steps`` before they are fitted to the budget (``2.5 * eps
    / steps``), so with ``restarts=1`` a run with a budget of B queries is
    the first B queries of a run with a bigger budget (same seed).

    Parameters
    ----------
    attack : GradientAttack, optional
        The white-box attack to run, e.g. ``PGD(steps=50)``. None gives
        ``PGD(steps=20, loss="margin", random_start=False)``. Its ``loss`` is
        replaced by ``loss`` and its norm by ``norm`` (when given); its own
        seed is unused (the randomness is this attack's).
    estimator : {"nes", "fd"}, default "nes"
    samples : even int in [2, 100_000], default 50
        Queries per gradient estimate besides the one at the iterate:
        ``samples / 2`` antithetic pairs (NES) or coordinates (FD; at most the
        input size).
    sigma : float > 0 or None, default None
        Probe distance in raw input units. None: 0.001 (Ilyas et al., for
        pixels in [0, 1]), or one grid step where the model has ``levels`` and
        its step is larger (1/255 on an 8-bit grid), per feature.
    loss : {"margin", "ce"}, default "margin"
        The attacker loss estimated (logit margin, or cross-entropy on the
        log-scores).
    norm : {"linf", "l2", "l1"} or None, default None
        The norm; None takes the inner attack's.
    max_queries : int in [2, 10**9], default 1000
        Most queries per sample, clean pass and verification included; at
        least ``samples + 4`` for PGD (``samples + 3`` for FGSM), the price
        of one step.
    seed : int >= 0 or None, default 0
        Seed of the attack's local random generator (probe directions and the
        inner attack's random start).

    Raises
    ------
    ConfigError
        For an invalid parameter, and when ``max_queries`` cannot pay for one
        gradient step.

    Examples
    --------
    >>> import torch, hoodwink
    >>> from hoodwink.attacks.estimated import EstimatedGradient
    >>> net = torch.nn.Linear(3, 2, bias=False).eval()
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[0., 0., 0.], [3., -5., 7.]]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(-1, 1))
    >>> attack = EstimatedGradient(samples=10, max_queries=40)
    >>> r = attack(model, torch.zeros(1, 3), target=1, eps=0.1)
    >>> r.success.tolist()
    [True]
    >>> # clean pass, a step at x (1 + 10 probes), 1 at the adversarial step, verification
    >>> r.queries.tolist()
    [14]
    """

    attack: GradientAttack | None = None
    estimator: Estimator = "nes"
    samples: int = 50
    sigma: float | None = None
    loss: LossName = "margin"
    norm: NormName | None = None  # type: ignore[assignment]

    threat: ClassVar[Literal["scores"]] = "scores"
    supported_norms: ClassVar[tuple[str, ...]] = ("linf", "l2", "l1")
    supports_targeted: ClassVar[bool] = True

    _constraints = {
        "estimator": (Options(get_args(Estimator)),),
        "samples": (Interval(int, 2, MAX_SAMPLES),),
        "sigma": (Interval(float, 0, None, closed="neither"), None),
        "loss": (Options(get_args(LossName)),),
    }

    def __post_init__(self) -> None:
        # The inner attack and the norm decide each other: resolve both first, so that
        # the repr shows the attack that runs, then validate the rest as usual.
        attack, norm = resolve_inner_attack(_OWNER, self.attack, self.norm,
                                            self.supported_norms, _default_attack)
        if "loss" in _field_names(attack) and _param(attack, "loss") != self.loss:
            loss = check_choice(_OWNER, "loss", self.loss, get_args(LossName))
            attack = cast(GradientAttack, attack.replace(loss=loss))
        object.__setattr__(self, "attack", attack)
        object.__setattr__(self, "norm", norm)
        super().__post_init__()

    def _validate(self) -> None:
        self._check("samples", self.samples % 2 == 0,
                    "an even int (samples / 2 antithetic pairs or coordinates, two queries "
                    "each)")
        need = self._min_queries()
        if self.max_queries < need:
            reject(_OWNER, "max_queries", self.max_queries,
                   f"at least {need} for samples={self.samples}",
                   hint=f"One step costs samples + 1 = {self.samples + 1} queries, plus the "
                        "clean pass, the final judging pass and the verification. Raise "
                        "max_queries or lower samples.")

    def _inner(self) -> GradientAttack:
        if self.attack is None:  # unreachable: resolved in __post_init__
            return _default_attack(cast(NormName, self.norm))
        return self.attack

    def _min_queries(self) -> int:
        steps = "steps" in _field_names(self._inner())
        return self.samples + 3 + (1 if steps else 0)

    # ------------------------------------------------------------------ the attack
    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        self._clean_scores(model, inputs)
        x = inputs.x
        report = inputs.progress
        if inputs.eps == 0 or x[0].numel() == 0:
            if report is not None:
                report(1, 1, "eps = 0: nothing to do")
            return x.clone()
        pairs = self.samples // 2
        if self.estimator == "fd":
            pairs = min(pairs, x[0].numel())
        per_estimate = 2 * pairs + 1
        budget = int(model.remaining().min())  # the same for every sample here
        inner, cost = self._fit(self._inner(), per_estimate, budget, inputs.eps)
        # PGD with early stopping drops a sample at its first adversarial iterate without
        # using the gradient there: its probes are skipped.
        skip = isinstance(inner, PGD) and inner.early_stop and inner.confidence == 0
        view = _EstimatingGate(model, inputs, self._sigma(model, x), pairs, self.estimator,
                               skip)
        total = 1 + cost  # per sample: the clean pass and the inner attack's calls
        sub = inputs
        if report is not None:
            def relay(done: int, of: int, message: str) -> None:
                report(min(int(model.used.max()), total), total, message)

            sub = dataclasses.replace(inputs, progress=cast(ProgressCallback, relay))
        x_adv = inner._run(cast(QueryGate, view), sub)
        inputs.expect(view.last_x, view.last_pred)
        if report is not None:
            report(total, total, "done")
        return x_adv

    def _fit(self, attack: GradientAttack, per_estimate: int, budget: int,
             eps: float) -> tuple[GradientAttack, int]:
        """The inner attack with steps (and restarts) cut to ``budget``, and its cost."""
        names = _field_names(attack)
        if "steps" not in names:
            if budget < per_estimate:
                raise self._too_small()
            return attack, per_estimate
        steps = min(int(_param(attack, "steps")), (budget - 1) // per_estimate)
        if steps < 1:
            raise self._too_small()
        changes: dict[str, Any] = {"steps": steps}
        per_restart = steps * per_estimate + 1
        restarts = 1
        if "restarts" in names:
            restarts = min(int(_param(attack, "restarts")), max(1, budget // per_restart))
            changes["restarts"] = restarts
        if isinstance(attack, PGD) and attack.stepsize is None:
            # PGD's own rule, on the steps asked for, not those the budget allows.
            changes["stepsize"] = 2.5 * eps / attack.steps
        return cast(GradientAttack, attack.replace(**changes)), restarts * per_restart

    def _too_small(self) -> ConfigError:
        return ConfigError(
            f"The 'max_queries' parameter of {_OWNER} must be at least {self._min_queries()} "
            f"for samples={self.samples}. Got {self.max_queries}. Raise max_queries or lower "
            "samples."
        )

    def _sigma(self, model: QueryGate, x: torch.Tensor) -> torch.Tensor:
        """The probe distance, a 0-d tensor or per feature (broadcast to one input)."""
        if self.sigma is not None:
            return torch.tensor(self.sigma, dtype=x.dtype, device=x.device)
        sigma = torch.tensor(_SIGMA, dtype=x.dtype, device=x.device)
        if model.levels is not None:
            lo, hi = model.bounds
            step = ((hi - lo) / (model.levels - 1)).to(device=x.device, dtype=x.dtype)
            sigma = torch.maximum(step, sigma)
        return sigma


class _EstimatingGate(ModelFacts):
    """The query gate as a differentiable model would show it, gradients estimated.

    Every call goes through the real gate with the rows of its samples (probes
    of one sample repeat its row), so it is counted and budgeted there. It
    remembers, per sample, the last iterate it was asked about and the
    prediction there, for :meth:`AttackInputs.expect`.
    """

    def __init__(self, gate: QueryGate, inputs: AttackInputs, sigma: torch.Tensor,
                 pairs: int, estimator: str, skip_adversarial: bool) -> None:
        self._gate = gate
        self._source = gate  # the model's facts, as the gate shows them
        self._skip_adversarial = skip_adversarial
        self._sigma = sigma
        self._pairs = pairs
        self._estimator = estimator
        self._generator = inputs.generator
        self.last_x = inputs.x.clone()
        self.last_pred = inputs.pred_clean.clone()
        self._all = torch.arange(inputs.x.shape[0], device=gate.used.device)

    def remaining(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        return self._gate.remaining(rows)

    def can_query(self, rows: torch.Tensor | None = None, k: int = 1) -> torch.Tensor:
        return self._gate.can_query(rows, k)

    # ------------------------------------------------------------------ calls
    def predict(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        pred = self._gate.predict(x, rows)
        self._seen(x, pred, rows)
        return pred

    def scores(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        s = self._gate.scores(x, rows)
        self._seen(x, s.argmax(dim=1), rows)
        return s

    def logits(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Log-scores: logits as given, or log-probabilities; one query per row."""
        z = self._log_scores(self._gate.scores(x, rows))
        self._seen(x, z.argmax(dim=1), rows)
        return z

    def loss_gradient(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        loss: LossName = "ce",
        targeted: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attacker loss and log-scores at ``x``, and the estimated gradient.

        ``samples + 1`` queries per row, in one gate call per chunk of samples.
        """
        m = x.shape[0]
        idx = self._all if rows is None else rows.to(self._all.device)
        s = self._gate.scores(x, idx if rows is not None else None)
        output = self._gate.capabilities.output
        ell = score_loss(s, labels, output, loss=loss, targeted=targeted)
        z = self._log_scores(s)
        pred = z.argmax(dim=1)
        self._seen(x, pred, rows)
        grad = torch.zeros_like(x)
        need = torch.ones(m, dtype=torch.bool, device=x.device)
        if self._skip_adversarial:
            # The inner attack stops these samples here, unused gradient and all.
            need = pred != labels if targeted else pred == labels
        todo = need.nonzero()[:, 0]
        chunk = max(1, _PROBE_ELEMENTS // max(1, 2 * self._pairs * x[0].numel()))
        for c in range(0, todo.shape[0], chunk):
            part = todo[c:c + chunk]
            g = self._estimate(x[part], labels[part], idx[part], loss, targeted)
            grad.index_copy_(0, part, g)
        return ell, z, grad

    # ------------------------------------------------------------------ internals
    def _estimate(self, x: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor,
                  loss: LossName, targeted: bool) -> torch.Tensor:
        """The gradient estimate at each row of ``x``: ``samples`` queries per row."""
        b, shape1, p = x.shape[0], tuple(x.shape[1:]), self._pairs
        lo, hi = self._gate.bounds
        sigma = self._sigma
        xs = x[:, None]
        if self._estimator == "nes":
            # Drawn on the CPU with the attack's generator: the same on every device.
            u = torch.randn((b, p) + shape1, generator=self._generator)
            u = u.to(device=x.device, dtype=x.dtype)
            delta = sigma * u
        else:
            d = x[0].numel()
            coords = torch.rand((b, d), generator=self._generator).topk(p, dim=1).indices
            onehot = torch.zeros((b, p, d), dtype=x.dtype)
            onehot.scatter_(2, coords[:, :, None], 1.0)
            delta = sigma * onehot.reshape((b, p) + shape1).to(x.device)
        plus = clip_to_bounds(xs + delta, lo, hi)
        minus = clip_to_bounds(xs - delta, lo, hi)
        batch = torch.cat((plus, minus), dim=1).reshape((b * 2 * p,) + shape1)
        s = self._gate.scores(batch, rows.repeat_interleave(2 * p))
        ell = score_loss(s, labels.repeat_interleave(2 * p), self._gate.capabilities.output,
                         loss=loss, targeted=targeted).reshape(b, 2 * p)
        diff = ell[:, :p] - ell[:, p:]  # (b, p), float64
        if self._estimator == "nes":
            bshape = (b, p) + (1,) * len(shape1)
            weighted = (diff.reshape(bshape) * u.double()).sum(dim=1)
            grad = weighted / (2 * p * sigma.double())
        else:
            # The distance actually probed (less than 2 sigma where a probe was clipped).
            span = (plus - minus).reshape(b, p, -1).double()
            cx = coords.to(x.device)
            dist = span.gather(2, cx[:, :, None])[:, :, 0]
            g = torch.where(dist > 0, diff / dist.clamp_min(1e-300), torch.zeros_like(diff))
            flat = torch.zeros((b, x[0].numel()), dtype=torch.float64, device=x.device)
            flat.scatter_(1, cx, g)
            grad = flat.reshape(x.shape)
        return grad.to(x.dtype)

    def _log_scores(self, s: torch.Tensor) -> torch.Tensor:
        z = s.double()
        if self._gate.capabilities.output == "probabilities":
            z = z.clamp_min(_TINY).log()
        return z

    def _seen(self, x: torch.Tensor, pred: torch.Tensor, rows: torch.Tensor | None) -> None:
        if x.shape[0] == 0:
            return
        idx = self._all if rows is None else rows.to(self._all.device)
        # A sample's last query wins: with repeated rows index_copy_ keeps one of them,
        # which only the probes do, and they never reach here.
        self.last_x.index_copy_(0, idx, x.detach().to(self.last_x.dtype))
        self.last_pred.index_copy_(0, idx, pred.to(self.last_pred.device))


def _field_names(attack: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(attack)}


def _param(attack: Any, name: str) -> Any:
    """A parameter of an attack of unknown class (checked with :func:`_field_names`)."""
    return vars(attack)[name]
