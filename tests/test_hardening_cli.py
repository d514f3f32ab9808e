"""Hardening of the CLI and its messages (issue 9, "CLI and messages").

Each test goes through the real entry point (``python -m hoodwink`` in a fresh
interpreter) or the public library function whose message is at stake, and
each failed before its fix: a traceback, a box of five lines, a raw Python
warning, a silent result, or a message that hid the problem.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _helpers import LINEAR_NET_SRC, uint8_samples
from hoodwink.data.mnist import load_mnist

WRAPPED_SRC = '''

def wrapped():
    from hoodwink import TorchClassifier
    return TorchClassifier(Net(), bounds=(0, 1))  # left in training mode: a warning
'''


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hoodwink", *args], capture_output=True, text=True, cwd=cwd,
        timeout=300,
    )


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """Assert exit 2 with a single ``error: ...`` line on stderr; return that line."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """net.py (a 3-class linear model on 2x3 inputs) and 12 samples in d.npz."""
    (tmp_path / "net.py").write_text(LINEAR_NET_SRC + WRAPPED_SRC)
    x = uint8_samples(12)
    np.savez(tmp_path / "d.npz", x=x, y=x[:, 0].argmax(1).astype(np.int64))
    return tmp_path


@pytest.fixture()
def digit(tmp_path: Path) -> Path:
    """An MNIST test digit as a greyscale PNG in ``tmp_path``."""
    x, _ = load_mnist("test")
    arr = (x[0, 0] * 255).round().to(torch.uint8).numpy()
    Image.fromarray(arr, mode="L").save(tmp_path / "d.png")
    return tmp_path / "d.png"


# ----------------------------------------------------------------- tracebacks
@pytest.mark.parametrize("target", ["²", "٣", "--5", "+-1", "1" * 5000])
def test_target_odd_digits_one_line(target: str, tmp_path: Path) -> None:
    """Superscripts and other non-ASCII digits, doubled signs and 5000-digit indices."""
    line = one_line_error(run("attack", "--target", target, "--n", "5", cwd=tmp_path))
    assert "class" in line.lower()


@pytest.mark.parametrize("text", ["²", "٣", "-1", "1" * 5000])
def test_resolve_imagenet_class_odd_digits(text: str) -> None:
    """The ImageNet resolver raises ConfigError, never int()'s ValueError."""
    from hoodwink.errors import ConfigError
    from hoodwink.zoo.imagenet import resolve_class

    with pytest.raises(ConfigError):
        resolve_class(text)


@pytest.mark.parametrize("eps", ["1" + "0" * 300 + "/1", "1e300", "3.5e38"])
def test_huge_eps_one_line(eps: str, tmp_path: Path) -> None:
    """A budget far beyond the input range is refused before any work, in one line."""
    line = one_line_error(run("attack", "--eps", eps, "--n", "5", cwd=tmp_path))
    assert "larger than the whole input range" in line
    assert not (tmp_path / "out").exists()


def test_eps_that_underflows_is_refused(tmp_path: Path) -> None:
    """1e-400 is not 0: refusing it beats attacking silently at eps 0."""
    line = one_line_error(run("attack", "--eps", "1e-400", "--n", "5", cwd=tmp_path))
    assert "too small for a float" in line


@pytest.mark.parametrize("threads", ["2147483648", "99999999999999999999999", "0"])
def test_threads_out_of_range_one_line(threads: str) -> None:
    line = one_line_error(run("--threads", threads, "models"))
    assert "--threads" in line


# ----------------------------------------------------------------- model names
def test_zoo_name_policy_is_shared() -> None:
    """One case-insensitive name policy: zoo.canonical_name, zoo.load and load_model agree."""
    from hoodwink import zoo
    from hoodwink.errors import ConfigError
    from hoodwink.models.loading import load_model

    assert zoo.canonical_name(" MNIST-CNN ") == "mnist-cnn"
    assert zoo.load("MNIST-Linear").num_classes == load_model(" MNIST-LINEAR").num_classes
    with pytest.raises(ConfigError, match="mnist-cnn"):
        zoo.canonical_name("mnist-cnm")


