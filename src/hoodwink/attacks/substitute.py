"""Substitute-model attack: train a surrogate on the model's labels, transfer PGD from it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, NoReturn, cast

import torch
from torch import nn

from hoodwink._validation import (
    Callable as CallableConstraint,
)
from hoodwink._validation import (
    Interval,
    reject,
)
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks._norms import NormName, clip_to_bounds, snap_point
from hoodwink.attacks.base import (
    AttackInputs,
    BlackBoxAttack,
    GradientAttack,
    resolve_inner_attack,
)
from hoodwink.attacks.pgd import PGD
from hoodwink.errors import HoodwinkError
from hoodwink.models.torch import TorchClassifier

__all__ = ["Substitute", "SurrogateFactory", "default_surrogate"]

#: ``factory(input_shape, num_classes)`` -> a fresh ``nn.Module`` mapping inputs scaled
#: to [0, 1] (shape ``(N, *input_shape)``) to logits (N, num_classes).
SurrogateFactory = Callable[[tuple[int, ...], int], nn.Module]

_OWNER = "Substitute"
#: Largest ``rounds``: 2**20 labelled points per sample is far beyond any budget.
MAX_ROUNDS = 20
#: Largest ``epochs`` per round.
MAX_EPOCHS = 10_000
#: Largest ``restarts`` (transfer attempts).
MAX_RESTARTS = 10_000
#: Training: minibatch size and Adam's learning rate.
_BATCH = 64
_LR = 1e-2
#: Inputs per forward pass when taking the surrogate's Jacobian signs.
_CHUNK = 1024


def _default_attack(norm: NormName) -> PGD:
    return PGD(norm=norm, steps=20, early_stop=False, random_start=False)


def default_surrogate(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The default surrogate: a small ConvNet for images, a small MLP otherwise.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one input: ``(C, H, W)`` with H, W >= 8 gets two strided
        5x5 convolutions (16 and 32 channels) and a linear layer; any other
        shape is flattened into a 128-unit ReLU MLP.
    num_classes : int

    Returns
    -------
    nn.Module
        Untrained; initialised from torch's global generator (the attack
        seeds and restores it around this call).
    """
    if len(input_shape) == 3 and min(input_shape[1:]) >= 8:
        c = input_shape[0]
        return nn.Sequential(
            nn.Conv2d(c, 16, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, num_classes),
        )
    d = math.prod(input_shape)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, num_classes))


