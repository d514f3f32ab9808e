"""HopSkipJump (Chen, Jordan and Wainwright, IEEE S&P 2020): minimum-norm, from labels only.

Also home of the machinery the label-only attacks share (:class:`_Tracker`):
the snapping of every queried point onto the model's grid, the record of the
smallest adversarial point seen per sample, the search for an adversarial
start and the batched binary search towards ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from hoodwink._validation import Boolean, Interval
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks._norms import NormName, clip_to_bounds, norms, snap_point
from hoodwink.attacks.base import AttackInputs, BlackBoxAttack, Threat

__all__ = ["MAX_EVALS", "MAX_PROBE_SCALE", "HopSkipJump"]

#: Largest ``init_evals`` and ``max_evals``.
MAX_EVALS = 10**7
#: Largest ``probe_scale``.
MAX_PROBE_SCALE = 64
#: Most random draws per sample while looking for an adversarial start (the paper's
#: reference code gives up at 10,000 as well).
_MAX_START_DRAWS = 10_000
#: Uniform draws tried before the batch's own inputs are (see HopSkipJump's batch_starts).
_FIRST_DRAWS = 20
#: Most halvings of the geometric step-size search; after 25 the step is below
#: float32 resolution relative to the distance, so the point is where it was.
_MAX_HALVINGS = 25
#: Fewest probes worth a gradient estimate in the last, budget-shortened iteration.
_MIN_EVALS = 10
#: Probe elements (rows x features) per model call: 2**23 float32 values are 32 MiB.
_CHUNK_ELEMENTS = 2**23


def _bshape(n: int, ndim: int) -> tuple[int, ...]:
    return (n,) + (1,) * (ndim - 1)


class _Tracker:
    """The state every label-only attack keeps: queries through the gate, best points.

    Every point handed to :meth:`query` is first clipped to the bounds and
    snapped to the model's grid (when it has ``levels``) by :meth:`snap`, so the
    label seen is the label of the point that may be returned. Each adversarial
    point queried is compared with the sample's best so far, in the attack's
    norm; :attr:`best` is the smallest adversarial point seen (``x`` while there
    is none).
    """

    def __init__(self, gate: QueryGate, inputs: AttackInputs, norm: NormName,
                 report: Callable[[str], None] | None = None) -> None:
        self.gate = gate
        self.inputs = inputs
        self.norm = norm
        self.x = inputs.x
        self.n = self.x.shape[0]
        self.shape = tuple(self.x.shape[1:])
        self.d = max(1, math.prod(self.shape))
        self.device = self.x.device
        self.dtype = self.x.dtype
        lo, hi = gate.bounds
        self.lo = lo.to(device=self.device, dtype=self.dtype)
        self.hi = hi.to(device=self.device, dtype=self.dtype)
        self.levels = gate.levels
        span = self.hi - self.lo
        self.span = float(span.max()) if span.numel() else 0.0
        self.grid_step = self.span / (self.levels - 1) if self.levels else 0.0
        self.best = self.x.clone()
        self.best_norm = torch.full((self.n,), math.inf, dtype=self.dtype, device=self.device)
        self.best_pred = inputs.pred_clean.clone()
        self.found = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        self._report = report
        # One random stream per sample, seeded from the attack's generator: what a
        # sample draws never depends on how many draws the others made.
        self._base_seed = int(torch.randint(0, 2**62, (1,), generator=inputs.generator))
        self._gens: dict[int, torch.Generator] = {}

    # ------------------------------------------------------------------ randomness
    def _gen(self, i: int) -> torch.Generator:
        g = self._gens.get(i)
        if g is None:
            g = torch.Generator()
            g.manual_seed((self._base_seed + i * 0x9E3779B97F4A7C15) % 2**63)
            self._gens[i] = g
        return g

    def draw(self, rows: torch.Tensor, shape: tuple[int, ...], kind: str) -> torch.Tensor:
        """Random tensors ``(len(rows),) + shape`` on x's device and dtype, row by row
        from the stream of the row's sample: ``"normal"`` (standard Gaussian),
        ``"uniform"`` ([0, 1)) or ``"sign"`` (uniform in [-1, 1)). Drawn on the CPU.
        """
        owners, counts = torch.unique_consecutive(rows.cpu(), return_counts=True)
        parts = []
        for i, c in zip(owners.tolist(), counts.tolist(), strict=True):
            g = self._gen(i)
            if kind == "normal":
                parts.append(torch.randn((c,) + shape, generator=g))
            else:
                parts.append(torch.rand((c,) + shape, generator=g))
        out = torch.cat(parts) if parts else torch.empty((0,) + shape)
        if kind == "sign":
            out = out * 2 - 1
        return out.to(self.device, self.dtype)

    # ------------------------------------------------------------------ points
    def snap(self, p: torch.Tensor) -> torch.Tensor:
        """``p`` clipped to the bounds and, on a grid, rounded to the nearest grid point."""
        p = clip_to_bounds(p, self.lo, self.hi)
        if self.levels:
            p = snap_point(p, self.lo, self.hi, self.levels)
        return p

    def snap_random(self, p: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``p`` clipped and, on a grid, rounded up or down at random (unbiased).

        A step much smaller than the grid still moves a few features by one grid
        step each, with the right expectation, where rounding to the nearest
        point would erase it.
        """
        p = clip_to_bounds(p, self.lo, self.hi)
        if not self.levels:
            return p
        step = (self.hi - self.lo) / (self.levels - 1)
        u = self.draw(rows, self.shape, "uniform")
        k = torch.floor((p - self.lo) / step + u)
        return snap_point(self.lo + k * step, self.lo, self.hi, self.levels)

    def dist(self, p: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Norm of ``p - x[rows]`` per row, in the attack's norm."""
        return norms(p - self.x[rows], self.norm)

    # ------------------------------------------------------------------ queries
    def query(self, p: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Labels of the (already snapped) points ``p`` of samples ``rows``: adversarial, bool.

        One gate call, one query per row; the caller checks the budget first.
        """
        pred = self.gate.predict(p, rows)
        adv = self.inputs.is_adversarial(pred, rows)
        self._record(p, rows, pred, adv)
        if self._report is not None:
            self._report("")
        return adv

    def _record(self, p: torch.Tensor, rows: torch.Tensor, pred: torch.Tensor,
                adv: torch.Tensor) -> None:
        if not bool(adv.any()):
            return
        r, pa = rows[adv], p[adv]
        dist = self.dist(pa, r)
        least = torch.full((self.n,), math.inf, dtype=dist.dtype, device=self.device)
        least = least.scatter_reduce(0, r, dist, "amin")
        hit = (dist == least[r]) & (dist < self.best_norm[r])
        if not bool(hit.any()):
            return
        pos = hit.nonzero()[:, 0]
        r2 = r[pos]
        # The first of equally near points of a sample: one write per sample.
        uniq, inv = torch.unique(r2, return_inverse=True)
        first = torch.full((uniq.shape[0],), pos.shape[0], dtype=torch.int64, device=self.device)
        first = first.scatter_reduce(0, inv, torch.arange(pos.shape[0], device=self.device),
                                     "amin")
        keep = pos[first]
        self.best[uniq] = pa[keep]
        self.best_norm[uniq] = dist[keep]
        self.best_pred[uniq] = pred[adv][keep]
        self.found[uniq] = True

    def at_x(self) -> torch.Tensor:
        """Mark the samples adversarial at ``x`` itself (norm 0); return that mask."""
        adv = self.inputs.is_adversarial(self.inputs.pred_clean)
        self.best_norm[adv] = 0
        self.found |= adv
        return adv

    def result(self) -> torch.Tensor:
        """The best point per sample (``x`` where none was found), reported to the base class."""
        self.inputs.expect(self.best, self.best_pred)
        return self.best

    # ------------------------------------------------------------------ starts
    def starts(self, idx: torch.Tensor, batch: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Adversarial start points for samples ``idx``: noise, then the batch, then noise.

        Up to 20 uniform draws (:meth:`find_starts`); for the samples still
        without a start, with ``batch``, the nearest other input adversarial for
        them (:meth:`batch_starts`, no query); for the rest, more draws.

        Returns
        -------
        found : torch.Tensor, bool (len(idx),)
        starts : torch.Tensor (len(idx), ...)
        """
        found, starts = self.find_starts(idx, _FIRST_DRAWS)
        for stage in ("batch", "noise"):
            rest = (~found).nonzero()[:, 0]
            if rest.numel() == 0 or (stage == "batch" and not batch):
                continue
            if stage == "batch":
                f2, s2 = self.batch_starts(idx[rest])
            else:
                f2, s2 = self.find_starts(idx[rest], _MAX_START_DRAWS - _FIRST_DRAWS)
            found[rest], starts[rest] = f2, s2
        return found, starts

    def find_starts(self, idx: torch.Tensor, draws: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Adversarial points for samples ``idx`` from uniform noise in the bounds.

        Draws a fresh uniform point per sample and round (one query each) until
        it is adversarial (classified as the target, for a targeted attack), the
        sample's budget runs out, or after ``draws`` draws.

        Returns
        -------
        found : torch.Tensor, bool (len(idx),)
        starts : torch.Tensor (len(idx), ...)
            The adversarial draw where found, else ``x``.
        """
        starts = self.x[idx].clone()
        found = torch.zeros(idx.shape[0], dtype=torch.bool, device=self.device)
        pos = torch.arange(idx.shape[0], device=self.device)
        for _ in range(draws):
            pos = pos[self.gate.can_query(idx[pos])]
            if pos.numel() == 0:
                break
            u = self.draw(idx[pos], self.shape, "uniform")
            u = self.snap(self.lo + (self.hi - self.lo) * u)
            adv = self.query(u, idx[pos])
            hit = pos[adv]
            starts[hit] = u[adv]
            found[hit] = True
            pos = pos[~adv]
        return found, starts

    def batch_starts(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The nearest other input of the batch that is adversarial for each sample ``idx``.

        Another input ``x_j`` is adversarial for sample ``i`` when its clean
        prediction (known from the clean pass: no query) differs from ``i``'s
        label, or is ``i``'s target. Distances in the attack's norm. The
        starts found count as adversarial points seen (:attr:`best`).

        Returns
        -------
        found : torch.Tensor, bool (len(idx),)
        starts : torch.Tensor (len(idx), ...)
            The nearest such input where found, else ``x``.
        """
        xs = self.x.reshape(self.n, -1)
        pc = self.inputs.pred_clean
        p = math.inf if self.norm == "linf" else 2.0
        rows = max(1, 2**22 // max(self.n, 1))
        near = []
        dists = []
        for start in range(0, idx.shape[0], rows):
            part = idx[start:start + rows]
            dm = torch.cdist(xs[part].float(), xs.float(), p=p)
            lab = self.inputs.labels[part][:, None]
            ok = pc[None, :] == lab if self.inputs.targeted else pc[None, :] != lab
            dm = torch.where(ok, dm, torch.full_like(dm, math.inf))
            dmin, j = dm.min(dim=1)
            near.append(j)
            dists.append(dmin)
        j = torch.cat(near)
        found = torch.isfinite(torch.cat(dists))
        starts = torch.where(found.reshape(_bshape(idx.shape[0], self.x.ndim)),
                             self.x[j], self.x[idx])
        # Their labels were seen (in the clean pass): they count as adversarial points seen.
        self._record(starts, idx, pc[j], found)
        return found, starts

    # ------------------------------------------------------------------ binary search
    def bisect(self, idx: torch.Tensor, far: torch.Tensor, rel_tol: float) -> torch.Tensor:
        """Binary search from the adversarial points ``far`` of samples ``idx`` towards ``x``.

        L2: along the segment from ``x`` to ``far``, in blend factors in [0, 1]
        (Chen et al.'s projection ``(1 - a) x + a far``). L∞: over the radius a in
        [0, ‖far - x‖∞] of ``x + clip(far - x, -a, a)``. The search stops when the
        bracket is at most ``rel_tol`` of its first width, when a sample's budget
        runs out, or, on a grid, when the midpoint is the grid point of an end
        (no query is spent on a point already known). One gate call per round
        over every sample still searching.

        Returns the adversarial end of each bracket, snapped: the point nearest
        to ``x`` known to be adversarial along the path.
        """
        x = self.x[idx]
        m = idx.shape[0]
        dev, dt = self.device, self.dtype
        delta = far - x
        linf = self.norm == "linf"
        high = norms(delta, "linf") if linf else torch.ones(m, dtype=dt, device=dev)
        low = torch.zeros(m, dtype=dt, device=dev)
        tol = high * rel_tol
        hi_pt = far.clone()
        lo_pt = x.clone()
        while True:
            sel = ((high - low) > tol) & self.gate.can_query(idx)
            if not bool(sel.any()):
                break
            pos = sel.nonzero()[:, 0]
            mid = (low[pos] + high[pos]) / 2
            mb = mid.reshape(_bshape(pos.shape[0], x.ndim))
            if linf:
                p = x[pos] + torch.maximum(torch.minimum(delta[pos], mb), -mb)
            else:
                p = x[pos] + mb * delta[pos]
            p = self.snap(p)
            ask = torch.ones(pos.shape[0], dtype=torch.bool, device=dev)
            adv = torch.zeros(pos.shape[0], dtype=torch.bool, device=dev)
            if self.levels:
                # On a grid the midpoint may be an end's own point: its label is known.
                same_hi = (p == hi_pt[pos]).flatten(1).all(dim=1)
                same_lo = (p == lo_pt[pos]).flatten(1).all(dim=1)
                adv |= same_hi
                ask &= ~(same_hi | same_lo)
            if bool(ask.any()):
                q = ask.nonzero()[:, 0]
                adv[q] = self.query(p[q], idx[pos[q]])
            up = pos[adv]
            down = pos[~adv]
            high[up] = mid[adv]
            hi_pt[up] = p[adv]
            low[down] = mid[~adv]
            lo_pt[down] = p[~adv]
        return hi_pt


def _probe_noise(tr: _Tracker, rows: torch.Tensor, norm: str, scale: int) -> torch.Tensor:
    """Random probe directions (not normalised) for the samples ``rows``, one per row.

    Gaussian (L2) or uniform in [-1, 1] (L∞), as Chen et al. With ``scale > 1``
    and an image-like shape (C, H, W), drawn at ``ceil(H/scale) x ceil(W/scale)``
    and resized up bilinearly: low-frequency probes.
    """
    shape = tr.shape
    kind = "normal" if norm == "l2" else "sign"
    if scale > 1 and len(shape) == 3 and min(shape[1:]) >= 2 * scale:
        small = (shape[0], -(-shape[1] // scale), -(-shape[2] // scale))
        z = tr.draw(rows, small, kind)
        return torch.nn.functional.interpolate(z, size=shape[1:], mode="bilinear",
                                               align_corners=False)
    return tr.draw(rows, shape, kind)


def _rounds(rel_tol: float, levels: int | None) -> int:
    """Queries a binary search to ``rel_tol`` takes (fewer on a grid of ``levels``)."""
    k = math.ceil(math.log2(1 / rel_tol)) if rel_tol < 1 else 0
    if levels:
        k = min(k, math.ceil(math.log2(max(levels - 1, 1))) + 2)
    return k


@dataclass(frozen=True, kw_only=True)
class HopSkipJump(BlackBoxAttack):
    """HopSkipJump (Chen, Jordan and Wainwright, "HopSkipJumpAttack: A
    Query-Efficient Decision-Based Attack", IEEE S&P 2020): the smallest
    perturbation that changes the label, from the predicted labels alone.

    Algorithm (Chen et al., Algorithm 2). Start from an adversarial point and
    binary-search along the segment to ``x`` for the decision boundary. Then
    repeat, at iteration t = 1, 2, ...:

    1. *Gradient direction at the boundary* (their eq. 9): query
       ``init_evals * sqrt(t)`` points (at most ``max_evals``) ``x_b + δ u``
       around the boundary point ``x_b``, ``u`` uniform on the L2 unit
       sphere (L2) or uniform in the cube, normalised (L∞); average
       ``(φ(u) - mean φ) u`` over them, φ = +1 where adversarial, -1 elsewhere
       (the baseline they subtract to cut the variance). ``δ`` is
       ``0.1 * (upper - lower)`` at t = 1, then ``sqrt(d) θ ‖x_b - x‖₂`` (L2) or
       ``d θ ‖x_b - x‖∞`` (L∞), with d the number of features and the binary
       search threshold ``θ = gamma / d^(3/2)`` (L2) or ``gamma / d²`` (L∞)
       (their section 4.1 and Theorem 2). One departure, for images: in the
       first ``coarse_iterations`` iterations the noise is drawn at
       ``1/probe_scale`` of the resolution and resized up bilinearly (the
       low-frequency probes of Li et al., "QEBA", CVPR 2020), which finds
       the rough direction with fewer queries; later iterations use the
       paper's full-resolution noise, which the final, fine perturbation
       needs. A second departure: the direction stepped along is the new
       estimate plus ``momentum`` times the last direction (both unit
       length), which averages out some of the estimate's noise while the
       boundary point moves little. ``probe_scale=1, momentum=0`` is the
       paper's algorithm.
    2. *Geometric step-size search*: step along the direction (its sign for
       L∞) by ``ξ = ‖x_b - x‖ / sqrt(t)``, halving ξ until the point is
       adversarial.
    3. *Binary search* from that point back towards ``x``: along the segment
       (L2) or over the radius of the L∞ box around ``x`` (L∞), to a bracket of
       ``θ`` (relative). The adversarial end is the new ``x_b``.

    Every adversarial point queried is kept if it is the nearest so far, and
    the nearest is returned: this is a minimum-norm attack, which keeps
    shrinking the perturbation until its query budget is spent (unless
    ``stop_at_eps``). ``eps`` is the largest norm that counts as a success:
    the base class projects the result onto the eps-ball and judges it again,
    so a point found beyond ``eps`` is a failure; pass a large ``eps`` (the
    diameter of the input box) to learn the norm reached.

    Starting point. Uniform noise in the bounds, one query per draw, redrawn
    until adversarial (targeted: until the model calls it the target), as
    Chen et al. do. Models often call all noise one class (an MNIST ConvNet
    calls it "8"), so after 20 draws a sample without a start takes, with
    ``batch_starts``, the nearest other input of the batch that the model
    classifies adversarially for it (its label is known from the clean pass:
    no query), and otherwise draws on. A sample whose budget runs out first
    (or that needs over 10,000 draws) has no start, fails and is returned at
    ``x``. A start then costs one binary search, ``ceil(log2(1/θ))`` queries
    (15 for d = 784 in L2, fewer on a grid). Samples adversarial at ``x``
    (misclassified, or already the target) are returned at ``x`` at once.

    Query cost. Per sample: one query at ``x`` (shared with the base class's
    clean pass), the start (above), then per iteration t the gradient probes
    ``min(int(init_evals * sqrt(t)), max_evals)``, one query per step-size
    trial (usually 1-3) and one binary search; plus the base class's
    verification query. Every round is one batched model call over all
    active samples (probes in calls of at most 2**23 elements), never a call
    per sample.

    Anytime schedule. Every schedule (probes per iteration and their
    resolution, δ, ξ) depends on the iteration number and the distance
    reached only, never on ``max_queries``, and each sample draws from a
    random stream of its own: a run with ``max_queries=B`` makes, per sample,
    the queries of a run with a larger budget (same seed and batch) up to its
    last iteration, which is shortened to what the budget still affords (the
    gradient estimate gets fewer probes, so the step and the binary search
    still fit).

    Grid. When the model has quantisation ``levels``, every queried point is
    snapped to the grid (so the label seen is the label of the point that
    may be returned), a binary search stops when its midpoint is an end's grid
    point, and δ is at least ``sqrt(d)/2`` grid steps, so that the probes are not
    rounded away.

    Threat model: black box, predicted labels only (models that give scores
    work too); untargeted or targeted; L2 or L∞.

    Parameters
    ----------
    norm : {"l2", "linf"}, default "l2"
        The norm minimised.
    init_evals : int in [1, 10**7], default 100
        Gradient probes in the first iteration; iteration t uses
        ``init_evals * sqrt(t)``.
    max_evals : int in [1, 10**7], default 10_000
        Most gradient probes in one iteration; at least ``init_evals``.
    probe_scale : int in [1, 64], default 2
        Downsampling factor of the noise in the first ``coarse_iterations``
        iterations, for inputs shaped (C, H, W) with H, W >= 2 * probe_scale
        (other inputs always get full-resolution noise); 1 for none.
    coarse_iterations : int >= 1, default 4
        How many first iterations draw low-resolution noise.
    momentum : float in [0, 1), default 0.3
        Weight of the last direction in the next one; 0 for none.
    gamma : float > 0, default 1.0
        Scale of the binary search threshold θ and of δ (Chen et al.'s γ).
        θ is made for images (d in the thousands); for a handful of features
        (θ = 0.35 at d = 2) a smaller gamma gives much finer searches.
    batch_starts : bool, default True
        Start from the batch's nearest adversarial input when 20 noise draws
        find no start (see above). False keeps each sample's result
        independent of the rest of the batch.
    stop_at_eps : bool, default False
        Stop a sample as soon as an adversarial point within ``eps`` is found,
        which saves queries at a fixed budget; by default every sample keeps
        shrinking its perturbation until its queries are spent.
    max_queries : int in [2, 10**9], default 1000
        Most model calls per sample, everything included (see
        :class:`~hoodwink.attacks.base.BlackBoxAttack`). Never exceeded.
    seed : int >= 0 or None, default 0
        Seed of the attack's random generator (noise draws, probes).

    Examples
    --------
    A linear model whose class 1 starts where ``x0 + x1 = 1``: the nearest
    point of class 1 to (0.2, 0.3) is ``0.5 / sqrt(2) = 0.354`` away in L2.

    >>> import torch, hoodwink
    >>> from hoodwink.attacks.hopskipjump import HopSkipJump
    >>> net = torch.nn.Linear(2, 2).eval()
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[0., 0.], [1., 1.]]))
    ...     _ = net.bias.copy_(torch.tensor([0., -1.]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(0, 1))
    >>> x = torch.tensor([[0.2, 0.3]])
    >>> attack = HopSkipJump(max_queries=1000, gamma=0.01)  # a small gamma suits tiny d
    >>> r = attack(model, x, torch.tensor([0]), eps=1.0)
    >>> bool(r.success[0]), abs(float(r.perturbation_norm[0]) - 0.3536) < 0.002
    (True, True)
    >>> int(r.queries[0]) <= 1000  # the verification pass included
    True
    """

    norm: NormName = "l2"
    init_evals: int = 100
    max_evals: int = 10_000
    gamma: float = 1.0
    batch_starts: bool = True
    probe_scale: int = 2
    coarse_iterations: int = 4
    momentum: float = 0.3
    stop_at_eps: bool = False

    threat: ClassVar[Threat] = "labels"
    supported_norms: ClassVar[tuple[str, ...]] = ("l2", "linf")
    supports_targeted: ClassVar[bool] = True
    #: It looks for the smallest adversarial perturbation; eps bounds what counts.
    minimum_norm: ClassVar[bool] = True

    _constraints = {
        "probe_scale": (Interval(int, 1, MAX_PROBE_SCALE),),
        "coarse_iterations": (Interval(int, 1, None),),
        "momentum": (Interval(float, 0, 1, closed="left"),),
        "init_evals": (Interval(int, 1, MAX_EVALS),),
        "max_evals": (Interval(int, 1, MAX_EVALS),),
        "gamma": (Interval(float, 0, None, closed="neither"),),
        "stop_at_eps": (Boolean(),),
        "batch_starts": (Boolean(),),
    }

    def _validate(self) -> None:
        self._check("max_evals", self.max_evals >= self.init_evals,
                    f"an int >= init_evals ({self.init_evals})")

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        self._clean_labels(model, inputs)
        report = inputs.progress
        total = self.max_queries

        def tell(msg: str) -> None:
            if report is not None:
                report(min(int(model.used.max()), total - 1), total, msg)

        tr = _Tracker(model, inputs, self.norm, tell if report is not None else None)
        done = tr.at_x()
        if inputs.eps == 0:  # nothing but x fits in the ball
            done[:] = True
        d = tr.d
        theta = self.gamma / (d ** 1.5 if self.norm == "l2" else d ** 2)
        reserve = _rounds(theta, tr.levels) + 2  # the step search and binary search after
        todo = (~done).nonzero()[:, 0]
        if todo.numel():
            found, starts = tr.starts(todo, self.batch_starts)
            todo, starts = todo[found], starts[found]
        base = tr.x.clone()
        if todo.numel():
            base[todo] = tr.bisect(todo, starts, theta)
        dist = tr.dist(base, torch.arange(tr.n, device=tr.device))
        active = torch.zeros(tr.n, dtype=torch.bool, device=tr.device)
        active[todo] = True
        # On a grid, probes smaller than about a grid step per feature round away.
        delta_floor = 0.5 * tr.grid_step * math.sqrt(d) if tr.levels else 0.0
        t = 0
        prev = torch.zeros_like(tr.x)  # the last direction (momentum)
        while True:
            if self.stop_at_eps:
                active &= ~(tr.best_norm <= inputs.eps)
            idx = (active & model.can_query(None, reserve + 1)).nonzero()[:, 0]
            if idx.numel() == 0:
                break
            t += 1
            want = min(int(self.init_evals * math.sqrt(t)), self.max_evals)
            evals = (model.remaining(idx) - reserve).clamp(max=want)
            ok = evals >= min(want, _MIN_EVALS)
            active[idx[~ok]] = False  # too few queries left for another iteration
            idx, evals = idx[ok], evals[ok]
            if idx.numel() == 0:
                break
            if t == 1:
                delta = torch.full((idx.shape[0],), 0.1 * tr.span, dtype=tr.dtype,
                                   device=tr.device)
            else:
                # sqrt(d) θ dist (L2) and d θ dist (L∞) are both gamma * dist / d.
                delta = self.gamma * dist[idx] / d
            delta = delta.clamp_min(delta_floor)
            b = base[idx]
            scale = self.probe_scale if t <= self.coarse_iterations else 1
            grad = self._gradient(tr, idx, b, evals, delta, scale)
            if self.momentum > 0:
                bs = _bshape(idx.shape[0], b.ndim)
                unit = grad / norms(grad, "l2").clamp_min(1e-30).reshape(bs)
                unit = unit + self.momentum * prev[idx]
                prev[idx] = unit / norms(unit, "l2").clamp_min(1e-30).reshape(bs)
                grad = prev[idx]
            gnorm = norms(grad, "l2")
            move = gnorm > 0
            if self.norm == "linf":
                update = grad.sign()
            else:
                update = grad / gnorm.clamp_min(1e-30).reshape(_bshape(idx.shape[0], b.ndim))
            stepped, moved = self._step_search(tr, idx, b, update, dist[idx] / math.sqrt(t), move)
            if bool(moved.any()):
                mi = idx[moved]
                base[mi] = tr.bisect(mi, stepped[moved], theta)
                dist[mi] = tr.dist(base[mi], mi)
        if report is not None:
            report(total, total, "done")
        return tr.result()

    def _gradient(self, tr: _Tracker, idx: torch.Tensor, b: torch.Tensor,
                  evals: torch.Tensor, delta: torch.Tensor, scale: int) -> torch.Tensor:
        """Chen et al.'s Monte-Carlo estimate of the boundary's normal at ``b`` (eq. 9/16).

        Sample ``i`` gets ``evals[i]`` probes ``b_i + delta_i u`` (clipped and
        snapped; ``u`` is recomputed from the point actually queried, as in the
        reference code). The probes of all samples go into as few model calls
        as memory allows, each with its rows named.
        """
        m = idx.shape[0]
        dev, dt = tr.device, tr.dtype
        flat_b = b.reshape(m, -1)
        s_frv = torch.zeros_like(flat_b)
        s_rv = torch.zeros_like(flat_b)
        s_f = torch.zeros(m, dtype=dt, device=dev)
        owner = torch.repeat_interleave(torch.arange(m, device=dev), evals.to(dev))
        rows_per_call = max(1, _CHUNK_ELEMENTS // tr.d)
        for start in range(0, owner.shape[0], rows_per_call):
            pos = owner[start:start + rows_per_call]
            k = pos.shape[0]
            u = _probe_noise(tr, idx[pos], self.norm, scale)
            u = u / norms(u, "l2").clamp_min(1e-30).reshape(_bshape(k, u.ndim))
            dl = delta[pos].reshape(_bshape(k, u.ndim))
            base = b[pos]
            p = tr.snap(base + dl * u)
            rv = ((p - base) / dl).reshape(k, -1)
            adv = tr.query(p, idx[pos])
            f = adv.to(dt) * 2 - 1
            s_frv.index_add_(0, pos, rv * f[:, None])
            s_rv.index_add_(0, pos, rv)
            s_f.index_add_(0, pos, f)
        cnt = evals.to(device=dev, dtype=dt).clamp_min(1)
        mean_f = s_f / cnt
        mean_rv = s_rv / cnt[:, None]
        # All probes on one side: their mean direction, signed (Chen et al.'s reference code).
        same = mean_f.abs() == 1
        grad = torch.where(same[:, None], mean_f[:, None] * mean_rv,
                           s_frv / cnt[:, None] - mean_f[:, None] * mean_rv)
        return grad.reshape(b.shape)

    @staticmethod
    def _step_search(tr: _Tracker, idx: torch.Tensor, b: torch.Tensor, update: torch.Tensor,
                     xi: torch.Tensor, move: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Geometric step-size search: halve ξ until ``b + ξ update`` is adversarial.

        Returns the accepted points and which samples found one (within the
        budget and 25 halvings); one gate call per round over all searching
        samples.
        """
        m = idx.shape[0]
        out = b.clone()
        moved = torch.zeros(m, dtype=torch.bool, device=tr.device)
        xi = xi.clone()
        searching = move.clone()
        for _ in range(_MAX_HALVINGS + 1):
            searching &= tr.gate.can_query(idx)
            if not bool(searching.any()):
                break
            pos = searching.nonzero()[:, 0]
            p = tr.snap(b[pos] + xi[pos].reshape(_bshape(pos.shape[0], b.ndim)) * update[pos])
            # A step that rounds back onto b itself: known adversarial, and no move.
            still = (p == b[pos]).flatten(1).all(dim=1)
            ask = ~still
            adv = torch.zeros(pos.shape[0], dtype=torch.bool, device=tr.device)
            if bool(ask.any()):
                q = ask.nonzero()[:, 0]
                adv[q] = tr.query(p[q], idx[pos[q]])
            ok = pos[adv]
            out[ok] = p[adv]
            moved[ok] = True
            searching[pos[adv | still]] = False
            xi[pos] = xi[pos] / 2
        return out, moved
