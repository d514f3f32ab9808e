"""Closed forms of the template attack and of minimal distances, checked against the model."""

from __future__ import annotations

import math

import pytest
import torch

import hoodwink
from hoodwink.errors import ConfigError
from hoodwink.studies.linear import (
    LinearModel,
    alpha_curve,
    fooling_confidence,
    measured_minimal_alpha,
    minimal_alpha,
    minimal_distance,
    template_attack,
    template_direction,
)


def _model(c: int = 5, shape: tuple[int, ...] = (1, 3, 4), seed: int = 0) -> LinearModel:
    g = torch.Generator().manual_seed(seed)
    d = int(torch.tensor(shape).prod())
    return LinearModel(torch.randn(c, d, generator=g), torch.randn(c, generator=g) * 0.1, shape)


def _inputs(n: int = 40, shape: tuple[int, ...] = (1, 3, 4), seed: int = 1) -> torch.Tensor:
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("direction", ["target", "difference"])
def test_closed_form_alpha_matches_measured(direction: str) -> None:
    m, x = _model(), _inputs()
    t = (m.predict(x) + 1) % m.num_classes
    a = minimal_alpha(m, x, t, direction=direction)  # type: ignore[arg-type]
    fin = torch.isfinite(a)
    assert fin.sum() >= 10
    meas = measured_minimal_alpha(m, x, t, direction=direction,  # type: ignore[arg-type]
                                  alpha_max=float(a[fin].max()) * 3, grid=3000)
    # The same samples never flip, and the others agree to bisection precision.
    never_meas = ~torch.isfinite(meas)
    assert torch.equal(~fin, never_meas) or bool((a[never_meas & fin] > 0).all())
    both = fin & torch.isfinite(meas)
    assert torch.allclose(a[both], meas[both], rtol=1e-5, atol=1e-7)
    # Just past alpha the target wins; just before it does not (checked in float64).
    d = template_direction(m, x, t, direction=direction).reshape(x.shape[0], -1)  # type: ignore[arg-type]
    x64, d64 = x.reshape(x.shape[0], -1).double(), d.double()
    w64, b64 = m.weight.double(), m.bias.double()
    for i in (both & (a > 0)).nonzero()[:, 0].tolist():
        up = (x64[i] + a[i] * (1 + 1e-7) * d64[i]) @ w64.T + b64
        down = (x64[i] + a[i] * (1 - 1e-7) * d64[i]) @ w64.T + b64
        assert int(up.argmax()) == int(t[i])
        assert int(down.argmax()) != int(t[i])


def test_never_flipping_target_gives_inf() -> None:
    # Class 2's template is dominated along its own direction by class 1 (w1 = 2 w2).
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    m = LinearModel(w, torch.zeros(3), (2,))
    x = torch.tensor([[1.0, 0.0]])
    assert math.isinf(float(minimal_alpha(m, x, 2)[0]))
    assert math.isinf(float(measured_minimal_alpha(m, x, 2, alpha_max=100.0)[0]))
    # Class 1 is reachable: along w_1, z_1 - z_0 = 4 alpha - 1 > 0 from alpha = 1/4.
    assert float(minimal_alpha(m, x, 1)[0]) == pytest.approx(0.25)


def test_already_target_gives_zero() -> None:
    m, x = _model(), _inputs(5)
    assert torch.equal(minimal_alpha(m, x, m.predict(x)), torch.zeros(5, dtype=torch.float64))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_minimal_distance_is_exact(norm: str) -> None:
    m, x = _model(), _inputs()
    dist, nearest = minimal_distance(m, x, norm=norm)  # type: ignore[arg-type]
    k = m.predict(x)
    w = m.weight.to(torch.float64)
    diff = w[nearest] - w[k]
    # The optimal perturbation: L2 along the difference, L∞ along its sign.
    if norm == "l2":
        step = diff / diff.norm(dim=1, keepdim=True)
    else:
        step = diff.sign()
    x64 = x.reshape(x.shape[0], -1).to(torch.float64)
    b = m.bias.to(torch.float64)
    over = (x64 + (dist * 1.0001)[:, None] * step) @ w.T + b
    under = (x64 + (dist * 0.999)[:, None] * step) @ w.T + b
    assert bool((over.argmax(dim=1) != k).all())
    assert bool((under.argmax(dim=1) == k).all())
    # And no random direction of the same size does better.
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        r = torch.randn(x64.shape, generator=g, dtype=torch.float64)
        r = r / (r.norm(dim=1, keepdim=True) if norm == "l2" else r.abs().amax(1, keepdim=True))
        z = (x64 + (dist * 0.999)[:, None] * r) @ w.T + b
        assert bool((z.argmax(dim=1) == k).all())


def test_pgd_agrees_with_closed_form_distance() -> None:
    m, x = _model(), _inputs(60)
    clf = m.as_classifier(bounds=(-100.0, 100.0))
    dist, _ = minimal_distance(m, x, norm="linf")
    eps = float(dist.median())
    r = hoodwink.PGD(norm="linf", steps=100, loss="margin")(clf, x, m.predict(x), eps=eps)
    assert bool(r.success[dist < eps * 0.97].all())
    assert not bool(r.success[dist > eps * 1.0001].any())


def test_fooling_confidence_and_curve() -> None:
    m, x = _model(), _inputs()
    conf0, fooled0 = fooling_confidence(m, x, eps=0.0)
    p = m.probabilities(x).to(torch.float64)
    k = p.argmax(dim=1)
    p_wrong = p.scatter(1, k[:, None], -1.0).amax(dim=1)
    assert torch.allclose(conf0, p_wrong, atol=1e-6) and not fooled0.any()
    conf, fooled = fooling_confidence(m, x, eps=0.5)
    assert bool((conf >= conf0 - 1e-9).all()) and fooled.any()
    with pytest.raises(ConfigError):
        fooling_confidence(m, x, eps=-1.0)
    curve = alpha_curve(m, x[:3], 1, torch.linspace(0, 5, 11))
    assert curve.target_probability.shape == (3, 11)
    assert curve.first_alpha_reaching(0.0).tolist() == [0.0, 0.0, 0.0]


def test_bad_direction_is_a_config_error() -> None:
    m, x = _model(), _inputs(2)
    with pytest.raises(ConfigError, match="direction"):
        minimal_alpha(m, x, 1, direction="sideways")  # type: ignore[arg-type]


def test_template_attack_adds_the_template() -> None:
    m, x = _model(), _inputs(3)
    xa = template_attack(m, x, 2, 0.5)
    assert torch.allclose(xa, x + 0.5 * m.templates()[2][None])
    xd = template_attack(m, x, 2, 0.5, torch.tensor([0, 1, 3]), direction="difference")
    assert torch.allclose(xd[1], x[1] + 0.5 * (m.templates()[2] - m.templates()[1]))
    xc = template_attack(m, x, 2, 100.0, clip=True)
    assert float(xc.min()) >= 0 and float(xc.max()) <= 1
