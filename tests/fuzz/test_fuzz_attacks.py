"""FGSM and PGD: construction with generated parameter values, and generated calls."""

from ._gen_attacks import attack_calls, attack_constructions
from ._suite import fuzz_pair

test_attack_construction, test_attack_construction_long = fuzz_pair(
    attack_constructions(), "attack_construction", examples=40)
test_attack_call, test_attack_call_long = fuzz_pair(attack_calls(), "attack_call", examples=60)
