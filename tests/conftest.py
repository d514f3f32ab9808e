"""Test-wide settings and shared fixtures."""

from collections.abc import Iterator

import pytest
import torch

# One thread: on a shared 2-core machine two threads stall badly under load,
# and the tests' tensors are small.
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module, restored after it.

    Tests that call the CLI in-process can change the thread count (``--threads``);
    a module of tiny models opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
