"""SimBA: closed-form efficacy, exact query budgets, grids, the DCT basis and its order."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from _helpers import (
    LabelsOnly,
    Recorder,
    assert_seed_reproduces,
    assert_within_budget,
    best_target_margin,
    binary_distance,
    binary_linear,
    mislabelled_batch,
    on_grid,
    progress_of,
    tabular_grid,
    tiny_case,
)
from hoodwink import TorchClassifier
from hoodwink.attacks.simba import SimBA, _dct_matrix, _dct_order
from hoodwink.errors import CapabilityError, ConfigError

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # The attack reports the predictions it saw at the points it returns; a mismatch
    # with the verification pass would mean it returned a point it never queried.
    pytest.mark.filterwarnings("error::hoodwink.errors.StochasticModelWarning"),
]


# ---------------------------------------------------------------------- efficacy
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_linf_pixel_reaches_the_closed_form(loss: str) -> None:
    """Binary linear model, L∞, step = eps: one pass over the features moves each one to
    the end of the ball that lowers the true class, i.e. to the optimal corner. So a sample
    is fooled exactly when eps exceeds its closed-form distance |w . x| / ||w||_1."""
    d = 16
    lin, w = binary_linear(d)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, d, generator=g, dtype=torch.float64) - 0.5
    model = TorchClassifier(lin, bounds=(-2.0, 2.0))
    y = (x @ w > 0).long()
    dist = binary_distance(w, x, "linf")
    eps = float(dist.quantile(0.5))
    r = SimBA(norm="linf", step=eps, loss=loss, max_queries=2 * d + 2)(model, x, y, eps=eps)
    easy, hard = dist < eps * 0.98, dist > eps * 1.02
    assert int(easy.sum()) >= 15 and int(hard.sum()) >= 15
    assert bool(r.success[easy].all())
    assert not bool(r.success[hard].any())
    assert bool((r.queries <= 2 * d + 2).all())


@pytest.mark.parametrize("basis", ["pixel", "dct"])
def test_l2_success_and_beats_a_noop(basis: str) -> None:
    """Images, L2: where the closed-form distance |w . x| / ||w||_2 is well below eps,
    >= 90% are fooled (none is at x); the perturbation never exceeds eps."""
    shape = (48, 2, 6, 6)
    d = math.prod(shape[1:])
    lin, w = binary_linear(d, seed=4)
    net = nn.Sequential(nn.Flatten(), lin).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 0.5 + 0.25
    flat = x.flatten(1)
    x = x - ((flat @ w) / (w @ w))[:, None, None, None] * w.reshape(shape[1:]) \
        * torch.linspace(0.2, 1.0, shape[0], dtype=torch.float64)[:, None, None, None]
    model = TorchClassifier(net, bounds=(-1.0, 2.0))
    y = (x.flatten(1) @ w > 0).long()
    dist = binary_distance(w, x, "l2")
    eps = float(dist.quantile(0.6))
    r = SimBA(norm="l2", basis=basis, step=eps / 2, max_queries=400)(model, x, y, eps=eps)
    easy = dist < eps / 2
    assert int(easy.sum()) >= 10
    assert float(r.success[easy].float().mean()) >= 0.9
    assert not bool(r.success[dist > eps].any())
    assert bool(r.clean_correct.all())
    assert bool((r.perturbation_norm <= eps * (1 + 1e-6)).all())


def test_targeted_and_loss_never_worse() -> None:
    """Targeted on 4 classes: >= 90% of the targets an LP says are reachable (with room)
    are reached, none of the others; successes predict their target, and the returned
    point's loss is never below the loss at x (moves only improve)."""
    torch.manual_seed(0)
    net = nn.Linear(10, 4).eval()
    with torch.no_grad():
        net.weight.mul_(5)
        net.bias.mul_(5)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(30, 10, generator=g)
    model = TorchClassifier(net, bounds=(0, 1))
    with torch.no_grad():
        y = net(x).argmax(1)
    target = (y + 1) % 4
    eps = 0.6
    room = best_target_margin(net, x, target, eps, 0.0, 1.0)
    easy, impossible = room > 0.25, room < 0
    assert int(easy.sum()) >= 8 and int(impossible.sum()) >= 5
    r = SimBA(norm="linf", step=0.2, max_queries=200)(model, x, y, target=target, eps=eps)
    assert float(r.success[easy].float().mean()) >= 0.9
    assert not bool(r.success[impossible].any())
    assert torch.equal(r.pred_adv[r.success], target[r.success])
    with torch.no_grad():
        before = torch.log_softmax(net(x), 1).gather(1, target[:, None])
        after = torch.log_softmax(net(r.x_adv), 1).gather(1, target[:, None])
    assert bool((after >= before - 1e-6).all())


