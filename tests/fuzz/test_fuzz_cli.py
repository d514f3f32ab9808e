"""Every command through the real app (typer's CliRunner) with generated argument lists."""

import subprocess
import sys

import pytest

from ._gen_cli import blackbox_cli_calls, cli_calls
from ._suite import fuzz_pair

test_cli, test_cli_long = fuzz_pair(cli_calls(), "cli", examples=8)
test_cli_message, test_cli_message_long = fuzz_pair(
    cli_calls(strict_message=True), "cli_message", examples=4)
test_cli_blackbox, test_cli_blackbox_long = fuzz_pair(
    blackbox_cli_calls(), "cli_blackbox", examples=8)


@pytest.mark.parametrize("argv", [["attack", "--eps", "abc", "--model", "mnist-linear"],
                                  ["linear", "toy", "--alpha", "nan", "--json"]])
def test_cli_subprocess_no_traceback(argv: list[str]) -> None:
    """The console script itself (a few cases): exit 0 or 2, never a traceback."""
    r = subprocess.run([sys.executable, "-m", "hoodwink", *argv], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode in (0, 2), r.stderr
    assert "Traceback" not in r.stderr
