"""The query gate: every model call an attack makes, counted per sample, budget enforced.

The base class wraps the model in a :class:`QueryGate` before it runs an
attack, and hands the gate (not the model) to ``Attack._run``. Every call goes
through it, with ``rows``: which of the attacked samples each input row belongs
to (``None``: all of them, in order; repeats allowed, e.g. many probes of one
sample). The gate charges one query per row to its sample and refuses, before
the model runs, a call that would take any sample beyond ``budget``.
``AttackResult.queries`` is the gate's count, so it is exact by construction,
whatever the attack does.

One query is held back for the base class's final verification pass, so the
total reported per sample (clean pass, the attack's own calls, verification)
never exceeds ``max_queries``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch

from hoodwink.errors import CapabilityError, InternalError
from hoodwink.losses import LossName, attack_loss
from hoodwink.models.base import Capabilities, Classifier, DifferentiableClassifier

__all__ = ["ModelFacts", "QueryGate", "score_loss"]

#: Floor of probabilities before their log: log(1e-30) = -69 keeps margins finite.
_TINY = 1e-30


class ModelFacts:
    """A model's facts (capabilities, classes, bounds, grid, device), read through ``_source``.

    What the query gate and views built on it show of the model they wrap.
    """

    _source: Any

    @property
    def capabilities(self) -> Capabilities:
        """The wrapped model's capabilities."""
        return cast(Capabilities, self._source.capabilities)

    @property
    def num_classes(self) -> int:
        """Number of classes of the wrapped model."""
        return cast(int, self._source.num_classes)

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds of the wrapped model."""
        return cast(tuple[torch.Tensor, torch.Tensor], self._source.bounds)

    @property
    def levels(self) -> int | None:
        """Quantisation levels of the wrapped model."""
        return cast(int | None, self._source.levels)

    @property
    def device(self) -> Any:
        """The wrapped model's device attribute (None when it has none)."""
        return getattr(self._source, "device", None)


