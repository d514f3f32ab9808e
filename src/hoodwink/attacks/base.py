"""The attack base class: one call signature, validation and guarantees.

Every attack subclasses :class:`Attack` (or :class:`GradientAttack`) and
implements ``_run``. The public :meth:`Attack.__call__` validates the inputs,
runs ``_run``, then projects the result onto the eps-ball and the bounds once
more (it does not trust the subclass), snaps it to the model's grid, verifies
every guarantee, and recomputes success with a fresh forward pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

import numpy as np
import torch

from hoodwink._validation import (
    Constraints,
    InstanceOf,
    Interval,
    Options,
    check,
    check_choice,
    check_real,
    format_apart,
    is_int,
    reject,
    validate_fields,
)
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks._norms import (
    NormName,
    clip_to_bounds,
    norms,
    on_grid,
    project,
    quantize,
    range_diameter,
    scalar_bounds,
    snap_point,
)
from hoodwink.attacks.curve import Curve
from hoodwink.attacks.result import AttackResult
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    EpsScaleWarning,
    HoodwinkError,
    InputError,
    InternalError,
    OutOfBoundsError,
    ShapeError,
    StochasticModelWarning,
)
from hoodwink.models.base import Classifier
from hoodwink.progress import ProgressCallback, as_callback

__all__ = ["Attack", "AttackInputs", "BlackBoxAttack", "GradientAttack", "Threat"]

#: What an attack needs from the model: input gradients ("white-box"), scores
#: (logits or probabilities), or only the predicted labels.
Threat = Literal["white-box", "scores", "labels"]
#: Largest ``max_queries`` of a black-box attack.
MAX_QUERIES = 10**9

_NORMS: tuple[str, ...] = ("linf", "l2", "l1")
#: The largest seed torch.Generator.manual_seed takes.
_MAX_SEED = 2**64 - 1
#: Budgets beyond this many times the diameter of the input box are all the same
#: budget (the whole box) and are capped to it, so that no step overflows a float.
_EPS_HEADROOM = 1024.0
#: A step longer than this many times eps ends, after projection, where an
#: infinitely long one would (to float32 precision); longer steps only overflow.
_STEP_HEADROOM = 2.0**25
_LOW_PRECISION = (torch.float16, torch.bfloat16)


@dataclass(frozen=True, kw_only=True)
class AttackInputs:
    """Validated call arguments handed to ``Attack._run``.

    Attributes
    ----------
    x : torch.Tensor
        Inputs on the model's device, float32 or float64, within bounds (and
        snapped onto the model's grid when it has ``levels``).
    labels : torch.Tensor
        True labels (untargeted) or targets (targeted), int64, shape (N,).
    targeted : bool
    eps : float
        The budget to work with: the caller's, capped at 1024 times the
        diameter of the input box (a larger budget is the same constraint),
        so that every step stays finite.
    y : torch.Tensor or None
        True labels when given (also for targeted attacks).
    generator : torch.Generator
        Local CPU generator seeded with the attack's seed.
    progress : callable or None
        ``progress(done, total, message)`` from the caller, or None (report
        nothing; attacks then skip all progress bookkeeping).
    pred_clean : torch.Tensor
        Model predictions on ``x`` (a property; see :meth:`set_pred_clean`).
    """

    x: torch.Tensor
    labels: torch.Tensor
    targeted: bool
    eps: float
    y: torch.Tensor | None
    generator: torch.Generator
    progress: ProgressCallback | None = None
    #: The caller's inputs (on the model's device) when ``x`` is their grid point.
    x_given: torch.Tensor | None = None
    # A one-slot box, so that an attack whose first pass is at x can hand the clean
    # predictions back (see Attack._first_pass_at_x) while the record stays frozen.
    _clean: list[torch.Tensor] = field(default_factory=list, repr=False)
    # The model's scores at x when the clean pass asked for them (score attacks).
    _clean_scores: list[torch.Tensor] = field(default_factory=list, repr=False)
    # (x_adv as the attack returned it, the predictions the attack saw there): the base
    # class compares them with its own verification pass to spot a random model.
    _expected: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list,
                                                               repr=False)

    @property
    def pred_clean(self) -> torch.Tensor:
        """Model predictions on ``x``, shape (N,), int64."""
        if not self._clean:
            raise InternalError(
                "pred_clean was read before any forward pass at x; this is a hoodwink bug, "
                "please report it."
            )
        return self._clean[0]

    @property
    def has_pred_clean(self) -> bool:
        """Whether :attr:`pred_clean` is known yet."""
        return bool(self._clean)

    @property
    def max_stepsize(self) -> float:
        """The longest step an attack should take: longer ones end in the same place.

        After projection onto the eps-ball, a step of ``2**25 * eps`` lands where
        an infinitely long one would, to float32 precision; a longer one would
        only overflow into inf or NaN.
        """
        return min(_STEP_HEADROOM * self.eps, _finite_cap(self.x.dtype))

    def set_pred_clean(self, pred: torch.Tensor) -> None:
        """Record the clean predictions, computed by the attack's first pass at ``x``.

        Only attacks that declare :meth:`Attack._first_pass_at_x` call this, and
        only while :attr:`has_pred_clean` is False.
        """
        if self._clean:
            raise InternalError("pred_clean was set twice; this is a hoodwink bug.")
        self._clean.append(pred.detach())

    @property
    def clean_scores(self) -> torch.Tensor | None:
        """The model's scores at ``x`` (N, C) when the clean pass was a scores pass, else None."""
        return self._clean_scores[0] if self._clean_scores else None

    def set_clean_scores(self, scores: torch.Tensor) -> None:
        """Record the scores of a pass at ``x`` over every sample (and the clean predictions)."""
        if not self._clean_scores:
            self._clean_scores.append(scores.detach())
        if not self._clean:
            self.set_pred_clean(scores.argmax(dim=1))

    def expect(self, x_adv: torch.Tensor, pred: torch.Tensor) -> None:
        """Tell the base class the model predicted ``pred`` at the returned ``x_adv``.

        Black-box attacks call this with the predictions they saw at the
        points they return. Where the verification pass at exactly those
        points disagrees, the model answered the same input two ways, and the
        base class warns (:class:`~hoodwink.errors.StochasticModelWarning`).
        """
        self._expected.clear()
        self._expected.append((x_adv.detach(), pred.detach()))

    def is_adversarial(self, pred: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Success criterion for predictions ``pred`` of samples ``idx`` (all if None)."""
        lab = self.labels if idx is None else self.labels[idx]
        return pred == lab if self.targeted else pred != lab


@dataclass(frozen=True, kw_only=True)
class Attack:
    """Base class of all attacks.

    Subclasses are frozen, keyword-only dataclasses. They declare their norm
    in a ``norm`` field and implement :meth:`_run`.
    """

    norm: NormName = "linf"
    seed: int | None = 0

    #: Norms the attack supports.
    supported_norms: ClassVar[tuple[str, ...]] = _NORMS
    #: What the attack needs from the model (see :data:`Threat`).
    threat: ClassVar[Threat] = "labels"
    #: Whether the attack can be targeted.
    supports_targeted: ClassVar[bool] = True
    #: Whether the attack needs gradients from the model.
    needs_gradients: ClassVar[bool] = False
    #: Whether the attack looks for the smallest adversarial perturbation: ``eps``
    #: then only bounds what counts as a success, and ``perturbation_norm`` is
    #: the norm it reached (a sample it fails on comes back unchanged).
    minimum_norm: ClassVar[bool] = False
    #: Constraints of the subclass's parameters (see :mod:`hoodwink._validation`).
    _constraints: ClassVar[Constraints] = {}

    def __post_init__(self) -> None:
        # The norm's options depend on the subclass, so it is checked here, not in a table.
        validate_fields(self, {
            "norm": (Options(self.supported_norms),),
            "seed": (Interval(int, 0, _MAX_SEED), None),
        })
        validate_fields(self)
        self._validate()

    def _validate(self) -> None:
        """Check what the ``_constraints`` table cannot express; raise :class:`ConfigError`.

        Simple parameter checks belong in the class attribute ``_constraints``
        (field name → constraints of :mod:`hoodwink._validation`), which
        ``__post_init__`` validates and normalises first.
        """

    # ------------------------------------------------------------------ helpers
    def _check(self, name: str, ok: bool, constraint: str) -> None:
        """Raise the standard :class:`ConfigError` for field ``name`` unless ``ok``."""
        if not ok:
            reject(type(self).__name__, name, getattr(self, name), constraint)

    # ------------------------------------------------------------------ public API
    def __call__(
        self,
        model: Classifier,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        *,
        target: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        eps: float,
        progress: ProgressCallback | None = None,
    ) -> AttackResult:
        """Attack ``model`` on ``x`` within an eps-ball.

        Parameters
        ----------
        model : Classifier
            A wrapped model, e.g. :class:`hoodwink.TorchClassifier`.
        x : torch.Tensor, shape (N, ...)
            Raw float inputs within the model bounds (never normalised).
        y : int tensor of shape (N,), optional
            True labels. Required for an untargeted attack, except that when
            both ``y`` and ``target`` are omitted the model's own clean
            predictions are attacked.
        target : int or int tensor of shape (N,), optional
            Target classes; makes the attack targeted. An int applies to all.
        eps : float
            Budget in the attack's norm, in raw input units (8/255, not 8).
        progress : callable, optional
            ``progress(done, total, message)`` (see :mod:`hoodwink.progress`),
            called as the attack advances in units of its own choosing (PGD:
            steps across restarts; FGSM: one), always ending with
            ``done == total``. Off by default, and free when off.

        Returns
        -------
        AttackResult
            ``x_adv`` has the dtype of ``x``; float16 and bfloat16 inputs are
            attacked in float32, and the result is rounded towards ``x`` in
            the input dtype before it is checked, so the eps-ball, the bounds,
            ``perturbation_norm`` and ``success`` all hold for exactly the
            returned tensor. When the model has ``levels``, ``x`` must lie on
            its grid (to 1/1000 of a step) and is taken to be its grid point:
            the eps-ball and ``perturbation_norm`` are around that point.

        Raises
        ------
        hoodwink.errors.CapabilityError
            When ``model`` is not a hoodwink model instance (e.g. the class
            itself), cannot give gradients to a gradient attack, or lives on
            the meta device.
        hoodwink.errors.ConfigError
            When ``eps`` is not a real number in [0, inf).
        hoodwink.errors.InputError
            When ``x``, ``y`` or ``target`` is unusable: a
            :class:`~hoodwink.errors.ShapeError` for a wrong shape or dtype
            (including model bounds not shaped like one input), an
            :class:`~hoodwink.errors.OutOfBoundsError` for values outside the
            bounds, an InputError for labels outside the model's classes,
            off-grid inputs, NaN or meta tensors.
        hoodwink.errors.InternalError
            When a guarantee fails (a hoodwink bug).
        """
        t0 = time.perf_counter()
        self._check_model(model)
        eps_f = self._check_eps(model, eps, x)
        report = as_callback(progress) if progress is not None else None
        # One evaluating() block around the whole run, where the model has one: the
        # model's own per-call blocks then nest for free instead of walking every
        # submodule and parameter on each step. The mode is still restored on error.
        evaluating = getattr(model, "evaluating", None)
        with evaluating() if callable(evaluating) else contextlib.nullcontext():
            inputs, orig, gate = self._prepare(model, x, y, target, eps_f, report)
            x_adv = self._run(gate, inputs)
            return self._finish(gate, inputs, orig, x_adv, t0, eps=eps_f)

    def sweep(
        self,
        model: Classifier,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        *,
        target: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        eps: Sequence[float],
        progress: ProgressCallback | None = None,
    ) -> Curve:
        """Run the attack once per budget in ``eps``: a robustness curve.

        Each budget gives exactly the result of ``self(model, x, y,
        target=target, eps=e)``.

        Parameters
        ----------
        model, x, y, target
            As for :meth:`__call__`.
        eps : sequence of float, length K >= 1
            The budgets, in the attack's norm and raw input units, e.g.
            ``[1/255, 2/255, 4/255, 8/255]``.
        progress : callable, optional
            ``progress(done, total, message)``: one bar over the whole sweep,
            100 units per budget, the message prefixed with the budget.

        Returns
        -------
        Curve
            A sequence of K :class:`AttackResult`, in the order of ``eps``,
            with robust accuracy against eps as a table, a plot and JSON.

        Raises
        ------
        hoodwink.errors.ConfigError
            When ``eps`` is not a list, tuple, range or 1-d array of real
            numbers (a single number, a string, bytes, a set, a tensor), is
            empty, or a budget in it is invalid (as for a single call). All
            budgets are checked before the first one runs.
        """
        from hoodwink.progress import scaled

        budgets = _budgets(type(self).__name__, eps)
        eps = budgets
        outer = as_callback(progress) if progress is not None else None
        span, total = 100, 100 * len(eps)

        def labelled(part: ProgressCallback, label: str) -> ProgressCallback:
            return lambda d, t, m: part(d, t, f"{label}: {m}" if m else label)

        results = []
        for k, e in enumerate(eps):
            sub = None
            if outer is not None:
                sub = labelled(scaled(outer, k * span, span, total), f"eps {e:.4g}")
            results.append(self(model, x, y, target=target, eps=e, progress=sub))
        return Curve(eps=tuple(r.eps if r.eps is not None else float(e)
                               for r, e in zip(results, eps, strict=True)),
                     results=tuple(results), norm=self.norm, attack=repr(self))

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        """Produce adversarial inputs (N, ...), like ``inputs.x``.

        ``model`` is the :class:`~hoodwink.attacks._gate.QueryGate` over the
        user's model: every call names the samples its rows belong to
        (``rows=``), is counted, and is refused beyond ``max_queries``; check
        ``model.remaining(rows)`` before querying.

        When :meth:`_first_pass_at_x` is True and ``inputs.has_pred_clean`` is
        False, the first model pass must be at ``inputs.x`` itself, for every
        sample, and its predictions go to ``inputs.set_pred_clean`` (or its
        scores to ``inputs.set_clean_scores``) before ``pred_clean`` is read.
        """
        raise NotImplementedError

    def _budget(self) -> int | None:
        """Most queries per sample, verification included (None: no limit)."""
        return None

    def _first_pass_at_x(self) -> bool:
        """Whether :meth:`_run` can supply the clean predictions from its first pass.

        The base class then skips its own clean forward pass (unless the labels
        are the clean predictions, i.e. neither ``y`` nor ``target`` was given),
        which saves one model pass per sample: FGSM's gradient pass at ``x``,
        for instance, already yields the clean logits.
        """
        return False

    # ------------------------------------------------------------------ validation
    def _check_model(self, model: Classifier) -> None:
        needed = ("capabilities", "num_classes", "bounds", "levels", "predict")
        if isinstance(model, type):
            raise CapabilityError(
                f"{type(self).__name__} needs a hoodwink model instance; got the class "
                f"{model.__name__} itself. Create one first, e.g. "
                "hoodwink.TorchClassifier(module, bounds=(0, 1))."
            )
        if not all(hasattr(type(model), a) or hasattr(model, a) for a in needed):
            raise CapabilityError(
                f"{type(self).__name__} needs a hoodwink model; got {type(model).__name__}. "
                "Wrap a torch module with hoodwink.TorchClassifier(module, bounds=...)."
            )
        self._check_fits(model)
        dev = getattr(model, "device", None)
        lo, hi = model.bounds
        if any(d is not None and torch.device(d).type == "meta"
               for d in (dev if isinstance(dev, torch.device) else None, lo.device, hi.device)):
            raise CapabilityError(
                f"{type(model).__name__} is on the meta device, which holds no weights, so "
                f"{type(self).__name__} cannot run it. Load the weights first (e.g. "
                "module.to_empty(device='cpu') and load_state_dict) and wrap it again."
            )

    def _check_fits(self, model: Classifier) -> None:
        """Raise :class:`CapabilityError` when the model cannot give what the attack needs."""
        caps = model.capabilities
        gives = "labels only" if caps.output == "labels" else caps.output
        if self.threat == "white-box" and not caps.differentiable:
            problem = (f"{type(self).__name__} is a gradient attack (white box) but "
                       f"{type(model).__name__} provides no gradients (it gives {gives}).")
        elif self.threat == "scores" and caps.output == "labels":
            problem = (f"{type(self).__name__} needs the model's scores, but "
                       f"{type(model).__name__} gives labels only.")
        else:
            return
        from hoodwink.attacks.registry import fitting

        names = ", ".join(fitting(caps))
        raise CapabilityError(
            f"{problem} Attacks that fit this model: {names} (see `hoodwink attacks`)."
            + (" A gradient attack can also run on estimated gradients: "
               "EstimatedGradient(PGD(...))." if self.threat == "white-box"
               and caps.output != "labels" else "")
        )

    def _check_eps(self, model: Classifier, eps: Any, x: Any) -> float:
        e: float = check_real(type(self).__name__, "eps", eps, low=0)
        lo, hi = model.bounds
        dims = int(np.prod(tuple(x.shape[1:]))) if hasattr(x, "shape") else 1
        diameter = range_diameter(lo, hi, self.norm, dims)
        if e > diameter:
            warnings.warn(
                f"eps={e:g} is larger than the whole input range in {self.norm} "
                f"({diameter:g}), so the attack is unconstrained. Budgets are in raw input "
                f"units: did you mean {e:g}/255 = {e / 255:.5g}?",
                EpsScaleWarning,
                stacklevel=3,
            )
        return e

    def _prepare(
        self, model: Classifier, x: Any, y: Any, target: Any, eps: float,
        progress: ProgressCallback | None = None,
    ) -> tuple[AttackInputs, torch.Tensor, QueryGate]:
        """Validate and move the inputs; also return the query gate the attack calls through.

        The gate has already counted the base class's clean pass when it made
        one (it skips it when the attack computes the clean predictions itself).
        """
        xt, extremes = _as_input(x)
        device = _model_device(model, xt)
        xd = xt.detach().to(device=device, dtype=torch.float32 if xt.dtype in _LOW_PRECISION
                            else xt.dtype)
        lo, hi = model.bounds
        _check_bounds_shape(lo, hi, xt)
        numbers = scalar_bounds(lo, hi)
        if numbers is not None:
            # Scalar bounds: x's least and largest values (exact in xd's dtype too) against
            # the bounds as numbers, compared in x's dtype as the elementwise test would.
            out = extremes is not None and bool(
                (extremes[0].to(xd.dtype) < numbers[0]) | (extremes[1].to(xd.dtype) > numbers[1]))
        else:
            try:
                below = xd < lo
                above = xd > hi
            except RuntimeError as exc:
                raise ShapeError(
                    f"x has shape {tuple(xt.shape)}, which does not broadcast with the model "
                    f"bounds of shape {tuple(lo.shape)}. Pass a batch (N, ...) of single inputs."
                ) from exc
            out = bool(below.any() or above.any())
        if out:
            # Enough digits to show the difference: 1 + 1e-7 is not "1".
            x_lo, b_lo = format_apart(xd.min().item(), lo.min().item())
            x_hi, b_hi = format_apart(xd.max().item(), hi.max().item())
            raise OutOfBoundsError(
                f"x has values in [{x_lo}, {x_hi}], outside the model bounds [{b_lo}, {b_hi}]. "
                "If your data is normalised, pass raw inputs and give preprocessing= to "
                "TorchClassifier."
            )
        levels = model.levels
        x_given: torch.Tensor | None = None
        if levels is not None:
            if not on_grid(xd, lo, hi, levels):
                raise InputError(
                    f"The model has levels={levels} but x is not on that grid. Quantise the "
                    f"inputs first (for 8-bit images: x = torch.round(x * 255) / 255), or "
                    "wrap the model with levels=None."
                )
            # x is on the grid up to a tolerance: from here on it *is* its grid point, so
            # the eps-ball is around the point every result is snapped around (else, in
            # L2/L1, the snap of x alone could leave the ball). The same formula as
            # quantize's, so an exact grid input is kept bit for bit.
            x_given = xd
            xd = snap_point(xd, lo, hi, levels).to(xd.dtype)
            if xt.dtype in _LOW_PRECISION:  # keep x representable in the input dtype
                xd = xd.to(xt.dtype).to(xd.dtype)
            if torch.equal(xd, x_given):
                x_given = None
        eps = min(eps, _EPS_HEADROOM * _diameter(lo, hi, xt, self.norm),
                  _finite_cap(xd.dtype))
        n = xd.shape[0]
        # Labels and targets are validated before the attack's first pass. When the
        # attack takes the clean predictions from that pass, the base class makes
        # no clean pass of its own, unless the labels are those predictions or the
        # model learns its number of classes only from a first forward pass.
        own_clean = (y is None and target is None) or not self._first_pass_at_x()
        gate = QueryGate(model, n, self._budget(), xd.device)
        clean_scores: torch.Tensor | None = None
        pred_clean: torch.Tensor | None = None
        if own_clean:
            if self.threat == "scores":
                clean_scores = gate.scores(xd)
                pred_clean = clean_scores.argmax(dim=1)
            else:
                pred_clean = gate.predict(xd)
        try:
            c = model.num_classes
        except ConfigError:
            if own_clean:
                raise
            probed = self._probe_num_classes(model, xd)
            if probed is None:  # the model cannot run an empty batch: pay for one clean pass
                own_clean, pred_clean = True, gate.predict(xd)
                probed = model.num_classes
            c = probed
        y_t = _as_labels(y, n, c, "y", device) if y is not None else None
        t_t = _as_labels(target, n, c, "target", device) if target is not None else None
        if t_t is not None and y_t is not None:
            same = t_t == y_t
            if bool(same.any()):
                i = int(same.nonzero()[0, 0].item())
                raise InputError(
                    f"target equals the true label y for {int(same.sum())} sample(s) "
                    f"(first: index {i}, class {int(y_t[i])}). A targeted attack needs a "
                    "different class; drop those samples or pick another target."
                )
        gen = torch.Generator()
        if self.seed is None:
            # Fresh entropy for this generator only: torch.seed() would reseed the global
            # generator, a side effect on the caller's own randomness.
            gen.seed()
        else:
            gen.manual_seed(self.seed)
        labels = t_t if t_t is not None else (y_t if y_t is not None else pred_clean)
        if labels is None:  # unreachable: own_clean holds when both y and target are None
            raise InternalError("no labels to attack; this is a hoodwink bug.")
        inputs = AttackInputs(
            x=xd, labels=labels, targeted=t_t is not None, eps=float(eps), y=y_t, generator=gen,
            progress=progress, x_given=x_given,
        )
        if clean_scores is not None:
            inputs.set_clean_scores(clean_scores)
        elif pred_clean is not None:
            inputs.set_pred_clean(pred_clean)
        return inputs, xt, gate

    @staticmethod
    def _probe_num_classes(model: Classifier, x: torch.Tensor) -> int | None:
        """Learn the number of classes from an empty batch: no per-sample query.

        Needed only when the model learns it from its first forward pass and the
        attack makes the clean pass itself; then a call costs the same number of
        queries the first time as every later time. None when the model cannot
        run an empty batch.
        """
        try:
            model.predict(x[:0])
            return model.num_classes
        except (HoodwinkError, RuntimeError, ValueError, IndexError):
            return None

    # ------------------------------------------------------------------ guarantees
    def _finish(
        self,
        gate: QueryGate,
        inputs: AttackInputs,
        orig: torch.Tensor,
        x_adv: torch.Tensor,
        t0: float,
        *,
        eps: float | None = None,
    ) -> AttackResult:
        x = inputs.x
        if x_adv.shape != x.shape:
            raise InternalError(
                f"{type(self).__name__} returned shape {tuple(x_adv.shape)} for inputs of "
                f"shape {tuple(x.shape)}; this is a hoodwink bug, please report it."
            )
        model = gate.model
        lo, hi = model.bounds
        if isinstance(x_adv, tuple):
            raise InternalError(
                f"{type(self).__name__}._run returned a tuple; it returns only the adversarial "
                "inputs (the query gate counts queries). This is a hoodwink bug."
            )
        x_adv = x_adv.detach().to(device=x.device, dtype=x.dtype)
        raw_adv = x_adv
        # A subclass's inf would be projected back into the ball unseen: catch it here.
        raw_bad = ~_all_finite(x_adv)
        x_adv = clip_to_bounds(x + project(x_adv - x, inputs.eps, self.norm), lo, hi)
        if model.levels is not None:
            x_adv = quantize(x, x_adv, inputs.eps, self.norm, lo, hi, model.levels)
        # Untargeted samples the model already gets wrong need no perturbation.
        if not inputs.targeted:
            already = inputs.is_adversarial(inputs.pred_clean)
            if bool(already.any()):
                # Those rows of x, copied exactly (a broadcast where() costs ~10x more).
                rows = already.nonzero()[:, 0]
                x_adv.index_copy_(0, rows, x.index_select(0, rows))  # x_adv is fresh here
        if inputs.x_given is not None:
            # A sample left at the grid point of a near-grid input comes back as the
            # caller gave it, bit for bit: eps=0 and samples already fooled never move.
            unmoved = (x_adv == x).flatten(1).all(dim=1).reshape((-1,) + (1,) * (x.ndim - 1))
            x_adv = torch.where(unmoved, inputs.x_given, x_adv)
            x = torch.where(unmoved, inputs.x_given, x)  # their norm is then exactly 0
        if orig.dtype in _LOW_PRECISION:
            # Everything below (checks, norms, the success pass) is about the tensor
            # returned, so the cast to the input dtype comes first, rounding towards x.
            x_adv = _round_towards(x_adv, x, orig.dtype)
        pnorm = norms(x_adv - x, self.norm)
        tol = 1e-5 * max(1.0, inputs.eps) + 1e-6
        # One sync for all checks; written as "not inside" so that NaN fails them.
        numbers = scalar_bounds(lo, hi)
        if numbers is not None and x_adv.numel() > 0:
            # Its least and largest values against the bounds as numbers (in x_adv's dtype);
            # NaN propagates into both.
            mn, mx = torch.aminmax(x_adv)
            inside = (mn >= numbers[0]) & (mx <= numbers[1])
        else:
            inside = ((x_adv >= lo) & (x_adv <= hi)).all()
        if bool(raw_bad | ~(pnorm <= inputs.eps + tol).all() | ~inside):
            raise InternalError(
                f"{type(self).__name__} produced a result outside the eps-ball or the bounds, "
                f"or not finite (max norm {pnorm.max().item():.6g} for eps "
                f"{inputs.eps:.6g}); this is a hoodwink bug, please report it."
            )
        with gate.verifying():
            pred_adv = gate.predict(x_adv)
        # Against inputs.x, the point the clean pass saw (x may be the caller's off-grid copy).
        self._check_determinism(inputs, inputs.x, x_adv, raw_adv, pred_adv)
        queries = gate.used
        success = inputs.is_adversarial(pred_adv)
        y_t = inputs.y
        clean_correct = (
            inputs.pred_clean == y_t if y_t is not None
            else torch.zeros_like(success)
        )
        out_dev = orig.device
        result = AttackResult(
            x_adv=x_adv.to(device=out_dev, dtype=orig.dtype),  # exact: checked above
            success=success.to(out_dev),
            clean_correct=clean_correct.to(out_dev),
            pred_clean=inputs.pred_clean.to(out_dev),
            pred_adv=pred_adv.to(out_dev),
            perturbation_norm=pnorm.to(out_dev),
            queries=queries.to(out_dev),  # the gate's count: the base class's passes included
            y=y_t.to(out_dev) if y_t is not None else None,
            target=inputs.labels.to(out_dev) if inputs.targeted else None,
            eps=inputs.eps if eps is None else eps,
            norm=self.norm,
            attack=repr(self),
            seed=self.seed,
            time_s=time.perf_counter() - t0,
        )
        return result

    def _check_determinism(self, inputs: AttackInputs, x: torch.Tensor, x_adv: torch.Tensor,
                           raw_adv: torch.Tensor, pred_adv: torch.Tensor) -> None:
        """Warn when the verification pass disagrees with an earlier answer at the same input.

        Two free comparisons: samples returned at ``x`` itself against the clean
        pass, and points the attack reported with :meth:`AttackInputs.expect`
        (where the guarantees left them unchanged) against what it saw there.
        """
        n = x.shape[0]
        same_x = (x_adv == x).reshape(n, -1).all(dim=1)
        disagree = same_x & (pred_adv != inputs.pred_clean)
        if inputs._expected:
            pts, seen = inputs._expected[0]
            if pts.shape == x_adv.shape:
                kept = (x_adv == pts.to(x_adv.dtype)).reshape(n, -1).all(dim=1)
                kept &= (raw_adv == pts.to(raw_adv.dtype)).reshape(n, -1).all(dim=1)
                disagree |= kept & (pred_adv != seen.to(pred_adv.device))
        if bool(disagree.any()):
            k = int(disagree.sum())
            warnings.warn(
                f"The model gave different answers for the same input on {k} of {n} "
                "sample(s): it is stochastic (random noise, dropout, a model that changes "
                "between calls). Success rates against it vary from call to call; fix its "
                "randomness (eval mode, a seed) or judge results over several calls.",
                StochasticModelWarning,
                stacklevel=4,
            )

    def replace(self, **changes: Any) -> Attack:
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class GradientAttack(Attack):
    """Base class of white-box attacks that need loss gradients."""

    threat: ClassVar[Threat] = "white-box"
    needs_gradients: ClassVar[bool] = True


def resolve_inner_attack(
    owner: str,
    attack: Any,
    norm: Any,
    norms: Sequence[str],
    default: Callable[[NormName], GradientAttack],
) -> tuple[GradientAttack, NormName]:
    """The gradient attack an attack runs inside, and the norm both use.

    ``norm`` wins when given (the inner attack is re-made in it, if it has it);
    else the inner attack's norm; else L∞. ``attack=None`` gives ``default(norm)``.

    Raises
    ------
    ConfigError
        ``attack`` is not a gradient attack, ``norm`` is not one of ``norms``, or
        the inner attack cannot run in ``norm``.
    """
    inner = check(owner, "attack", attack,
                  InstanceOf(GradientAttack, "a gradient attack such as PGD(steps=20)"), None)
    chosen = norm if norm is not None else (inner.norm if inner is not None else "linf")
    chosen = cast(NormName, check_choice(owner, "norm", chosen, norms))
    if inner is None:
        return default(chosen), chosen
    if inner.norm != chosen:
        if chosen not in inner.supported_norms:
            reject(owner, "norm", chosen,
                   f"one of the norms of {type(inner).__name__}: "
                   + ", ".join(repr(n) for n in inner.supported_norms))
        inner = cast(GradientAttack, inner.replace(norm=chosen))
    return inner, chosen


@dataclass(frozen=True, kw_only=True)
class BlackBoxAttack(Attack):
    """Base class of attacks that query only scores or labels, under a query budget.

    Parameters
    ----------
    max_queries : int in [2, 10**9], default 1000
        Most model calls per sample, counting the base class's clean pass
        (when it makes one) and its final verification pass. Never exceeded:
        the query gate refuses a call that would.
    seed : int >= 0 or None, default 0
        Seed of the attack's local random generator.
    """

    max_queries: int = 1000

    threat: ClassVar[Threat] = "scores"

    def __post_init__(self) -> None:
        validate_fields(self, {"max_queries": (Interval(int, 2, MAX_QUERIES),)})
        super().__post_init__()

    def _budget(self) -> int | None:
        return self.max_queries

    def _first_pass_at_x(self) -> bool:
        return True  # the attack's first query is at x and yields the clean answers

    @staticmethod
    def _clean_scores(model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        """The scores at x of every sample: from the clean pass, or one query now."""
        s = inputs.clean_scores
        if s is None:
            s = model.scores(inputs.x)
            inputs.set_clean_scores(s)
        return s

    @staticmethod
    def _clean_labels(model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        """The predictions at x of every sample: from the clean pass, or one query now."""
        if not inputs.has_pred_clean:
            inputs.set_pred_clean(model.predict(inputs.x))
        return inputs.pred_clean


_NOT_FLOAT_HINT = ("attacks work on float inputs in the model bounds. For 8-bit images use "
                   "x.float() / 255 with bounds=(0, 1) (and levels=256).")


def _from_numpy(a: np.ndarray) -> torch.Tensor:
    """The array as a tensor; a copy where torch cannot wrap it (flipped, big-endian, read-only)."""
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        hint = (_NOT_FLOAT_HINT if a.dtype.kind in "biu" else
                "attacks take arrays of float16, float32 or float64 numbers: convert it, "
                "e.g. x.astype(np.float32).")
        raise ShapeError(f"x has dtype {a.dtype}; {hint}")
    if not (a.dtype.isnative and a.flags.writeable and all(st >= 0 for st in a.strides)):
        # torch.from_numpy refuses negative strides and foreign byte order, and warns
        # about read-only memory: hand it a native, C-ordered copy instead.
        a = a.astype(a.dtype.newbyteorder("="), order="C", copy=True)
    return torch.from_numpy(a)


def _all_finite(x: torch.Tensor) -> torch.Tensor:
    """Whether every element is finite, as a 0-d bool tensor.

    From the least and largest values (NaN propagates into both, an infinity is
    one of them): a float reduction, ~15x faster than ``isfinite(x).all()``.
    """
    if x.numel() == 0:
        return torch.ones((), dtype=torch.bool, device=x.device)
    return torch.isfinite(torch.stack(torch.aminmax(x))).all()


def _as_input(x: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """The validated input tensor and its least and largest values (None when empty)."""
    if isinstance(x, np.ndarray):
        x = _from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"x must be a torch.Tensor or numpy array of shape (N, ...); got {type(x).__name__}."
        )
    if x.layout != torch.strided:
        raise InputError(f"x is a {x.layout} tensor; attacks take dense tensors: x.to_dense().")
    if x.device.type == "meta":
        raise InputError(
            "x is on the meta device, which holds no values; pass a tensor with data "
            "(on the CPU or a GPU)."
        )
    if x.ndim < 2:
        raise ShapeError(
            f"x has shape {tuple(x.shape)}; attacks take a batch of shape (N, ...). For one "
            "input use x[None]."
        )
    if x.shape[0] == 0:
        raise InputError("x is an empty batch (N = 0); pass at least one input.")
    if not torch.is_floating_point(x) or x.dtype.itemsize > 8:
        raise ShapeError(f"x has dtype {x.dtype}; {_NOT_FLOAT_HINT}")
    if x.numel() == 0:  # no features: nothing to check
        return x, None
    lo, hi = torch.aminmax(x)  # NaN propagates into both; an infinity is one of them
    if not bool(torch.isfinite(torch.stack((lo, hi))).all()):
        raise InputError("x contains NaN or infinite values; attacks need finite inputs.")
    return x, (lo, hi)


def _check_bounds_shape(lo: torch.Tensor, hi: torch.Tensor, x: torch.Tensor) -> None:
    """Bounds must broadcast to ONE input: a leading batch dimension would multiply results."""
    one = tuple(x.shape[1:])
    for b in (lo, hi):
        try:
            ok = tuple(np.broadcast_shapes(tuple(b.shape), one)) == one
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(
                f"The model bounds have shape {tuple(b.shape)}, which does not broadcast to "
                f"one input of shape {one} (x has shape {tuple(x.shape)}). Bounds are a "
                "float or an array shaped like one input, without a batch dimension; "
                "check x's shape, or the bounds given to the model."
            )


def _diameter(lo: torch.Tensor, hi: torch.Tensor, x: torch.Tensor, norm: str) -> float:
    """The largest ``norm`` distance between two points of the input box, in float64."""
    span = (hi.double() - lo.double()).expand(x.shape[1:]).reshape(1, -1)
    return float(norms(span, norm).item())  # type: ignore[arg-type]


def _finite_cap(dtype: torch.dtype) -> float:
    """A magnitude far enough below the dtype's largest float that sums of a few stay finite."""
    return float(torch.finfo(dtype).max) * 2.0**-40


def _round_towards(v: torch.Tensor, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``v`` cast to ``dtype``, rounded towards ``x`` (exact in ``dtype``), back in v's dtype.

    Each coordinate of the result lies between ``x`` and ``v`` (inclusive), so
    every norm of ``result - x`` is at most that of ``v - x``, and bounds that
    hold for both still hold.
    """
    c = v.to(dtype)
    x64 = x.double()
    over = (c.double() - x64).abs() > (v.double() - x64).abs()
    c = torch.where(over, torch.nextafter(c, x.to(dtype)), c)
    return c.to(v.dtype)


def _budgets(owner: str, eps: Any) -> list[float]:
    """The budgets of a sweep: a flat sequence of real numbers, each a valid eps."""
    flat = (isinstance(eps, Sequence) and not isinstance(eps, str | bytes | bytearray | memoryview)
            or isinstance(eps, np.ndarray) and eps.ndim == 1)
    if flat:  # not nested
        flat = not any(isinstance(e, Sequence | np.ndarray | torch.Tensor)
                       and not isinstance(e, str) for e in eps)
    if not flat:
        raise ConfigError(
            f"sweep() takes a list of budgets, e.g. eps=[1/255, 2/255, 4/255]. Got {eps!r}."
        )
    if len(eps) == 0:
        raise ConfigError("sweep() needs at least one budget in eps, e.g. eps=[8/255].")
    return [check_real(owner, "eps", e, low=0) for e in eps]


_UNSIGNED = tuple(getattr(torch, f"uint{b}") for b in (16, 32, 64) if hasattr(torch, f"uint{b}"))


def _as_labels(v: Any, n: int, c: int, name: str, device: torch.device) -> torch.Tensor:
    def outside(bad: Any) -> InputError:
        return InputError(f"{name} contains {bad}, outside the model's classes 0..{c - 1}.")

    if is_int(v):  # one class for every sample; any size of int is checked before use
        if not 0 <= int(v) < c:
            raise outside(int(v))
        return torch.full((n,), int(v), dtype=torch.int64, device=device)
    if isinstance(v, torch.Tensor):
        if v.device.type == "meta":
            raise InputError(f"{name} is on the meta device, which holds no values.")
        if v.dtype in _UNSIGNED:  # wide unsigned ints would wrap in int64: check them in numpy
            v = v.detach().cpu().numpy()
    if isinstance(v, torch.Tensor):
        t = v.detach()
        bad_kind = t.is_floating_point() or t.dtype == torch.bool or t.is_complex()
        kind = str(t.dtype)
    else:
        try:
            a = np.asarray(v)
        except (TypeError, ValueError) as exc:  # ragged lists
            raise ShapeError(f"{name} must be an int tensor of shape ({n},); got {v!r}.") from exc
        if a.dtype == object and a.ndim == 1 and all(is_int(e) for e in a.tolist()):
            big = [int(e) for e in a.tolist() if not 0 <= int(e) < c]  # ints beyond int64
            if big:
                raise outside(big[0])
            a = a.astype(np.int64)
        bad_kind = a.dtype.kind not in "iu"
        kind = str(a.dtype)
    if bad_kind:
        raise ShapeError(
            f"{name} has dtype {kind}; labels must be integers (class indices), "
            f"e.g. {name}.long()."
        )
    shape = tuple(t.shape) if isinstance(v, torch.Tensor) else a.shape
    if shape != (n,):
        raise ShapeError(
            f"{name} has shape {shape} but x has {n} samples; {name} must have shape ({n},)."
        )
    if not isinstance(v, torch.Tensor):
        out_np = (a < 0) | (a >= c)  # in the array's own dtype: uint64 cannot wrap
        if bool(out_np.any()):
            raise outside(int(a[out_np][0]))
        t = torch.from_numpy(a.astype(np.int64))
    t = t.to(torch.int64)
    if bool(((t < 0) | (t >= c)).any()):
        raise outside(int(t[(t < 0) | (t >= c)][0].item()))
    return t.to(device)


def _model_device(model: Classifier, x: torch.Tensor) -> torch.device:
    dev = getattr(model, "device", None)
    return dev if isinstance(dev, torch.device) else x.device
