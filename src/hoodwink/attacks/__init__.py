"""Attacks: one class per algorithm, one call signature, one result record."""

from hoodwink.attacks.base import Attack, GradientAttack
from hoodwink.attacks.curve import Curve
from hoodwink.attacks.fgsm import FGSM
from hoodwink.attacks.pgd import PGD
from hoodwink.attacks.result import AttackResult, ResultTable

__all__ = ["FGSM", "PGD", "Attack", "AttackResult", "Curve", "GradientAttack", "ResultTable"]