def test_fool_accepts_upper_case_zoo_name(digit: Path) -> None:
    """`fool --model MNIST-CNN` loads the greyscale model as `attack` does (it used to fail)."""
    r = run("fool", digit.name, "--model", "MNIST-CNN", "--eps", "0.3", "--steps", "20",
            "--json", cwd=digit.parent)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == "mnist-cnn"


def test_attack_records_canonical_zoo_name(tmp_path: Path) -> None:
    r = run("attack", "--model", " MNIST-CNN", "--eps", "0.1", "--n", "5", "--steps", "2",
            "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == "mnist-cnn"


# ----------------------------------------------------------------- usage errors
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("attack", "--epz", "3"), "No such option: --epz (did you mean --eps?)"),
        (("attack", "--n", "abc"), "Invalid value for '--n'"),
        (("--threads", "abc", "models"), "Invalid value for '--threads'"),
        (("fool",), "Missing argument 'image'"),
        (("nope",), "No such command 'nope'"),
    ],
)
def test_usage_error_is_one_line(args: tuple[str, ...], expected: str) -> None:
    """click's usage errors: one line with a --help hint, exit 2, no rich box."""
    line = one_line_error(run(*args))
    assert expected in line and "--help" in line
    assert "╭" not in line and "│" not in line


def test_help_and_bare_command_still_show_help() -> None:
    r = run("--help")
    assert r.returncode == 0 and "Usage" in r.stdout
    r = run("attack", "--help")
    assert r.returncode == 0 and "--eps" in r.stdout
    r = run()
    assert "Usage" in r.stdout + r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------- eps policy
@pytest.mark.parametrize("cmd", ["attack", "fool"])
def test_eps_larger_than_range_same_policy(cmd: str, digit: Path) -> None:
    """attack and fool refuse --eps 8 with the same message and the same hint."""
    args = ("attack", "--n", "5") if cmd == "attack" else ("fool", digit.name, "--model",
                                                           "mnist-cnn")
    line = one_line_error(run(*args, "--eps", "8", cwd=digit.parent))
    assert "eps 8 is larger than the whole input range [0, 1]" in line
    assert "did you mean 8/255?" in line
    assert not (digit.parent / "out").exists()


def test_sweep_refuses_before_running(tmp_path: Path) -> None:
    """A sweep with one budget above the range fails before the first attack runs."""
    r = run("attack", "--eps", "1/255,8", "--n", "5", cwd=tmp_path)
    assert "eps 8 is larger" in one_line_error(r)
    assert "PGD on" not in r.stderr


def test_l2_budget_within_its_diameter_runs(work: Path) -> None:
    """The range is measured in the attack's norm: L2 eps 2 fits the 2x3 box (diameter √6)."""
    r = run("-q", "attack", "--model", "net.py:factory", "--data", "d.npz", "--norm", "l2",
            "--eps", "2", "--steps", "3", "--json", cwd=work)
    assert r.returncode == 0, r.stderr
    r = run("-q", "attack", "--model", "net.py:factory", "--data", "d.npz", "--norm", "l2",
            "--eps", "3", "--steps", "3", cwd=work)
    assert "eps 3 is larger than the whole input range" in one_line_error(r)


def test_warning_is_one_clean_line(work: Path) -> None:
    """A library warning reaches the shell as one 'warning: ...' line, not Python's two."""
    r = run("-q", "attack", "--model", "net.py:wrapped", "--data", "d.npz", "--eps", "0.5",
            "--json", cwd=work)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [ln for ln in lines if ln.startswith("warning: ")], r.stderr
    assert any("training mode" in ln for ln in lines), r.stderr
    assert "warnings.warn" not in r.stderr and ".py:" not in r.stderr