# ---------------------------------------------------------------------- budgets
@pytest.mark.parametrize("n", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
@pytest.mark.parametrize("basis", ["pixel", "dct"])
def test_budget_exact_and_never_exceeded(n: int, budget: int, basis: str) -> None:
    """Every model row is counted, per sample; no sample goes beyond max_queries, odd
    budgets included (the last query only tries +step)."""
    torch.manual_seed(0)
    rec = Recorder(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))
    model = TorchClassifier(rec, bounds=(0, 1), num_classes=3)
    g = torch.Generator().manual_seed(n)
    x = torch.rand(n, 1, 3, 4, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    r = SimBA(basis=basis, step=0.05, max_queries=budget)(model, x, y, eps=0.1)
    assert_within_budget(r, rec.rows, budget, spent=True)


def test_idle_samples_stop() -> None:
    """A sample that no direction can move (eps below one grid step) stops at once."""
    torch.manual_seed(0)
    rec = Recorder(nn.Linear(6, 2))
    model = TorchClassifier(rec, bounds=(0, 1), levels=5)
    x = torch.full((2, 6), 0.5)
    r = SimBA(norm="linf", max_queries=50)(model, x, eps=0.1)
    assert bool((r.queries == 2).all()) and torch.equal(r.x_adv, x)


# ---------------------------------------------------------------------- grids
def test_pixel_steps_are_whole_grid_steps() -> None:
    """On an 8-bit grid step 0.2 is 51 grid steps. Against a model whose loss never
    changes, every candidate is x with one feature moved by exactly that (or to a bound,
    and one whose move would change nothing is never queried); every query is a grid
    point, and each feature is tried +, then -, in a random order."""
    lin = nn.Linear(2 * 4 * 5, 3)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    rec = Recorder(nn.Sequential(nn.Flatten(), lin))
    model = TorchClassifier(rec, bounds=(0, 1), levels=256)
    x = torch.round(torch.rand(1, 2, 4, 5, generator=torch.Generator().manual_seed(1)) * 255)
    x = x / 255
    x[0, 0, 0, :2] = torch.tensor([0.0, 1.0])  # one move of each is clipped away
    SimBA(norm="l2", max_queries=80)(model, x, torch.tensor([0]), eps=6.0)
    features = []
    for call in rec.calls[1:-1]:
        assert on_grid(call, 0.0, 1.0, 256)
        diff = (call - x).flatten()
        moved = (diff != 0).nonzero()[:, 0]
        assert moved.numel() == 1
        i = int(moved)
        gap, value = float(diff[i]), float(call.flatten()[i])
        assert abs(abs(gap) - 51 / 255) < 1e-6 or value in (0.0, 1.0)
        features.append((i, gap > 0))
    # 40 features, 2 tries each, less the two clipped away: 78 attack queries.
    assert len(features) == 78
    assert sorted({i for i, _ in features}) == list(range(40))
    assert [i for i, _ in features][:6] != [0, 0, 1, 1, 2, 2]
    plus = {i for i, up in features if up}
    minus = {i for i, up in features if not up}
    assert plus == set(range(40)) - {1} and minus == set(range(40)) - {0}


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_per_feature_bounds_and_grid(norm: str) -> None:
    """Tabular data, 17 levels, per-feature bounds: every query and result on the grid and
    in the bounds; results within eps."""
    case = tabular_grid(11)
    eps = 2.0 if norm == "linf" else 5.0
    case.check(SimBA(norm=norm, step=1.0, max_queries=80)(case.model, case.x, case.y, eps=eps),
               eps)


# ---------------------------------------------------------------------- the DCT basis
def test_dct_basis_is_orthonormal() -> None:
    for n in (1, 5, 8, 28):
        m = _dct_matrix(n)
        assert torch.allclose(m @ m.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(_dct_matrix(4)[0], torch.full((4,), 0.5, dtype=torch.float64))


def test_dct_order_low_frequencies_first_each_once() -> None:
    g = torch.Generator().manual_seed(0)
    c, h, w, fh, fw = 3, 10, 7, 4, 2
    order = _dct_order(c, h, w, fh, fw, g)
    assert order.shape == (c * h * w, 3)
    assert len({tuple(r) for r in order.tolist()}) == c * h * w
    first = order[: c * fh * fw]
    assert bool((first[:, 1] < fh).all() and (first[:, 2] < fw).all())
    # Band after band: the largest frequency index seen so far never shrinks.
    reach = torch.maximum(order[:, 1] / fh, order[:, 2] / fw)
    assert bool((reach[c * fh * fw:] >= 1).all())
    # The first block is in random order, not raster order.
    assert not torch.equal(first, first[first[:, 0].argsort(stable=True)])


def test_dct_first_queries_are_low_frequency() -> None:
    """The first candidates of SimBA-DCT differ from x by step times a low-frequency
    DCT image of one channel."""
    torch.manual_seed(0)
    lin = nn.Linear(2 * 8 * 8, 3)
    with torch.no_grad():  # a loss that never changes: the current point stays x
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    rec = Recorder(nn.Sequential(nn.Flatten(), lin))
    model = TorchClassifier(rec, bounds=(-5, 5))
    x = torch.zeros(1, 2, 8, 8)
    SimBA(basis="dct", step=0.3, max_queries=12)(model, x, torch.tensor([0]), eps=10.0)
    cos = _dct_matrix(8).float()
    for call in rec.calls[1:-1]:
        d = call[0] - x[0]
        ch = int(d.flatten(1).abs().sum(1).argmax())
        assert float(d[1 - ch].abs().max()) == 0
        coef = cos @ d[ch] @ cos.T  # the 2-D DCT of the step
        u, v = divmod(int(coef.abs().argmax()), 8)
        assert u < 2 and v < 2  # freq_dims = 8 / 4 = 2
        assert float(coef.abs().max()) == pytest.approx(0.3, rel=1e-4)


def test_dct_needs_images() -> None:
    model = TorchClassifier(nn.Linear(6, 2).eval(), bounds=(0, 1))
    with pytest.raises(ConfigError, match="basis='pixel'"):
        SimBA(basis="dct")(model, torch.rand(2, 6), eps=0.1)


def test_dct_step_lost_to_the_grid_is_refused() -> None:
    """On a 16x16 8-bit image no DCT basis image exceeds 2/16 per pixel, so a step below
    (1/255) / 2 * 16 / 2 = 0.0157 changes nothing: refused, naming the smallest step."""
    model = TorchClassifier(nn.Sequential(nn.Flatten(), nn.Linear(256, 2)).eval(),
                            bounds=(0, 1), levels=256)
    x = torch.full((1, 1, 16, 16), 128 / 255)
    with pytest.raises(ConfigError, match=r"step > 0\.0157"):
        SimBA(basis="dct", step=0.015)(model, x, eps=1.0)
    r = SimBA(basis="dct", step=0.02, max_queries=20)(model, x, eps=1.0)
    assert int(r.queries.max()) <= 20


# ---------------------------------------------------------------------- contract
def test_deterministic_for_a_seed() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(27, 6), nn.ReLU(), nn.Linear(6, 4)).eval()
    model = TorchClassifier(net, bounds=(0, 1))
    x = torch.rand(10, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    for basis in ("pixel", "dct"):
        assert_seed_reproduces(
            lambda s, b=basis: SimBA(basis=b, max_queries=60, seed=s)(model, x, eps=0.5), 7)


def test_eps_zero_and_already_fooled() -> None:
    model, x, y = mislabelled_batch()
    r0 = SimBA()(model, x, y, eps=0.0)
    assert torch.equal(r0.x_adv, x) and bool((r0.queries == 2).all())
    r = SimBA(max_queries=30)(model, x, y, eps=0.5)
    assert torch.equal(r.x_adv[:3], x[:3]) and bool((r.queries[:3] == 2).all())


def test_progress_ends_at_total() -> None:
    seen = progress_of(SimBA(max_queries=25), *tiny_case(), eps=0.01)
    assert seen[-1] == (25, 25)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))


def test_labels_only_model_is_refused() -> None:
    with pytest.raises(CapabilityError, match="scores"):
        SimBA()(LabelsOnly(), torch.full((2, 3), 0.5), torch.tensor([0, 1]), eps=0.1)


@pytest.mark.parametrize("field, value", [
    ("step", 0.0), ("step", -1.0), ("step", math.inf), ("basis", "haar"), ("freq_dims", 0),
    ("freq_dims", 2.5), ("loss", "hinge"), ("norm", "l1"), ("max_queries", 1),
])
def test_bad_parameters(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{field}' parameter of SimBA"):
        SimBA(**{field: value})


def test_defaults() -> None:
    a = SimBA()
    assert (a.norm, a.basis, a.step, a.freq_dims, a.loss, a.max_queries) == (
        "l2", "pixel", 0.2, None, "ce", 1000)
