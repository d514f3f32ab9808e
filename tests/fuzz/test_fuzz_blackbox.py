"""The black-box attacks: construction with generated parameter values, and generated calls
on small Torch, scikit-learn and callable models that count every row they are asked about.

One fast test per attack (the derandomised fast profile would otherwise cluster on a few of
them); the long test of each generator draws the attack too.
"""

from ._gen_blackbox import BLACK_BOX, blackbox_calls, blackbox_constructions
from ._suite import fuzz_pair

for _name in sorted(BLACK_BOX):
    _key = _name.lower()
    globals()[f"test_blackbox_construction_{_key}"] = fuzz_pair(
        blackbox_constructions(_name), "blackbox_construction", examples=15)[0]
    globals()[f"test_blackbox_call_{_key}"] = fuzz_pair(
        blackbox_calls(_name), "blackbox_call", examples=25)[0]

test_blackbox_construction_long = fuzz_pair(blackbox_constructions(), "blackbox_construction")[1]
test_blackbox_call_long = fuzz_pair(blackbox_calls(), "blackbox_call")[1]
