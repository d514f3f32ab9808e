"""The library's progress callback on attacks: off by default, exact counts when on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hoodwink import FGSM, PGD, TorchClassifier
from hoodwink.errors import ConfigError

Call = tuple[int, int, str]


def model_and_data(n: int = 12) -> tuple[TorchClassifier, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 4, 16), nn.ReLU(), nn.Linear(16, 3))
    model = TorchClassifier(net.eval(), bounds=(0, 1))
    x = torch.rand(n, 2, 3, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x).argmax(1)
    return model, x, y


def recorder() -> tuple[list[Call], object]:
    calls: list[Call] = []
    return calls, lambda d, t, m: calls.append((d, t, m))


def test_pgd_reports_every_step_without_early_stop() -> None:
    """steps*restarts calls, done = 1..total in order, total fixed, the last done == total."""
    model, x, y = model_and_data()
    calls, cb = recorder()
    PGD(steps=5, restarts=2, early_stop=False, random_start=True)(
        model, x, y, eps=1e-4, progress=cb)  # too small to fool anyone: both restarts run
    assert [c[0] for c in calls] == list(range(1, 11))
    assert {c[1] for c in calls} == {10}
    assert all(isinstance(c[2], str) for c in calls)


def test_pgd_ends_at_total_when_it_stops_early() -> None:
    """Early stopping skips steps; progress never goes back and still ends at done == total."""
    model, x, y = model_and_data()
    calls, cb = recorder()
    r = PGD(steps=30, restarts=3)(model, x, y, eps=1.0, progress=cb)
    assert bool(r.success.all())  # eps = 1 fools everything, in few steps
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[-1] == 90 and len(done) < 90
    assert {c[1] for c in calls} == {90}


def test_fgsm_reports_once() -> None:
    model, x, y = model_and_data()
    calls, cb = recorder()
    FGSM()(model, x, y, eps=0.1, progress=cb)
    assert [(d, t) for d, t, _ in calls] == [(1, 1)]


@pytest.mark.parametrize("eps", [0.0, 0.05])
def test_progress_does_not_change_the_result(eps: float) -> None:
    """Same x_adv, success and queries with and without a callback."""
    model, x, y = model_and_data()
    a = PGD(steps=7, seed=3)(model, x, y, eps=eps)
    calls, cb = recorder()
    b = PGD(steps=7, seed=3)(model, x, y, eps=eps, progress=cb)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)
    assert torch.equal(a.success, b.success)
    assert calls[-1][:2] == (7, 7)


def test_progress_must_be_callable() -> None:
    model, x, y = model_and_data()
    with pytest.raises(ConfigError, match="'progress'"):
        PGD(steps=2)(model, x, y, eps=0.1, progress="yes")  # type: ignore[arg-type]


def test_an_error_in_the_callback_propagates_and_restores_the_model() -> None:
    """The callback's own exception reaches the caller; the model's mode is restored."""
    model, x, y = model_and_data()
    model.module.train()

    def boom(done: int, total: int, message: str) -> None:
        raise KeyboardInterrupt

    with pytest.warns(Warning), pytest.raises(KeyboardInterrupt):
        PGD(steps=3)(model, x, y, eps=0.1, progress=boom)
    assert model.module.training
    assert all(p.requires_grad for p in model.module.parameters())


def test_fool_cli_progress_when_piped(tmp_path: Path) -> None:
    """`hoodwink fool` with stderr piped prints its final progress line; --quiet prints none."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from hoodwink.data.mnist import load_mnist

    xs, ys = load_mnist("test")
    Image.fromarray((xs[0, 0] * 255).round().to(torch.uint8).numpy(), mode="L").save(
        tmp_path / "d.png")
    target = str((int(ys[0]) + 1) % 10)
    args = [sys.executable, "-m", "hoodwink", "fool", "d.png", "--model", "mnist-cnn",
            "--target", target, "--eps", "0.3"]
    loud = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert "fooling mnist-cnn on d.png: 100%" in loud.stderr
    quiet = subprocess.run([*args[:3], "--quiet", *args[3:]], capture_output=True, text=True,
                           cwd=tmp_path, timeout=300)
    assert quiet.returncode == 0 and "fooling" not in quiet.stderr
    assert np.asarray(Image.open(tmp_path / "out" / "fool" / "d-adv.png")).shape == (28, 28)