# ----------------------------------------------------------------- fool confidence
def test_fool_prints_confidence_reached(digit: Path) -> None:
    """A 'success' says how confident the model is in the new top-1 class."""
    r = run("fool", digit.name, "--model", "mnist-cnn", "--eps", "auto", "--steps", "3",
            "--out", "adv.png", cwd=digit.parent)
    assert r.returncode == 0, r.stderr
    rec = json.loads((digit.parent / "adv.json").read_text())
    top = rec["after"][0]
    assert f"{top['name']} with {top['probability']:.1%} confidence" in r.stdout
    if top["probability"] < 0.5:
        assert "warning: " in r.stderr and "--steps" in r.stderr


# ----------------------------------------------------------------- messages
def test_bounds_message_shows_the_difference() -> None:
    """1 + 1e-7 is outside [0, 1]; the message prints enough digits to show it."""
    import hoodwink
    from hoodwink.errors import OutOfBoundsError

    clf = hoodwink.TorchClassifier(torch.nn.Linear(2, 2).eval(), bounds=(0, 1))
    x = torch.tensor([[0.5, 1 + 1e-7]], dtype=torch.float64)
    with pytest.raises(OutOfBoundsError) as info:
        hoodwink.FGSM()(clf, x, torch.tensor([0]), eps=0.1)
    msg = str(info.value)
    assert "[0.5, 1.0000001]" in msg and "[0, 1]" in msg


def test_float32_overflow_is_named() -> None:
    """1e39 is finite for Python but not for float32: say so, not 'must be finite'."""
    import hoodwink
    from hoodwink.errors import ConfigError

    with pytest.raises(ConfigError, match="float32"):
        hoodwink.TorchClassifier(torch.nn.Linear(2, 2), bounds=(0, 1e39))


def test_format_apart() -> None:
    from hoodwink._validation import format_apart, parse_index

    assert format_apart(1 + 1e-7, 1.0) == ("1.0000001", "1")
    assert format_apart(0.5, 1.0) == ("0.5", "1")
    assert format_apart(-2.1, 0.0) == ("-2.1", "0")
    assert parse_index(" +7") == 7 and parse_index("²") is None and parse_index("٣") is None
    assert parse_index("9" * 5000) == 10**100


# ----------------------------------------------------------------- class names
@pytest.mark.parametrize(
    ("name", "index"),
    [("lighthouse", 437), ("hot dog", 934), ("Hot-Dog", 934), ("taxi", 468), ("goldfish", 1),
     ("crane", 517), ("Cardigan", 264), ("cardigan", 474), ("partridge", 86),
     ("Ailuropoda melanoleuca", 388)],
)
def test_wordnet_lemmas_resolve(name: str, index: int) -> None:
    """Every WordNet lemma names its class; a class's own name wins over another's synonym."""
    from hoodwink.zoo.imagenet import resolve_class

    assert resolve_class(name) == index


@pytest.mark.parametrize(("name", "candidates"),
                         [("panda", ("387", "388")), ("crawfish", ("123", "124"))])
def test_ambiguous_lemma_lists_candidates(name: str, candidates: tuple[str, ...]) -> None:
    from hoodwink.errors import ConfigError
    from hoodwink.zoo.imagenet import resolve_class

    with pytest.raises(ConfigError, match="ambiguous") as info:
        resolve_class(name)
    assert all(c in str(info.value) for c in candidates)


def test_unknown_class_still_suggests() -> None:
    from hoodwink.errors import ConfigError
    from hoodwink.zoo.imagenet import resolve_class

    with pytest.raises(ConfigError, match="Did you mean") as info:
        resolve_class("lighthous")
    assert "437" in str(info.value)


def test_synonyms_cover_every_class() -> None:
    from hoodwink.zoo.imagenet import class_names, class_synonyms

    syn = class_synonyms()
    assert len(syn) == 1000 and all(syn)
    assert "lighthouse" in syn[437] and class_names()[437] == "beacon"


@pytest.mark.parametrize("argv,given", [(["attack", "--n", "abc"], "'abc'"),
                                        (["attack", "--steps=x1"], "'x1'"),
                                        (["--threads", "0", "models"], "'0'")])
def test_bad_option_values_are_named_in_the_message(argv: list[str], given: str) -> None:
    """click's "Input should be a valid integer" did not say what the user typed."""
    msg = one_line_error(run(*argv))
    assert f"Got {given}." in msg
