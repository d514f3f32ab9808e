"""The examples in the docstrings of hoodwink.linear run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["hoodwink.linear.fool", "hoodwink.linear.toy", "hoodwink.linear.train"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
