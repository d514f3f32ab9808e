"""Every attack by its short name, with its threat model: what ``hoodwink attacks`` lists.

Each entry names the class and the arguments that make it (``nes`` and ``fd``
are :class:`~hoodwink.attacks.EstimatedGradient` with two estimators). The
threat model, norms and whether the attack can be targeted are read from the
class itself, so the listing cannot drift from the code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hoodwink.errors import ConfigError

if TYPE_CHECKING:
    from hoodwink.attacks.base import Attack
    from hoodwink.models.base import Capabilities

__all__ = ["AttackInfo", "available", "fitting", "get", "make"]


@dataclass(frozen=True)
class AttackInfo:
    """One attack of the registry.

    Attributes
    ----------
    name : str
        Short name, as on the command line (``--attack square``).
    path : str
        ``module:Class`` of the implementation.
    summary : str
        One line: what it does, and its source.
    defaults : mapping
        Arguments the name implies (e.g. ``estimator="nes"``).
    """

    name: str
    path: str
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> type[Attack]:
        """The attack class (imported on first use)."""
        module, _, attr = self.path.partition(":")
        cls: type[Attack] = getattr(importlib.import_module(module), attr)
        return cls

    @property
    def threat(self) -> str:
        """``"white-box"``, ``"scores"`` or ``"labels"``."""
        return str(self.cls.threat)

    @property
    def norms(self) -> tuple[str, ...]:
        """Norms the attack supports."""
        return tuple(self.cls.supported_norms)

    @property
    def targeted(self) -> bool:
        """Whether the attack can be targeted (all can be untargeted)."""
        return bool(self.cls.supports_targeted)

    @property
    def minimum_norm(self) -> bool:
        """Whether the attack looks for the smallest perturbation (eps is then an upper limit)."""
        return bool(getattr(self.cls, "minimum_norm", False))


_A = "hoodwink.attacks."
_REGISTRY: tuple[AttackInfo, ...] = (
    AttackInfo("fgsm", _A + "fgsm:FGSM",
               "Fast gradient sign method, one step (Goodfellow et al., 2015)."),
    AttackInfo("pgd", _A + "pgd:PGD",
               "Projected gradient descent with restarts (Madry et al., 2018)."),
    AttackInfo("apgd", _A + "apgd:APGD",
               "Auto-PGD with cross-entropy and its step-size schedule (Croce and Hein, 2020)."),
    AttackInfo("apgd-dlr", _A + "apgd:APGD",
               "Auto-PGD on the difference of logits ratio, immune to logit scaling "
               "(Croce and Hein, 2020).", {"loss": "dlr"}),
    AttackInfo("apgd-t", _A + "apgd:APGD",
               "Auto-PGD with the targeted DLR loss towards each of the top 9 other classes "
               "(Croce and Hein, 2020).", {"loss": "dlr", "target_classes": 9}),
    AttackInfo("cw", _A + "cw:CarliniWagner",
               "Carlini-Wagner L2, minimum norm, binary search over the constant "
               "(Carlini and Wagner, 2017)."),
    AttackInfo("deepfool", _A + "deepfool:DeepFool",
               "DeepFool, minimum norm by linearising the boundaries (Moosavi-Dezfooli et al., "
               "2016)."),
    AttackInfo("fmn", _A + "fmn:FMN",
               "Fast minimum-norm attack (Pintor et al., 2021)."),
    AttackInfo("nes", _A + "estimated:EstimatedGradient",
               "PGD on gradients estimated from scores by NES with antithetic sampling "
               "(Ilyas et al., 2018).", {"estimator": "nes"}),
    AttackInfo("fd", _A + "estimated:EstimatedGradient",
               "PGD on gradients estimated from scores by finite differences over random "
               "coordinates (Chen et al., 2017).", {"estimator": "fd"}),
    AttackInfo("simba", _A + "simba:SimBA",
               "Simple black-box attack over pixel directions (Guo et al., 2019).",
               {"basis": "pixel"}),
    AttackInfo("simba-dct", _A + "simba:SimBA",
               "Simple black-box attack over low-frequency DCT directions (Guo et al., 2019).",
               {"basis": "dct"}),
    AttackInfo("square", _A + "square:Square",
               "Square attack, random search over square patches (Andriushchenko et al., 2020)."),
    AttackInfo("local-search", _A + "local_search:LocalSearch",
               "Plain local stochastic search on the scores, the essay's baseline."),
    AttackInfo("hopskipjump", _A + "hopskipjump:HopSkipJump",
               "HopSkipJump, from labels only (Chen, Jordan and Wainwright, 2020)."),
    AttackInfo("boundary-walk", _A + "boundary_walk:BoundaryWalk",
               "Random walk along the decision boundary from labels only (after Brendel "
               "et al., 2018), the label-only baseline."),
    AttackInfo("substitute", _A + "substitute:Substitute",
               "PGD transferred from a surrogate trained on the model's answers "
               "(Papernot et al., 2017)."),
)


def available() -> tuple[AttackInfo, ...]:
    """Every registered attack, in a stable order (white box first)."""
    return _REGISTRY


def get(name: str) -> AttackInfo:
    """The attack registered as ``name`` (case-insensitive).

    Raises
    ------
    ConfigError
        For an unknown name; the message lists the known ones.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    for info in _REGISTRY:
        if info.name == key:
            return info
    raise ConfigError(
        f"Unknown attack {name!r}. Choose one of: {', '.join(i.name for i in _REGISTRY)} "
        "(`hoodwink attacks` describes them)."
    )


def make(name: str, **params: Any) -> Attack:
    """Build the attack ``name`` with ``params`` on top of the defaults the name implies."""
    info = get(name)
    return info.cls(**{**info.defaults, **params})


def fitting(capabilities: Capabilities) -> list[str]:
    """Names of the attacks a model with ``capabilities`` can run."""
    out = []
    for info in _REGISTRY:
        threat = info.threat
        if threat == "white-box" and not capabilities.differentiable:
            continue
        if threat == "scores" and capabilities.output == "labels":
            continue
        out.append(info.name)
    return out