class QueryGate(ModelFacts):
    """A counting, budget-enforcing view of a classifier, owned by one attack call.

    Parameters
    ----------
    model : Classifier
        The wrapped model.
    n : int
        Number of attacked samples.
    budget : int or None
        Most queries any sample may cost in total (``max_queries``), the
        verification pass included; None for no limit.
    device : torch.device
        Where the counts live (the inputs' device).
    """

    def __init__(self, model: Classifier, n: int, budget: int | None,
                 device: torch.device) -> None:
        self.model = model
        self._source = model
        self.n = n
        self.budget = budget
        self.used = torch.zeros(n, dtype=torch.int64, device=device)
        self._verifying = False

    @property
    def has_scores(self) -> bool:
        """Whether the model answers with scores (logits or probabilities), not only labels."""
        return self.model.capabilities.output != "labels"

    # ------------------------------------------------------------ the budget
    def remaining(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Queries each sample (of ``rows``; all if None) may still make, int64.

        Without a budget this is a very large number. The query held back for
        verification is not included.
        """
        used = self.used if rows is None else self.used[rows]
        if self.budget is None:
            return torch.full_like(used, 2**62)
        return (self.budget - 1 - used).clamp_min(0)

    def can_query(self, rows: torch.Tensor | None = None, k: int = 1) -> torch.Tensor:
        """Whether each sample (of ``rows``) can still afford ``k`` queries, bool."""
        return self.remaining(rows) >= k

    def _charge(self, rows: torch.Tensor | None, m: int) -> None:
        if m == 0:
            return
        if self.budget is None and rows is None and m == self.n:
            self.used.add_(1)  # the common white-box step: no budget to check, no copy
            return
        if rows is None:
            if m != self.n:
                raise InternalError(
                    f"an attack queried {m} inputs without saying which samples they belong "
                    f"to (there are {self.n}); this is a hoodwink bug, please report it."
                )
            new = self.used + 1
        else:
            rows = rows.to(device=self.used.device, dtype=torch.int64)
            if rows.ndim != 1 or rows.shape[0] != m:
                raise InternalError(
                    f"an attack queried {m} inputs with {tuple(rows.shape)} row indices; "
                    "this is a hoodwink bug, please report it."
                )
            new = self.used.index_add(0, rows, torch.ones_like(rows))
        if self.budget is not None:
            limit = self.budget if self._verifying else self.budget - 1
            if bool((new > limit).any()):
                i = int((new > limit).nonzero()[0, 0])
                raise InternalError(
                    f"an attack asked for query {int(new[i])} of sample {i}, beyond its budget "
                    f"of {limit} (max_queries={self.budget}, one held back for verification); "
                    "this is a hoodwink bug, please report it."
                )
        self.used = new

    @contextlib.contextmanager
    def verifying(self) -> Iterator[None]:
        """Let the base class spend the query held back for its verification pass."""
        self._verifying = True
        try:
            yield
        finally:
            self._verifying = False

    # ------------------------------------------------------------ calls
    def predict(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted labels of ``x`` (N,), int64; one query per row."""
        self._charge(rows, x.shape[0])
        return self.model.predict(x)

    def scores(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The model's scores (N, C): logits or probabilities; one query per row.

        Raises
        ------
        CapabilityError
            When the model answers with labels only.
        """
        fn = getattr(self.model, "scores", None)
        if fn is None:
            fn = getattr(self.model, "logits", None)
        if not self.has_scores or fn is None:
            raise CapabilityError(
                f"{type(self.model).__name__} answers with labels only, so a score-based attack "
                "cannot run on it. Use a label-only attack (HopSkipJump, BoundaryWalk); "
                "`hoodwink attacks` lists them."
            )
        self._charge(rows, x.shape[0])
        return cast(torch.Tensor, fn(x))

    def logits(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of a differentiable model; one query per row."""
        self._charge(rows, x.shape[0])
        return cast(DifferentiableClassifier, self.model).logits(x)

    def loss_gradient(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        loss: LossName = "ce",
        targeted: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attacker loss, logits and input gradient (a forward+backward pass); one query per row."""
        self._charge(rows, x.shape[0])
        return cast(DifferentiableClassifier, self.model).loss_gradient(
            x, labels, loss=loss, targeted=targeted)

    def objective_gradient(
        self,
        x: torch.Tensor,
        objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Any per-sample objective of the logits, its values, the logits and its input gradient.

        One forward+backward pass, one query per row. ``objective(logits,
        x_chunk)`` returns one value per sample (see
        :meth:`hoodwink.TorchClassifier.objective_gradient`).
        """
        self._charge(rows, x.shape[0])
        fn = getattr(self.model, "objective_gradient", None)
        if fn is None:
            raise CapabilityError(
                f"{type(self.model).__name__} has no objective_gradient, which this attack "
                "needs; wrap the network in hoodwink.TorchClassifier."
            )
        out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = fn(x, objective)
        return out

    def loss(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        loss: LossName = "margin",
        targeted: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attacker loss from the model's scores, and its predictions; one query per row.

        See :func:`score_loss`.
        """
        s = self.scores(x, rows)
        return score_loss(s, labels, self.capabilities.output, loss=loss,
                          targeted=targeted), s.argmax(dim=1)


def score_loss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    output: str,
    *,
    loss: LossName = "margin",
    targeted: bool = False,
) -> torch.Tensor:
    """Attacker loss (higher is better for the attacker) from scores, in float64.

    Probabilities are turned into log-probabilities first (floored at 1e-30),
    which are logits up to a per-sample constant, so the margin and the
    cross-entropy mean the same for both kinds of output. For the margin,
    positive means success.
    """
    s = scores.double()
    if output == "probabilities":
        s = s.clamp_min(_TINY).log()
    return attack_loss(s, labels, loss=loss, targeted=targeted)
