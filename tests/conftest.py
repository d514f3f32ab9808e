"""Test-wide settings."""

import torch

# One thread: on a shared 2-core machine two threads stall badly under load,
# and the tests' tensors are small.
torch.set_num_threads(1)
