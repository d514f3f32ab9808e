"""The Square attack (Andriushchenko et al., ECCV 2020): random search over square patches."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import ClassVar, get_args

import torch

from hoodwink._validation import Interval, Options
from hoodwink.attacks._gate import QueryGate, score_loss
from hoodwink.attacks._norms import clip_to_bounds, quantize
from hoodwink.attacks.base import AttackInputs, BlackBoxAttack
from hoodwink.losses import LossName

__all__ = ["Square", "square_fraction"]

#: Iterations after which the paper halves ``p`` (its schedule for 10,000 queries).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
#: Default ``p_init`` per norm: the paper's ImageNet values.
_P_INIT = {"linf": 0.3, "l2": 0.1}


#: The number of queries the paper's size schedule is written for.
_SCHEDULE = 10_000


def square_fraction(p_init: float, iteration: int) -> float:
    """The fraction of features a square covers at ``iteration`` (0 is the first after the init).

    The paper's piecewise-constant schedule for 10,000 queries: ``p_init`` up to
    iteration 10, then halved after iterations 10, 50, 200, 500, 1000, 2000, 4000,
    6000 and 8000, and ``p_init / 512`` from there on. It depends on the
    iteration alone, never on the budget.

    >>> [square_fraction(0.8, t) for t in (0, 10, 11, 50, 51, 9000, 20000)]
    [0.8, 0.8, 0.4, 0.4, 0.2, 0.0015625, 0.0015625]
    """
    return math.ldexp(p_init, -bisect.bisect_left(_HALVINGS, iteration))


@dataclass(frozen=True, kw_only=True)
class Square(BlackBoxAttack):
    """The Square attack (Andriushchenko, Croce, Flammarion and Hein, "Square
    Attack: a query-efficient black-box adversarial attack via random search",
    ECCV 2020).

    A random search that stays at the boundary of the eps-ball. L∞: it starts
    from vertical stripes (every column of every channel at ``x ± eps``, with a
    random sign) and, at each iteration, sets one randomly placed square window
    of every channel to ``x ± eps`` (one random sign per channel); the candidate
    is kept when it raises the loss. L2: it starts from a grid of "pseudo-Gaussian"
    bumps of random signs scaled to norm ``eps``; each iteration moves the
    perturbation's mass from a second random window into a new bump pattern in
    the first, and rescales the whole perturbation to norm ``eps`` (the paper's
    L2 update). Candidates are clipped to the bounds and, when the model has
    ``levels``, snapped to its grid (:func:`~hoodwink.attacks._norms.quantize`),
    so that the point queried is the point returned: on an 8-bit grid with
    eps 0.1 the L∞ values are ``x ± 25/255``, the grid points closest to
    ``x ± eps`` inside the ball. A window is redrawn (one channel's sign
    flipped) when it would not change the current point, as in the paper's code.

    Inputs of shape (N, C, H, W) are images and windows are squares of side
    ``s = round(sqrt(p * H * W))`` (clipped to the shorter side; for L2 odd and
    at least 3). Inputs of any other shape (tabular (N, D), audio (N, T), ...)
    are treated as a one-channel 1-D image of all their features: windows are
    then runs of ``round(p * D)`` contiguous features, the L∞ stripes are a
    random sign per feature, and the L2 bumps are 1-D.

    The fraction ``p`` follows the paper's piecewise-constant schedule, written
    for 10,000 iterations (:func:`square_fraction`: halved after iterations
    10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000) and laid out over
    ``schedule_queries`` iterations. By default (None) that is ``max_queries``,
    as in the paper's own code: the windows shrink in step with the budget.
    With a fixed ``schedule_queries`` (e.g. 10,000) the schedule depends on the
    iteration only, never on ``max_queries``, so the attack is *anytime*: with
    the same seed, a run with ``max_queries=B`` makes exactly the first ``B``
    queries of a run with a larger budget, and a success-against-budget curve
    can be read off one long run (``hoodwink forests`` does this).

    Threat model: scores (logits or probabilities; never gradients), untargeted
    or targeted, L∞ or L2 ball of radius ``eps``.

    Cost: one query per sample at ``x`` (the clean pass), one at the
    initialisation, then one per iteration for every sample still not
    adversarial, all samples in one batched call per iteration; a sample stops
    at its first adversarial point. Plus the base class's verification pass:
    at most ``max_queries`` in all. Samples already adversarial at ``x`` are
    returned unchanged; the others at their first adversarial point, else at the
    queried point of highest loss (``x`` itself if the search never beat it).

    Parameters
    ----------
    norm : {"linf", "l2"}, default "linf"
    p_init : float in (0, 1] or None, default None
        Fraction of the features a window covers at the start. None uses 0.1
        for L2 (the paper's value) and 0.3 for L∞, chosen by measurement on the
        bundled MNIST ConvNet (100 digits, 1,000 queries, two seeds, the
        schedule fitted to the budget): 0.3 left as few digits unfooled as
        any of 0.1, 0.2, 0.5 and 0.8 at eps 0.1 and 0.2, with as few queries;
        on the bundled photos (eps 0.05) it needed fewer queries than the
        paper's ImageNet value, 0.05.
    loss : {"margin", "ce"}, default "margin"
        What the search maximises: the logit margin (positive once
        adversarial) or the cross-entropy (of the target, negated, when
        targeted). The paper uses the margin untargeted and the cross-entropy
        targeted. Probabilities are compared as log-probabilities.
    schedule_queries : int in [1, 10**9] or None, default None
        The number of iterations the window-size schedule is laid out over.
        None: ``max_queries`` (the paper's code). A fixed number makes runs
        with different budgets share their first queries (anytime).
    max_queries : int in [2, 10**9], default 1000
        Most model calls per sample, the clean and verification passes included.
    seed : int >= 0 or None, default 0
        Seed of the attack's random generator (windows, signs).

    Examples
    --------
    >>> import torch, hoodwink
    >>> from hoodwink.attacks.square import Square
    >>> net = torch.nn.Linear(4, 2, bias=False).eval()
    >>> with torch.no_grad():  # class 0 while sum(x) > 0
    ...     _ = net.weight.copy_(torch.tensor([[1., 1., 1., 1.], [0., 0., 0., 0.]]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(-1, 1))
    >>> x = torch.tensor([[0.1, 0.1, 0.05, 0.05], [0.5, 0.5, 0.5, 0.5]])
    >>> # L∞ distances to the boundary: sum(x) / 4 = 0.075 and 0.5.
    >>> result = Square(max_queries=100)(model, x, torch.tensor([0, 0]), eps=0.2)
    >>> result.success.tolist()
    [True, False]
    >>> result.queries.tolist()[1]  # a sample it cannot fool uses its whole budget
    100
    """

    p_init: float | None = None
    loss: LossName = "margin"
    schedule_queries: int | None = None

    supported_norms: ClassVar[tuple[str, ...]] = ("linf", "l2")

    _constraints = {
        "p_init": (Interval(float, 0, 1, closed="right"), None),
        "schedule_queries": (Interval(int, 1, 10**9), None),
        "loss": (Options(get_args(LossName)),),
    }

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        x, n = inputs.x, inputs.x.shape[0]
        scores = self._clean_scores(model, inputs)
        pred_clean = inputs.pred_clean
        report = inputs.progress
        total = self.max_queries
        search: _Search = (_LinfSearch if self.norm == "linf" else _L2Search)(model, inputs)
        # Samples worth attacking: not adversarial yet, with a query to spare.
        todo = ~inputs.is_adversarial(pred_clean) & model.can_query(None, 1)
        idx = todo.nonzero()[:, 0]
        if idx.numel() == 0 or inputs.eps == 0 or not search.can_move():
            if report is not None:
                report(total, total, "nothing to attack")
            inputs.expect(x, pred_clean)
            return x.clone()
        p_init = self.p_init if self.p_init is not None else _P_INIT[self.norm]
        # The paper's schedule is written for 10,000 queries; it is stretched or squeezed
        # to the length it is laid out for (schedule_queries, or the budget when None).
        length = self.schedule_queries if self.schedule_queries is not None else self.max_queries
        gen = inputs.generator
        targeted = inputs.targeted
        lab = inputs.labels[idx]
        best_loss = torch.full((n,), -math.inf, dtype=torch.float64, device=x.device)
        best_pred = pred_clean.clone()
        best_adv = torch.zeros(n, dtype=torch.bool, device=x.device)

        # The initialisation, taken whatever its loss (as in the paper): one query each.
        a_loss, a_pred = model.loss(search.init(idx, gen), lab, loss=self.loss,
                                    targeted=targeted, rows=idx)
        search.accept(None)
        a_adv = inputs.is_adversarial(a_pred, idx)
        # Every attacked sample has made the same queries, so has the same number left.
        left = int(model.remaining(idx).min())
        t = 0
        while True:
            drop = a_adv if left > 0 else torch.ones_like(a_adv)
            if bool(drop.any()):
                out = idx[drop]
                best_loss[out] = a_loss[drop]
                best_pred[out] = a_pred[drop]
                best_adv[out] = a_adv[drop]
                keep = ~drop
                search.leave(out, drop, keep)
                idx, lab = idx[keep], lab[keep]
                a_loss, a_pred, a_adv = a_loss[keep], a_pred[keep], a_adv[keep]
                if idx.numel() == 0:
                    break
            step = t if length == _SCHEDULE else t * _SCHEDULE // length
            loss, pred = model.loss(search.propose(square_fraction(p_init, step), gen), lab,
                                    loss=self.loss, targeted=targeted, rows=idx)
            adv = pred == lab if targeted else pred != lab
            # An adversarial candidate is taken whatever its loss (with the cross-entropy
            # it need not be higher); else only a strictly better one, as in the paper.
            better = adv | (loss > a_loss)
            search.accept(better)
            a_loss = torch.where(better, loss, a_loss)
            a_pred = torch.where(better, pred, a_pred)
            a_adv = adv
            left -= 1
            t += 1
            if report is not None:
                report(min(2 + t, total), total, f"iteration {t}")
        if report is not None:
            report(total, total, "done")
        # A sample whose search never beat x itself (in loss) gets x back.
        clean_loss = score_loss(scores, inputs.labels, model.capabilities.output,
                                loss=self.loss, targeted=targeted)
        moved = best_adv | (best_loss > clean_loss)
        x_adv = torch.where(moved.reshape((-1,) + (1,) * (x.ndim - 1)), search.final(), x)
        inputs.expect(x_adv, torch.where(moved, best_pred, pred_clean))
        return x_adv


# ---------------------------------------------------------------------- geometry
def _layout(shape: torch.Size) -> tuple[int, int, int, bool]:
    """(C, H, W, is_image) of one input: images as they are, anything else as (1, 1, D)."""
    if len(shape) == 4:
        return shape[1], shape[2], shape[3], True
    return 1, 1, math.prod(shape[1:]), False


def _side(p: float, h: int, w: int, is_image: bool, *, odd_min3: bool) -> tuple[int, int]:
    """Window height and width covering about the fraction ``p`` of an (H, W) plane."""
    if is_image:
        s, limit = round(math.sqrt(p * h * w)), min(h, w)
    else:
        s, limit = round(p * w), w
    if odd_min3:  # the paper's L2 windows: odd, at least 3
        s = max(s, 3)
        s += 1 - s % 2
    s = max(1, min(s, limit))
    return (s, s) if is_image else (1, s)


class _Windows:
    """Windows of one size in a flattened (C, H, W) input, placed per sample.

    A window is the set of flat indices ``c*H*W + (vh + i)*W + (vw + j)`` for
    every channel c, ``i < sh`` and ``j < sw``: a start offset plus fixed offsets,
    so placing one window per sample is a single addition, and the attack reads
    and writes windows with gather and scatter instead of full-size masks.
    """

    def __init__(self, c: int, h: int, w: int, sh: int, sw: int,
                 device: torch.device) -> None:
        self.h, self.w, self.sh, self.sw = h, w, sh, sw
        ch = torch.arange(c, device=device)[:, None, None] * h
        rows = torch.arange(sh, device=device)[None, :, None]
        cols = torch.arange(sw, device=device)[None, None, :]
        #: (C * sh * sw,): channel-major, then rows, then columns.
        self.offsets = ((ch + rows) * w + cols).reshape(-1)

    def starts(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniform start rows and columns from two columns of uniform numbers in [0, 1)."""
        vh = (u[:, 0] * (self.h - self.sh + 1)).long().clamp_(max=self.h - self.sh)
        vw = (u[:, 1] * (self.w - self.sw + 1)).long().clamp_(max=self.w - self.sw)
        return vh, vw

    def index(self, vh: torch.Tensor, vw: torch.Tensor) -> torch.Tensor:
        """(m, C * sh * sw) flat indices of each sample's window."""
        return (vh * self.w + vw)[:, None] + self.offsets


# ---------------------------------------------------------------------- the searches
class _Search:
    """The search state of the active samples, and the best point of every sample.

    Points are kept flat, (m, D). :meth:`init` and :meth:`propose` return the
    candidates in the model's input shape, one row per active sample;
    :meth:`accept` takes them where ``better`` holds (all when None);
    :meth:`leave` stores the current point of the samples that stop and drops
    them from the state; :meth:`final` returns every sample's stored point.
    """

    def __init__(self, model: QueryGate, inputs: AttackInputs) -> None:
        x = inputs.x
        self.eps = inputs.eps
        self.shape = x.shape
        self.c, self.h, self.w, self.is_image = _layout(x.shape)
        self.levels = model.levels
        self.lo, self.hi = model.bounds
        self.device = x.device
        self.x = x.reshape(x.shape[0], -1)
        self.best = self.x.clone()
        self.cur = self.x[:0]
        self._windows: dict[tuple[int, int], _Windows] = {}

    def windows(self, sh: int, sw: int) -> _Windows:
        """The windows of size (sh, sw), built once per size."""
        win = self._windows.get((sh, sw))
        if win is None:
            win = self._windows[(sh, sw)] = _Windows(self.c, self.h, self.w, sh, sw,
                                                     self.device)
        return win

    def shaped(self, t: torch.Tensor) -> torch.Tensor:
        """Flat points in the model's input shape."""
        return t.view((t.shape[0],) + tuple(self.shape[1:]))

    def can_move(self) -> bool:
        """Whether any candidate can differ from ``x``."""
        return True

    def init(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def propose(self, p: float, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def accept(self, better: torch.Tensor | None) -> None:
        raise NotImplementedError

    def leave(self, rows: torch.Tensor, drop: torch.Tensor, keep: torch.Tensor) -> None:
        self.best[rows] = self.cur[drop]
        self.cur = self.cur[keep]

    def final(self) -> torch.Tensor:
        return self.best.view(self.shape)


class _LinfSearch(_Search):
    """L∞: every feature of a point sits at one end of the ball, ``up`` or ``down``.

    Both ends are clipped to the bounds and snapped to the grid once, so every
    point queried is exact. A candidate differs from the current point only in
    its window: it is written into the current point in place, queried, and
    undone where it did not improve, so an iteration touches the windows only.
    """

    def __init__(self, model: QueryGate, inputs: AttackInputs) -> None:
        super().__init__(model, inputs)
        x, eps, lo, hi = inputs.x, inputs.eps, self.lo, self.hi
        up = clip_to_bounds(x + eps, lo, hi)
        down = clip_to_bounds(x - eps, lo, hi)
        if self.levels is not None:
            up = quantize(x, up, eps, "linf", lo, hi, self.levels)
            down = quantize(x, down, eps, "linf", lo, hi, self.levels)
        self.up, self.down = up.reshape(self.x.shape), down.reshape(self.x.shape)

    def can_move(self) -> bool:
        # On a grid an eps below one step leaves both ends at x.
        return not torch.equal(self.up, self.down)

    def init(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        # Vertical stripes: one random end per column of each channel.
        m, c, h, w = idx.numel(), self.c, self.h, self.w
        self.a_up, self.a_down = self.up[idx], self.down[idx]
        top = (torch.rand((m, c, 1, w), generator=gen) < 0.5).to(self.device, self.x.dtype)
        # lerp with weights 0 and 1 selects exactly (and is vectorised, unlike where).
        self.cur = torch.lerp(self.a_down, self.a_up, top.expand(m, c, h, w).reshape(m, -1))
        return self.shaped(self.cur)

    def propose(self, p: float, gen: torch.Generator) -> torch.Tensor:
        cur, c = self.cur, self.c
        m = cur.shape[0]
        win = self.windows(*_side(p, self.h, self.w, self.is_image, odd_min3=False))
        u = torch.rand((m, 3 + c), generator=gen).to(self.device)
        index = win.index(*win.starts(u))
        up, down, old = self.a_up.gather(1, index), self.a_down.gather(1, index), \
            cur.gather(1, index)
        top = u[:, 3:] < 0.5
        k = win.sh * win.sw
        new = torch.where(top.repeat_interleave(k, dim=1), up, down)
        # A window that changes nothing would waste a query: flip one random channel
        # there (the window is then uniform in every channel, so this changes it).
        same = (new == old).all(dim=1)
        if bool(same.any()):
            j = (u[:, 2] * c).long().clamp_(max=c - 1)
            top ^= torch.nn.functional.one_hot(j, c).bool() & same[:, None]
            new = torch.where(top.repeat_interleave(k, dim=1), up, down)
        self._undo = index, old, new
        cur.scatter_(1, index, new)
        return self.shaped(cur)

    def accept(self, better: torch.Tensor | None) -> None:
        if better is None:
            return
        index, old, new = self._undo
        self.cur.scatter_(1, index, torch.where(better[:, None], new, old))

    def leave(self, rows: torch.Tensor, drop: torch.Tensor, keep: torch.Tensor) -> None:
        super().leave(rows, drop, keep)
        self.a_up, self.a_down = self.a_up[keep], self.a_down[keep]


class _L2Search(_Search):
    """L2: the current point of each active sample; its perturbation has norm ``eps``
    before clipping and snapping."""

    def __init__(self, model: QueryGate, inputs: AttackInputs) -> None:
        super().__init__(model, inputs)
        self._patterns: dict[tuple[int, int], torch.Tensor] = {}

    def pattern(self, sh: int, sw: int) -> torch.Tensor:
        """(2, sh * sw): the bump pattern of an (sh, sw) window, and its transpose."""
        pat = self._patterns.get((sh, sw))
        if pat is None:
            p = _bumps(sh, sw).to(device=self.device, dtype=self.x.dtype)
            pat = torch.stack([p.flatten(), (p.T if sh == sw else p).flatten()])
            self._patterns[(sh, sw)] = pat
        return pat

    def snap(self, delta: torch.Tensor) -> torch.Tensor:
        """``xa + delta`` with delta scaled to norm eps, clipped, snapped to the grid; flat."""
        xa = self.xa
        nrm = delta.norm(dim=1, keepdim=True).clamp_min(1e-30)
        x_new = clip_to_bounds(self.shaped(torch.addcmul(xa, delta, self.eps / nrm)),
                               self.lo, self.hi)
        if self.levels is not None:
            x_new = quantize(self.shaped(xa), x_new, self.eps, "l2", self.lo, self.hi,
                             self.levels)
        return x_new.reshape(xa.shape)

    def init(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        # A grid of bumps, each of a random sign per sample and channel and a random
        # orientation per sample, centred in the plane; tiles are a fifth of the side.
        m, c, h, w = idx.numel(), self.c, self.h, self.w
        th, tw = (max(min(h, w) // 5, 1),) * 2 if self.is_image else (1, max(w // 5, 1))
        nh, nw = h // th, w // tw
        pat = self.pattern(th, tw).reshape(-1)
        dev = self.device
        hh = torch.arange(h, device=dev) - (h - nh * th) // 2
        ww = torch.arange(w, device=dev) - (w - nw * tw) // 2
        inside = (((hh >= 0) & (hh < nh * th))[:, None] & ((ww >= 0) & (ww < nw * tw))[None])
        tile_h, tile_w = (hh // th).clamp(0, nh - 1), (ww // tw).clamp(0, nw - 1)
        local = (hh % th)[:, None] * tw + (ww % tw)[None]
        sign = (torch.rand((m, c, nh, nw), generator=gen) < 0.5).to(dev)
        turn = (torch.rand((m, nh, nw), generator=gen) < 0.5).to(dev)
        turn = turn[:, tile_h][:, :, tile_w].long() * (th * tw)  # (m, H, W)
        sign = sign[:, :, tile_h][:, :, :, tile_w].to(self.x.dtype) * 2 - 1
        delta = pat[local + turn][:, None] * sign * inside.to(self.x.dtype)
        self.xa = self.x[idx]
        self.cand = self.snap(delta.reshape(m, -1))
        return self.shaped(self.cand)

    def propose(self, p: float, gen: torch.Generator) -> torch.Tensor:
        xa, c = self.xa, self.c
        m = xa.shape[0]
        sh, sw = _side(p, self.h, self.w, self.is_image, odd_min3=True)
        win, pat = self.windows(sh, sw), self.pattern(sh, sw)
        k = sh * sw
        u = torch.rand((m, 5 + c), generator=gen).to(self.device)
        vh, vw = win.starts(u[:, 0:2])
        vh2, vw2 = win.starts(u[:, 2:4])
        i1, i2 = win.index(vh, vw), win.index(vh2, vw2)
        delta = self.cur - xa
        d1 = delta.gather(1, i1).view(m, c, k)
        d2 = delta.gather(1, i2).view(m, c, k)
        # Cells of window 2 that also lie in window 1, so that the union is not counted twice.
        r = torch.arange(sh, device=self.device).repeat_interleave(sw)
        q = torch.arange(sw, device=self.device).repeat(sh)
        dr, dq = (vh2 - vh)[:, None] + r, (vw2 - vw)[:, None] + q
        shared = ((dr >= 0) & (dr < sh) & (dq >= 0) & (dq < sw))[:, None]  # (m, 1, k)
        # Per channel: the norm in window 1, the squared norm of both windows.
        in1 = d1.norm(dim=2, keepdim=True)
        both = d1.square().sum(dim=2, keepdim=True) + (d2.square() * ~shared).sum(
            dim=2, keepdim=True)
        whole = delta.square().sum(dim=1).reshape(m, 1, 1)
        # Window 1 gets a new bump plus its old content, with the mass of both windows
        # and what the ball has to spare; window 2 is emptied.
        sign = (u[:, 5:] < 0.5).to(xa.dtype).mul_(2).sub_(1)[:, :, None]
        bump = pat[(u[:, 4] < 0.5).long()][:, None, :]  # (m, 1, k)
        new = bump * sign + d1 / (in1 + 1e-10)
        size = ((self.eps ** 2 - whole).clamp_min(0) / c + both).sqrt()
        new = new * (size / new.norm(dim=2, keepdim=True).clamp_min(1e-30))
        delta.scatter_(1, i2, 0.0)
        delta.scatter_(1, i1, new.view(m, -1))
        self.cand = self.snap(delta)
        return self.shaped(self.cand)

    def accept(self, better: torch.Tensor | None) -> None:
        if better is None:
            self.cur = self.cand
        else:
            # lerp with weights 0 and 1 selects exactly (and is vectorised, unlike where).
            self.cur = torch.lerp(self.cur, self.cand, better[:, None].to(self.cur.dtype))

    def leave(self, rows: torch.Tensor, drop: torch.Tensor, keep: torch.Tensor) -> None:
        super().leave(rows, drop, keep)
        self.xa = self.xa[keep]


def _bump(a: int, b: int) -> torch.Tensor:
    """An (a, b) bump of unit norm: concentric rectangles weighted 1/(r+1)**2.

    Rectangle r holds the cells within Chebyshev distance r of the centre
    (a // 2, b // 2), for r up to max(a // 2, b // 2); a cell at distance d thus
    holds the sum of 1/(r+1)**2 over r >= d (the paper's pseudo-Gaussian).
    """
    if a == 0 or b == 0:
        return torch.zeros(a, b, dtype=torch.float64)
    r = max(a // 2, b // 2) + 1
    tail = (1.0 / torch.arange(1, r + 1, dtype=torch.float64) ** 2).flip(0).cumsum(0).flip(0)
    di = (torch.arange(a) - a // 2).abs()[:, None]
    dj = (torch.arange(b) - b // 2).abs()[None]
    v = tail[torch.maximum(di, dj)]
    return torch.div(v, v.norm())


def _bumps(sh: int, sw: int) -> torch.Tensor:
    """The paper's L2 pattern for an (sh, sw) window: two bumps of opposite sign, unit norm.

    The window is split into top and bottom halves (left and right for one row).
    """
    if sh >= 2 or sh == sw:
        k = sh // 2
        p = torch.cat([_bump(k, sw), -_bump(sh - k, sw)], dim=0)
    else:
        k = sw // 2
        p = torch.cat([_bump(sh, k), -_bump(sh, sw - k)], dim=1)
    return torch.div(p, p.norm())
