"""Attacks: one class per algorithm, one call signature, one result record."""

from hoodwink.attacks.base import Attack, GradientAttack
from hoodwink.attacks.fgsm import FGSM
from hoodwink.attacks.pgd import PGD
from hoodwink.attacks.result import AttackResult

__all__ = ["FGSM", "PGD", "Attack", "AttackResult", "GradientAttack"]
