"""Helpers shared by test modules (fixtures live in conftest.py).

Import them as ``from _helpers import ...``: pytest puts ``tests/`` on the path
for its conftest.py.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: A user's model file: a 3-class linear model on 2x3 inputs where class c scores
#: 4 * x[0, c], so the true class of an input is the argmax of its first row
#: (see :func:`uint8_samples`). ``factory()`` returns the network.
LINEAR_NET_SRC = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            for c in range(3):
                self.fc.weight[c, c] = 4.0

    def forward(self, x):
        return self.fc(x.flatten(1))


def factory():
    return Net()
'''


def uint8_samples(n: int = 12, seed: int = 0) -> np.ndarray:
    """``n`` uint8 inputs of shape (2, 3) for :data:`LINEAR_NET_SRC`.

    The first row of each holds distinct values, so its argmax (the true class)
    has no ties.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 2, 3), dtype=np.uint8)
    for i in range(n):
        x[i, 0] = rng.choice(256, 3, replace=False)
    return x


#: Shapes of the tiny linear model of :func:`linear_net`: N samples, D features, C classes.
N, D, C = 4, 6, 3


def linear_net() -> nn.Module:
    """A seeded ``nn.Linear(D, C)`` in eval mode."""
    torch.manual_seed(0)
    return nn.Linear(D, C).eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """N seeded inputs in [0, 1) of D features, with labels 0, 1, 2, 0."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(N, D, generator=g), torch.tensor([0, 1, 2, 0])
