"""The examples in the docstrings of hoodwink.studies.linear run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "hoodwink.studies.linear.experiments",
    "hoodwink.studies.linear.experiments.toy",
    "hoodwink.studies.linear.fool",
    "hoodwink.studies.linear.model",
    "hoodwink.studies.linear.toy",
    "hoodwink.studies.linear.train",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
