"""Start-up cost: the CLI answers --version and --help without importing torch.

Timing tests fail on a busy machine for no reason; what makes ``hoodwink
--version`` slow is importing torch (about 1 s of the 1.8-2.4 s it took), so
these tests check that, through the real entry point in a fresh interpreter:
``python -X importtime`` lists every module imported, and torch, numpy and
matplotlib must not be among them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import hoodwink

HEAVY = ("torch", "numpy", "matplotlib", "safetensors")


def imported_modules(*args: str, entry: str = "hoodwink") -> tuple[set[str], str]:
    """Top-level packages imported by ``python -m <entry> ARGS``, and its stdout."""
    return _importtime("-m", entry, *args)


def _importtime(*args: str) -> tuple[set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name.split(".")[0])
    assert "hoodwink" in names, "importtime listed no hoodwink module: the check is broken"
    return names, proc.stdout


@pytest.mark.parametrize("entry", ["hoodwink", "hoodwink.cli.main"])
def test_version_does_not_import_torch(entry: str) -> None:
    """`hoodwink --version` prints the version and imports none of the heavy libraries."""
    names, out = imported_modules("--version", entry=entry)
    assert out.strip() == f"hoodwink {hoodwink.__version__}"
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


@pytest.mark.parametrize("args", [["--help"], ["fool", "--help"], ["attack", "--help"],
                                  ["models", "--help"], ["linear", "--help"],
                                  ["dream", "--help"], ["transfer", "--help"]],
                         ids=lambda a: " ".join(a))
def test_help_does_not_import_torch(args: list[str]) -> None:
    """Help for the app and every command renders without torch or numpy."""
    names, out = imported_modules(*args)
    assert "Usage" in out
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_import_hoodwink_is_lazy() -> None:
    """`import hoodwink` alone does not import torch; the first public name does."""
    code = ("import sys, hoodwink; a = 'torch' in sys.modules; hoodwink.PGD; "
            "print(a, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert proc.stdout.split() == ["False", "True"]


def test_the_check_sees_torch_when_it_is_imported() -> None:
    """The importtime parsing is live: code that does import torch shows it."""
    names, _ = _importtime("-c", "import hoodwink; hoodwink.PGD")
    assert {"torch", "numpy"} <= names
