"""Adversarial training (hoodwink.training) and the ``adv-train`` command."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from torch import nn
from typer.testing import CliRunner

import hoodwink
from hoodwink.errors import ConfigError, InputError, OutOfBoundsError, ShapeError
from hoodwink.training import RECORD_SCHEMA, TrainingResult, adversarial_train

pytestmark = pytest.mark.usefixtures("one_thread")

EPS = 0.1
FEATURES = 41


def _robust_dataset(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes: one robust feature and 40 weak, non-robust ones (Tsipras et al., 2019).

    Feature 0 sits at 0.25 or 0.75 and agrees with the class 80% of the time: an L∞
    change of 0.1 cannot move it across 0.5. Features 1..40 are 0.5 -/+ 0.05 plus
    N(0, 0.1) noise: each is weak, but a change of 0.1 moves every one of them past
    the other class's mean. A plain linear model leans on the weak features and falls
    to PGD at eps 0.1; a robust one must rest on feature 0 (robust accuracy 0.8).
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    sign = (2 * y - 1).float()
    agree = torch.where(torch.rand(n, generator=g) < 0.8, 1.0, -1.0)
    robust = 0.5 + 0.25 * sign * agree
    weak = 0.5 + 0.05 * sign[:, None] + 0.1 * torch.randn(n, FEATURES - 1, generator=g)
    x = torch.cat([robust[:, None], weak], dim=1).clamp(0, 1)
    return x, y


def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(FEATURES, 2)


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train(module: nn.Module, x: torch.Tensor, y: torch.Tensor, **kw: Any) -> TrainingResult:
    args: dict[str, Any] = {"eps": EPS, "epochs": 2, "lr": 0.05, "batch_size": 32}
    args.update(kw)
    return adversarial_train(module, x, y, **args)


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return _robust_dataset(400, seed=1)


# ----------------------------------------------------------------------------- no side effects
def test_the_callers_module_and_global_state_are_untouched(
        data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    net = nn.Sequential(nn.Linear(FEATURES, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    net.train()  # a module handed over in training mode stays in it
    net[0].bias.requires_grad_(False)  # and a frozen parameter stays frozen
    before = _state(net)
    x0, y0 = x.clone(), y.clone()
    torch_rng = torch.random.get_rng_state()
    np_rng = np.random.get_state()  # noqa: NPY002 - the global state is what is under test
    threads = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no TrainingModeWarning, no EpsScaleWarning
        res = _train(net, x, y)
    assert res.module is not net
    assert _same(_state(net), before)
    assert net.training and all(m.training for m in net.modules())
    assert [p.requires_grad for p in net.parameters()] == [True, False, True, True]
    assert all(p.grad is None for p in net.parameters())
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert torch.equal(torch.random.get_rng_state(), torch_rng)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_rng,  # noqa: NPY002
                                                    strict=True))
    assert torch.get_num_threads() == threads
    # The copy is trained (its weights moved) and handed back in eval mode.
    assert not _same(_state(res.module), before)
    assert not res.module.training
    assert torch.equal(res.module[0].bias, before["0.bias"])  # frozen in the copy too


def test_same_seed_same_weights_other_seed_other_weights(
        data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    net = nn.Sequential(nn.Linear(FEATURES, 8), nn.Dropout(0.3), nn.ReLU(), nn.Linear(8, 2))
    a = _train(net, x, y, seed=3)
    b = _train(net, x, y, seed=3)
    c = _train(net, x, y, seed=4)
    assert _same(_state(a.module), _state(b.module))
    assert [h.loss for h in a.history] == [h.loss for h in b.history]
    assert not _same(_state(a.module), _state(c.module))


# ----------------------------------------------------------------------------- efficacy
def test_adversarial_training_beats_its_plainly_trained_twin_under_pgd() -> None:
    x, y = _robust_dataset(600, seed=1)
    x_test, y_test = _robust_dataset(300, seed=2)
    common: dict[str, Any] = {"epochs": 20, "lr": 0.05, "batch_size": 64, "seed": 0}
    plain = adversarial_train(_linear(), x, y, eps=0.0, **common)
    robust = adversarial_train(_linear(), x, y, eps=EPS, steps=5, **common)
    pgd = hoodwink.PGD(steps=20, seed=0)
    plain_res = pgd(plain.classifier(), x_test, y_test, eps=EPS)
    robust_res = pgd(robust.classifier(), x_test, y_test, eps=EPS)
    # Both learn the task on clean inputs (feature 0 alone gives 0.8).
    assert plain_res.clean_correct.float().mean() > 0.75
    assert robust_res.clean_correct.float().mean() > 0.75
    # Under attack the plain model collapses and the robust one holds.
    assert plain_res.robust_accuracy() < 0.3
    assert robust_res.robust_accuracy() > 0.7
    # A linear model's smallest L∞ adversarial change is margin / ‖w_1 - w_0‖₁: PGD's
    # verdict on the robust model matches the closed form wherever it is not borderline.
    w = robust.module.weight.detach().double()
    b = robust.module.bias.detach().double()
    d_w, d_b = w[1] - w[0], b[1] - b[0]
    signed = (2 * y_test - 1).double() * (x_test.double() @ d_w + d_b)
    # The box [0, 1] can only make an attack harder: where the unconstrained distance
    # exceeds eps, PGD must fail; where the clamped worst case flips the sign, it must win.
    distance = signed / d_w.abs().sum()
    worst = x_test.double() - EPS * torch.sign(d_w) * (2 * y_test - 1).double()[:, None]
    flipped = (2 * y_test - 1).double() * (worst.clamp(0, 1) @ d_w + d_b) < 0
    assert not robust_res.success[distance > EPS * 1.001].any()
    assert robust_res.success[flipped & (signed > 0)].all()
    # History: the adversarial accuracy of training is below the clean one.
    last = robust.history[-1]
    assert last.adversarial_accuracy is not None
    assert last.adversarial_accuracy < last.clean_accuracy


def test_clean_fraction_one_is_plain_training(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    plain = _train(_linear(), x, y, eps=0.0)
    all_clean = _train(_linear(), x, y, clean_fraction=1.0)
    half = _train(_linear(), x, y, clean_fraction=0.5)
    assert _same(_state(plain.module), _state(all_clean.module))
    assert all(h.adversarial_accuracy is None for h in all_clean.history)
    assert not _same(_state(plain.module), _state(half.module))
    assert all(h.adversarial_accuracy is not None for h in half.history)


def test_eps_warmup_ramps_linearly_batch_by_batch(
        data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    res = _train(_linear(), x[:64], y[:64], epochs=4, eps_warmup_epochs=2, batch_size=16)
    # 4 batches per epoch, 8 warm-up batches: the last batch of epoch 1 is the 4th.
    assert [h.eps for h in res.history] == [EPS * 4 / 8, EPS, EPS, EPS]
    assert res.config["eps_warmup_epochs"] == 2


def test_progress_and_history(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    seen: list[tuple[int, int, str]] = []
    res = _train(_linear(), x[:100], y[:100], epochs=3, batch_size=40,
                 progress=lambda d, t, m: seen.append((d, t, m)))
    assert [d for d, _, _ in seen] == list(range(1, 10))  # 3 batches per epoch
    assert {t for _, t, _ in seen} == {9}
    assert seen[-1][2].startswith("epoch 3/3")
    assert [h.epoch for h in res.history] == [1, 2, 3]
    for h in res.history:
        assert 0 <= h.clean_accuracy <= 1 and h.adversarial_accuracy is not None
        assert 0 <= h.adversarial_accuracy <= 1 and math.isfinite(h.loss) and h.time_s >= 0


def test_levels_put_training_examples_on_the_grid() -> None:
    x, y = _robust_dataset(64, seed=5)
    x = torch.round(x * 255) / 255
    seen: list[torch.Tensor] = []

    class Spy(nn.Linear):
        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            if self.training:
                seen.append(inp.detach().clone())
            return super().forward(inp)

    torch.manual_seed(0)
    _train(Spy(FEATURES, 2), x, y, levels=256, epochs=1)
    assert len(seen) == 2
    for batch in seen:
        assert torch.equal(torch.round(batch * 255) / 255, batch)  # grid points
        assert batch.min() >= 0 and batch.max() <= 1


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kw", "name"),
    [({"eps": -0.1}, "eps"), ({"eps": float("nan")}, "eps"), ({"norm": "l3"}, "norm"),
     ({"steps": 0}, "steps"), ({"stepsize": 0.0}, "stepsize"), ({"epochs": 0}, "epochs"),
     ({"epochs": 1.5}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"),
     ({"lr": "fast"}, "lr"), ({"weight_decay": -1.0}, "weight_decay"),
     ({"lr_schedule": "step"}, "lr_schedule"), ({"seed": -1}, "seed"),
     ({"clean_fraction": 1.5}, "clean_fraction"),
     ({"eps_warmup_epochs": 3}, "eps_warmup_epochs"), ({"device": "gpu"}, "device"),
     ({"levels": 1}, "levels"), ({"bounds": (1, 0)}, "bounds"),
     ({"progress": 3}, "progress")],
)
def test_bad_parameters_raise_config_errors_that_name_them(
        data: tuple[torch.Tensor, torch.Tensor], kw: dict[str, Any], name: str) -> None:
    x, y = data
    with pytest.raises(ConfigError, match=f"'?{name}'?"):
        _train(_linear(), x[:8], y[:8], **kw)


def test_bad_modules_and_budgets(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    with pytest.raises(ConfigError, match="instance"):
        _train(nn.Linear, x, y)  # type: ignore[arg-type]
    frozen = _linear().requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable"):
        _train(frozen, x, y)
    with pytest.raises(ConfigError, match=r"did you mean 8/255"):
        _train(_linear(), x, y, eps=8)


@pytest.mark.parametrize(
    ("xy", "error", "needle"),
    [(lambda x, y: (x.tolist(), y), InputError, "float tensor"),
     (lambda x, y: (x, y.tolist()), InputError, "int tensor"),
     (lambda x, y: (x[:0], y[:0]), InputError, "no samples"),
     (lambda x, y: (x, y[:-1]), InputError, "one label per sample"),
     (lambda x, y: (x + 1, y), OutOfBoundsError, "outside the model bounds"),
     (lambda x, y: (x, y.float()), ShapeError, "integers"),
     (lambda x, y: (x, y + 2), InputError, "outside the model's classes"),
     (lambda x, y: (x[:, :5], y), ShapeError, "raised RuntimeError")],
)
def test_bad_data_raise_input_errors(data: tuple[torch.Tensor, torch.Tensor], xy: Any,
                                     error: type[Exception], needle: str) -> None:
    x, y = xy(*data)
    with pytest.raises(error, match=needle):
        _train(_linear(), x, y)


def test_off_grid_data_with_levels(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    with pytest.raises(InputError, match="grid"):
        _train(_linear(), x, y, levels=256)


def test_numpy_inputs_are_accepted(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    a = _train(_linear(), x[:64], y[:64], epochs=1)
    b = _train(_linear(), x[:64].numpy(), y[:64].numpy(), epochs=1)
    assert _same(_state(a.module), _state(b.module))


# ----------------------------------------------------------------------------- record, save
def test_evaluate_save_and_record(tmp_path: Path,
                                  data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    res = _train(_linear(), x, y, epochs=3)
    ev = res.evaluate(x[:50], y[:50], eps=[0.0, EPS], steps=10)
    pred = res.module(x[:50]).argmax(1)
    clean = float((pred == y[:50]).double().mean())
    assert ev["n"] == 50 and ev["eps"] == [0.0, EPS]
    assert ev["clean_accuracy"] == clean == ev["robust_accuracy"][0]
    assert ev["robust_accuracy"][1] <= clean
    weights, record = res.save(tmp_path / "deep" / "net.safetensors", evaluation=ev,
                               run={"arch": "x"})
    assert weights.is_file() and record == tmp_path / "deep" / "net.json"
    rec = json.loads(record.read_text())
    assert rec["schema"] == RECORD_SCHEMA
    assert rec["config"]["eps"] == EPS and rec["config"]["n_train"] == 400
    assert rec["evaluation"] == ev and rec["run"] == {"arch": "x"}
    assert len(rec["history"]) == 3
    from safetensors.torch import load_file

    loaded = load_file(str(weights))
    assert _same(loaded, _state(res.module))
    with pytest.raises(ConfigError, match="safetensors"):
        res.save(tmp_path / "net.pt")


# ----------------------------------------------------------------------------- command
def _app() -> typer.Typer:
    from hoodwink.cli.attack import register as register_attack
    from hoodwink.cli.train import register

    app = typer.Typer()
    register(app)
    register_attack(app)
    return app


def test_cli_adv_train_writes_weights_that_hoodwink_attack_loads(tmp_path: Path) -> None:
    out = tmp_path / "robust.safetensors"
    args = ["adv-train", "--epochs", "1", "--n", "64", "--steps", "2", "--eval-n", "20",
            "--eval-steps", "3", "--levels", "256", "--out", str(out), "--json"]
    r = CliRunner().invoke(_app(), args)
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["schema"] == RECORD_SCHEMA
    assert rec["config"]["n_train"] == 64 and rec["config"]["eps"] == 0.3
    assert rec["run"] == {"arch": "hoodwink.zoo.mnist:MnistCNN", "data": "mnist (train split)",
                          "n_data": 64}
    ev = rec["evaluation"]
    assert ev["n"] == 20 and ev["data"] == "mnist" and ev["eps"] == [0.3]
    assert 0 <= ev["robust_accuracy"][0] <= ev["clean_accuracy"] <= 1
    assert json.loads((tmp_path / "robust.json").read_text())["history"] == rec["history"]
    a = CliRunner().invoke(_app(), ["attack", "--model", str(out), "--arch",
                                    "hoodwink.zoo.mnist:MnistCNN", "--data", "mnist", "--n",
                                    "20", "--steps", "3", "--eps", "0.3", "--levels", "256",
                                    "--out", str(tmp_path / "attack"), "--json"])
    assert a.exit_code == 0, a.output
    # The attack sees the same network: its clean accuracy on the same 20 digits agrees.
    assert json.loads(a.stdout)["clean_accuracy"] == ev["clean_accuracy"]


def test_cli_adv_train_summary_table(tmp_path: Path) -> None:
    out = tmp_path / "r.safetensors"
    r = CliRunner().invoke(_app(), ["adv-train", "--epochs", "1", "--n", "32", "--steps", "1",
                                    "--eval-n", "10", "--eval-steps", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "clean acc" in text and "held-out (mnist, n=10)" in text
    assert "hoodwink attack --model" in r.stdout.replace("\n", "")
    assert out.is_file() and out.with_suffix(".json").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--eps", "8"], "did you mean 8/255"), (["--epochs", "0"], "epochs"),
     (["--out", "x.pt"], ".safetensors"), (["--bounds", "0"], "--bounds"),
     (["--arch", "nowhere_pkg:Net"], "Cannot import"), (["--n", "0"], "'n'"),
     (["--norm", "l5"], "norm"), (["--eval-steps", "0"], "steps"), (["--lr", "nan"], "lr"),
     (["--eval-n", "5000"], "n=5000")],
)
def test_cli_adv_train_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    r = CliRunner().invoke(_app(), ["adv-train", "--out", str(tmp_path / "w.safetensors"),
                                    *args])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and needle in r.output
    assert not (tmp_path / "w.safetensors").exists()