class _Scaled(nn.Module):
    """``net((x - lower) / (upper - lower))``: the surrogate sees inputs in [0, 1]."""

    lower: torch.Tensor
    span: torch.Tensor

    def __init__(self, net: nn.Module, lower: torch.Tensor, upper: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("lower", lower.detach().clone())
        self.register_buffer("span", (upper - lower).detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net((x - self.lower) / self.span)
        return out


@dataclass(frozen=True, kw_only=True)
class Substitute(BlackBoxAttack):
    """Practical black-box attack through a substitute model (Papernot, McDaniel,
    Goodfellow, Jha, Celik and Swami, "Practical Black-Box Attacks against
    Machine Learning", AsiaCCS 2017).

    Trains a differentiable surrogate on the model's *labels* and transfers a
    white-box attack (PGD by default) from it:

    1. The seed set is the attacked inputs themselves, labelled by the clean
       pass.
    2. Jacobian-based dataset augmentation, ``rounds`` times: train the
       surrogate, then add ``s + lambda * sign(d log p_label(s) / ds)`` for
       every point ``s`` of the set (``lambda = augment_step`` times the
       input range, snapped to the bounds and the grid), labelled by the
       model. Each round doubles the set; a new point belongs to the sample it
       derives from, which pays for its label.
    3. Train once more, run the inner attack on the surrogate (no queries:
       it is our own model, with the same bounds and grid), and try the
       result on the model. With ``restarts`` > 1 each attempt's candidate
       is checked with one query while the budget allows; further attempts
       (PGD from a random start) run for the samples not yet fooled, and each
       sample keeps its first candidate the model labels adversarially, else
       its first one.

    Threat model: black box from labels only (decision-based; scores are not
    needed, so any model fits), untargeted or targeted, in the norms of the
    inner attack (PGD: L∞, L2, L1).

    Query cost per sample: the clean pass, then ``1 + 2 + ... + 2**(r-1)``
    labels for ``r`` rounds (``2**r`` with the clean pass), at most one
    check per transfer attempt while budget remains, and the verification.
    ``rounds`` is cut to ``floor(log2(max_queries - 1))`` when the labels
    would not fit. Samples already adversarial at ``x`` are returned at once;
    their clean labels still join the seed set, and they pay for nothing
    more. Nothing depends on ``max_queries`` but the number of rounds and
    attempts.

    Training is seeded from the attack's generator, on the CPU, with torch's
    global generator saved and restored around the surrogate's
    initialisation. The surrogate is retrained (continued) each round with
    Adam for ``epochs`` epochs.

    Parameters
    ----------
    attack : GradientAttack, optional
        The white-box attack run on the surrogate. None gives ``PGD(steps=20,
        early_stop=False, random_start=False)``: the whole budget spent
        raising the surrogate's loss, which transfers better than its first
        adversarial point. Its norm is replaced by ``norm`` when given.
    surrogate : callable or None, default None
        ``factory(input_shape, num_classes) -> nn.Module`` building a fresh
        network from inputs scaled to [0, 1] per feature (``(x - lower) /
        (upper - lower)``) to logits; None uses :func:`default_surrogate`.
    rounds : int in [1, 20], default 4
        Jacobian augmentation rounds (Papernot et al. use up to 6). Cut to
        ``floor(log2(max_queries - 1))`` when the budget is smaller; at
        ``max_queries=2`` that is 0: the surrogate learns from the clean
        labels alone.
    epochs : int in [1, 10_000], default 5
        Training epochs over the current set per round.
    augment_step : float in (0, 1], default 0.1
        The augmentation step lambda as a fraction of the input range
        (Papernot et al.'s 0.1 for pixels in [0, 1]).
    restarts : int in [1, 10_000], default 4
        Transfer attempts (each checked with one query).
    norm : {"linf", "l2", "l1"} or None, default None
        The norm; None takes the inner attack's.
    max_queries : int in [2, 10**9], default 1000
    seed : int >= 0 or None, default 0
        Seed of the attack's local random generator (initialisation,
        shuffling, random starts).

    Examples
    --------
    >>> import torch, hoodwink
    >>> from hoodwink.attacks.substitute import Substitute
    >>> net = torch.nn.Linear(2, 2).eval()
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[1., 0.], [-1., 0.]]))
    ...     _ = net.bias.zero_()
    >>> model = hoodwink.TorchClassifier(net, bounds=(-1, 1))
    >>> x = torch.tensor([[0.1, 0.5], [-0.1, -0.5], [0.05, 0.0], [-0.05, 0.3]])
    >>> r = Substitute(rounds=2, epochs=50, max_queries=8)(model, x, eps=0.3)
    >>> r.success.tolist(), r.queries.tolist()  # 4 labels per sample, checks, verification
    ([True, True, True, True], [6, 6, 6, 6])
    """

    attack: GradientAttack | None = None
    surrogate: SurrogateFactory | None = None
    rounds: int = 4
    epochs: int = 5
    augment_step: float = 0.1
    restarts: int = 4
    norm: NormName | None = None  # type: ignore[assignment]

    threat: ClassVar[Literal["labels"]] = "labels"
    supported_norms: ClassVar[tuple[str, ...]] = ("linf", "l2", "l1")
    supports_targeted: ClassVar[bool] = True

    _constraints = {
        "surrogate": (CallableConstraint(), None),
        "rounds": (Interval(int, 1, MAX_ROUNDS),),
        "epochs": (Interval(int, 1, MAX_EPOCHS),),
        "augment_step": (Interval(float, 0, 1, closed="right"),),
        "restarts": (Interval(int, 1, MAX_RESTARTS),),
    }

    def __post_init__(self) -> None:
        attack, norm = resolve_inner_attack(_OWNER, self.attack, self.norm,
                                            self.supported_norms, _default_attack)
        object.__setattr__(self, "attack", attack)
        object.__setattr__(self, "norm", norm)
        super().__post_init__()

    def _inner(self) -> GradientAttack:
        if self.attack is None:  # unreachable: resolved in __post_init__
            return _default_attack(cast(NormName, self.norm))
        return self.attack

    # ------------------------------------------------------------------ the attack
    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        pred_clean = self._clean_labels(model, inputs)
        x, n = inputs.x, inputs.x.shape[0]
        report = inputs.progress
        done = inputs.is_adversarial(pred_clean)
        x_adv = x.clone()
        # Per sample, the last point the model labelled that it may return, and that label.
        seen_x, seen_pred = x.clone(), pred_clean.clone()
        if inputs.eps == 0 or x[0].numel() == 0 or bool(done.all()):
            if report is not None:
                report(1, 1, "nothing to do")
            return x_adv
        budget = int(model.remaining().min())  # the same for every sample here
        rounds = min(self.rounds, int(math.floor(math.log2(budget + 1))))
        total = 1 + (2**rounds - 1) + self.restarts  # per sample, at most
        cpu = torch.device("cpu")
        lo, hi = model.bounds
        lo_c, hi_c = lo.detach().to(cpu, x.dtype), hi.detach().to(cpu, x.dtype)
        net = self._build(tuple(x.shape[1:]), model.num_classes, lo_c, hi_c, inputs.generator)
        # The training set: points, their labels, and the sample each belongs to.
        pts = x.detach().to(cpu)
        labs = pred_clean.to(cpu)
        owner = torch.arange(n)
        used = 1
        for r in range(rounds + 1):
            self._train(net, pts, labs, inputs.generator)
            if r == rounds:
                break
            grow = ~done.to(cpu)[owner]  # samples already fooled pay for nothing more
            new = self._augment(net, pts[grow], labs[grow], lo_c, hi_c, model.levels, r)
            rows = owner[grow]
            new_labs = model.predict(new.to(x.device), rows.to(x.device)).to(cpu)
            pts, labs, owner = (torch.cat((pts, new)), torch.cat((labs, new_labs)),
                                torch.cat((owner, rows)))
            used += 2**r
            if report is not None:
                report(used, total, f"augmentation round {r + 1}/{rounds}")
        net.eval()
        surrogate = TorchClassifier(net, bounds=(lo_c, hi_c), levels=model.levels,
                                    num_classes=model.num_classes)
        first = torch.ones(n, dtype=torch.bool, device=x.device)
        for a in range(self.restarts):
            can = model.can_query(None, 1)
            todo = ~done & (first | can)
            idx = todo.nonzero()[:, 0]
            if idx.numel() == 0:
                break
            cand = self._transfer(surrogate, x[idx], inputs, idx, a).to(x.device, x.dtype)
            is_first = first[idx]
            x_adv[idx[is_first]] = cand[is_first]
            first[idx] = False
            if self.restarts == 1:
                break
            check_rows = can[idx]
            cidx = idx[check_rows]
            if cidx.numel() > 0:
                pred = model.predict(cand[check_rows], cidx)
                adv = inputs.is_adversarial(pred, cidx)
                take = adv | is_first[check_rows]
                x_adv[cidx[take]] = cand[check_rows][take]
                seen_x[cidx[take]] = cand[check_rows][take]
                seen_pred[cidx[take]] = pred[take]
                done[cidx] |= adv
            if report is not None:
                report(min(used + a + 1, total), total, f"transfer attempt {a + 1}")
        if report is not None:
            report(total, total, f"{int(done.sum())}/{n} fooled")
        inputs.expect(seen_x, seen_pred)
        return x_adv

    # ------------------------------------------------------------------ surrogate
    def _build(self, shape: tuple[int, ...], num_classes: int, lo: torch.Tensor,
               hi: torch.Tensor, generator: torch.Generator) -> nn.Module:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        factory = self.surrogate if self.surrogate is not None else default_surrogate
        # Initialisers draw from torch's global generator: seed it, and restore it after.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                net = factory(shape, num_classes)
            except HoodwinkError:
                raise
            except Exception as exc:  # the user's factory can raise anything
                self._bad_surrogate(f"It raised {type(exc).__name__}: {exc}")
        if not isinstance(net, nn.Module):
            self._bad_surrogate(f"It returned {type(net).__name__}.")
        # Both bounds broadcast to one shape (0 * the other adds its dimensions).
        lo_b, hi_b = lo + 0 * hi, hi + 0 * lo
        scaled = _Scaled(net, lo_b.float(), hi_b.float()).to(torch.device("cpu"))
        self._check_surrogate(scaled, shape, num_classes)
        return scaled

    def _bad_surrogate(self, problem: str) -> NoReturn:
        reject(_OWNER, "surrogate", self.surrogate,
               "a factory(input_shape, num_classes) that returns an nn.Module mapping float32 "
               "inputs (N, *input_shape) to logits (N, num_classes), with trainable parameters",
               hint=problem)

    def _check_surrogate(self, net: nn.Module, shape: tuple[int, ...], num_classes: int) -> None:
        """Refuse, before any training, a surrogate that cannot be trained on these inputs.

        One forward pass (in eval mode, no gradients, no queries) on a batch of two:
        a factory's network that fails on it, or gives other than (2, num_classes)
        float logits, would otherwise fail deep inside training with torch's error.
        """
        if not any(p.requires_grad for p in net.parameters()):
            self._bad_surrogate("Its network has no trainable parameters.")
        batch = (2, *shape)
        try:
            with torch.no_grad():
                out = net.eval()(torch.zeros(batch))
        except HoodwinkError:
            raise
        except Exception as exc:  # the user's network can raise anything
            self._bad_surrogate(f"Its network raised {type(exc).__name__} on a batch of shape "
                                f"{batch}: {exc}")
        if not (isinstance(out, torch.Tensor) and out.is_floating_point()
                and tuple(out.shape) == (2, num_classes)):
            got = (f"{out.dtype} of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor)
                   else type(out).__name__)
            self._bad_surrogate(f"Its network maps a batch of shape {batch} to {got}.")

    def _train(self, net: nn.Module, pts: torch.Tensor, labs: torch.Tensor,
               generator: torch.Generator) -> None:
        """``epochs`` epochs of Adam (Kingma and Ba, 2015) on the set, minibatches of 64.

        Written out rather than ``torch.optim.Adam``: the first optimiser built in a
        process imports torch's compiler stack, seconds on a small machine.
        """
        params: list[torch.Tensor] = [p for p in net.parameters() if p.requires_grad]
        m1 = [torch.zeros_like(p) for p in params]
        m2 = [torch.zeros_like(p) for p in params]
        b1, b2, eps = 0.9, 0.999, 1e-8
        data = pts.float()
        count = data.shape[0]
        t = 0
        net.train()
        with torch.enable_grad():
            for _ in range(self.epochs):
                order = torch.randperm(count, generator=generator)
                for i in range(0, count, _BATCH):
                    b = order[i:i + _BATCH]
                    loss = nn.functional.cross_entropy(net(data[b]), labs[b])
                    grads = torch.autograd.grad(loss, params)
                    t += 1
                    with torch.no_grad():
                        torch._foreach_mul_(m1, b1)
                        torch._foreach_add_(m1, grads, alpha=1 - b1)
                        torch._foreach_mul_(m2, b2)
                        torch._foreach_addcmul_(m2, grads, grads, value=1 - b2)
                        denom = torch._foreach_sqrt(m2)
                        torch._foreach_div_(denom, math.sqrt(1 - b2**t))
                        torch._foreach_add_(denom, eps)
                        torch._foreach_addcdiv_(params, m1, denom, value=-_LR / (1 - b1**t))
        net.eval()

    def _augment(self, net: nn.Module, pts: torch.Tensor, labs: torch.Tensor,
                 lo: torch.Tensor, hi: torch.Tensor, levels: int | None,
                 r: int) -> torch.Tensor:
        """``s + lambda * sign(d log p_label(s) / ds)`` for each point, on the bounds and grid."""
        signs = []
        with torch.enable_grad():
            for i in range(0, pts.shape[0], _CHUNK):
                s = pts[i:i + _CHUNK].float().requires_grad_(True)
                logp = torch.log_softmax(net(s), dim=1)
                picked = logp.gather(1, labs[i:i + _CHUNK, None]).sum()
                (g,) = torch.autograd.grad(picked, s)
                signs.append(g.sign().to(pts.dtype))
        step = self.augment_step * (hi - lo)
        new = clip_to_bounds(pts + step * torch.cat(signs), lo, hi)
        if levels is not None:
            new = snap_point(new, lo, hi, levels)
        return new.detach()

    def _transfer(self, surrogate: TorchClassifier, x: torch.Tensor, inputs: AttackInputs,
                  idx: torch.Tensor, attempt: int) -> torch.Tensor:
        """The inner attack's result on the surrogate (free: our own model)."""
        inner = self._inner()
        if attempt > 0 and "random_start" in {f.name for f in dataclasses.fields(inner)}:
            inner = cast(GradientAttack, inner.replace(random_start=True))
        xc = x.detach().cpu()
        labels = inputs.labels[idx].cpu()
        sub = AttackInputs(x=xc, labels=labels, targeted=inputs.targeted, eps=inputs.eps,
                           y=None, generator=inputs.generator)
        # The surrogate is attacked on the model's labels, as if it got x right: a sample
        # it already gets wrong is pushed on, not returned at x.
        sub.set_pred_clean(labels)
        gate = QueryGate(surrogate, xc.shape[0], None, xc.device)
        with surrogate.evaluating():
            out: torch.Tensor = inner._run(gate, sub)
        return out
