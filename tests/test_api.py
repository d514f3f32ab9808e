"""The public API: explicit, sorted, importable; docstring examples run."""

import doctest
import importlib
import pkgutil

import pytest

import hoodwink


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and every name in it exists."""
    assert hoodwink.__all__ == sorted(hoodwink.__all__)
    for n in hoodwink.__all__:
        assert hasattr(hoodwink, n), n


def test_public_api_names() -> None:
    """The documented entry points are exported."""
    for n in ("TorchClassifier", "Normalize", "FGSM", "PGD", "AttackResult", "Classifier",
              "errors"):
        assert n in hoodwink.__all__


def test_py_typed_ships() -> None:
    """py.typed marks the package as typed."""
    from importlib.resources import files

    assert files("hoodwink").joinpath("py.typed").is_file()


def _modules() -> list[str]:
    out = []
    for m in pkgutil.walk_packages(hoodwink.__path__, "hoodwink."):
        if ".cli" in m.name or m.name.endswith("__main__"):
            continue
        out.append(m.name)
    return sorted(out)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    """Every example in a docstring runs and prints what it says."""
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} docstring example(s) failed in {name}"
