"""Attacks: one class per algorithm, one call signature, one result record.

White box (input gradients): :class:`FGSM`, :class:`PGD`, :class:`APGD`, and the
minimum-norm :class:`CarliniWagner`, :class:`DeepFool` and :class:`FMN`. From scores only:
:class:`EstimatedGradient` (any gradient attack on NES or finite-difference
estimates), :class:`SimBA`, :class:`Square`, :class:`LocalSearch`. From labels
only: :class:`HopSkipJump`, :class:`BoundaryWalk`, :class:`Substitute`.
:mod:`hoodwink.attacks.registry` lists them by short name with their threat
models (``hoodwink attacks`` on the command line).
"""

from hoodwink.attacks.apgd import APGD
from hoodwink.attacks.base import Attack, BlackBoxAttack, GradientAttack
from hoodwink.attacks.boundary_walk import BoundaryWalk
from hoodwink.attacks.curve import Curve
from hoodwink.attacks.cw import CarliniWagner
from hoodwink.attacks.deepfool import DeepFool
from hoodwink.attacks.estimated import EstimatedGradient
from hoodwink.attacks.fgsm import FGSM
from hoodwink.attacks.fmn import FMN
from hoodwink.attacks.hopskipjump import HopSkipJump
from hoodwink.attacks.local_search import LocalSearch
from hoodwink.attacks.pgd import PGD
from hoodwink.attacks.result import AttackResult, ResultTable
from hoodwink.attacks.simba import SimBA
from hoodwink.attacks.square import Square
from hoodwink.attacks.substitute import Substitute

__all__ = [
    "APGD",
    "FGSM",
    "FMN",
    "PGD",
    "Attack",
    "AttackResult",
    "BlackBoxAttack",
    "BoundaryWalk",
    "CarliniWagner",
    "Curve",
    "DeepFool",
    "EstimatedGradient",
    "GradientAttack",
    "HopSkipJump",
    "LocalSearch",
    "ResultTable",
    "SimBA",
    "Square",
    "Substitute",
]
