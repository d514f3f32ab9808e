"""The studies' public entry points on tiny settings."""

from ._gen_studies import studies
from ._suite import fuzz_pair

test_studies, test_studies_long = fuzz_pair(studies(), "studies", examples=30)
