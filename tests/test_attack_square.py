"""The Square attack: efficacy against closed forms, exact query budgets, grids, anytime runs."""

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
from hoodwink.attacks.square import Square, _bumps, _side, square_fraction
from hoodwink.errors import CapabilityError, ConfigError

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # The attack reports the predictions it saw at the points it returns; a mismatch
    # with the verification pass would mean it returned a point it never queried.
    pytest.mark.filterwarnings("error::hoodwink.errors.StochasticModelWarning"),
]


# ---------------------------------------------------------------------- schedule
def test_schedule_is_the_papers_and_anytime() -> None:
    """p halves after iterations 10, 50, 200, ..., 8000 and depends on nothing else."""
    cuts = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000]
    assert square_fraction(0.4, 0) == 0.4
    for k, t in enumerate(cuts):
        assert square_fraction(0.4, t) == 0.4 / 2 ** k  # still the value before the cut
        assert square_fraction(0.4, t + 1) == 0.4 / 2 ** (k + 1)
    assert square_fraction(0.4, 10**6) == 0.4 / 512


def test_window_sides() -> None:
    """Squares of side round(sqrt(p H W)); 1-D windows of round(p D); L2 odd and >= 3."""
    assert _side(0.05, 28, 28, True, odd_min3=False) == (6, 6)  # sqrt(39.2) = 6.26
    assert _side(0.05 / 32, 28, 28, True, odd_min3=False) == (1, 1)
    assert _side(1.0, 7, 11, True, odd_min3=False) == (7, 7)  # clipped to the shorter side
    assert _side(0.1, 1, 40, False, odd_min3=False) == (1, 4)
    assert _side(0.05, 28, 28, True, odd_min3=True) == (7, 7)
    assert _side(0.001, 28, 28, True, odd_min3=True) == (3, 3)


def test_l2_bumps() -> None:
    """The L2 pattern: unit norm, positive top half, negative bottom half, peaks centred."""
    p = _bumps(5, 5)
    assert float(p.norm()) == pytest.approx(1.0)
    assert bool((p[:2] > 0).all()) and bool((p[2:] < 0).all())
    # Each half is a bump around its own centre: row 1 of the top (2 rows), row 2 overall
    # + 1 of the bottom (3 rows); column 2.
    assert int(p[:2].abs().argmax()) == 1 * 5 + 2
    assert int(p[2:].abs().argmax()) == 1 * 5 + 2
    one_row = _bumps(1, 6)
    assert bool((one_row[0, :3] > 0).all()) and bool((one_row[0, 3:] < 0).all())


# ---------------------------------------------------------------------- efficacy
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_untargeted_success_where_possible_never_where_not(norm: str) -> None:
    """Binary linear model: the smallest distance to the boundary is closed-form.

    Samples whose distance is below eps/1.5 must mostly be fooled (>= 90%), samples
    whose distance is above eps can never be; a no-op fools none.
    """
    d = 24
    lin, w = binary_linear(d)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, d, generator=g, dtype=torch.float64) - 0.5
    model = TorchClassifier(lin, bounds=(-2.0, 2.0))
    y = (x @ w > 0).long()
    dist = binary_distance(w, x, norm)
    eps = float(dist.quantile(0.6))
    r = Square(norm=norm, max_queries=300, seed=0)(model, x, y, eps=eps)
    easy, hard = dist < eps / 1.5, dist > eps
    assert int(easy.sum()) >= 10 and int(hard.sum()) >= 5
    assert float(r.success[easy].float().mean()) >= 0.9
    assert not bool(r.success[hard].any())
    assert bool(r.clean_correct.all())  # a no-op leaves every sample correct
    assert float(r.robust_accuracy()) < 1 - 0.9 * float(easy.float().mean())


def test_targeted_success_where_reachable() -> None:
    """5 classes: >= 90% of the targets that an LP says are reachable (with room) are
    reached, none of the unreachable ones, and every success predicts its target."""
    torch.manual_seed(0)
    net = nn.Linear(12, 5).eval()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(40, 12, generator=g)
    model = TorchClassifier(net, bounds=(0, 1))
    with torch.no_grad():
        y = net(x).argmax(1)
    target = (y + 1 + torch.arange(40) % 4) % 5
    eps = 0.3
    room = best_target_margin(net, x, target, eps, 0.0, 1.0)
    easy, impossible = room > 0.2, room < 0
    assert int(easy.sum()) >= 10 and int(impossible.sum()) >= 5
    for loss in ("margin", "ce"):
        r = Square(max_queries=400, loss=loss)(model, x, y, target=target, eps=eps)
        assert float(r.success[easy].float().mean()) >= 0.9
        assert not bool(r.success[impossible].any())
        assert torch.equal(r.pred_adv[r.success], target[r.success])


def test_beats_random_vertices() -> None:
    """Against the best of as many random ball corners, the search fools more samples."""
    lin, w = binary_linear(16, seed=2)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(48, 16, generator=g, dtype=torch.float64)
    y = (x @ w > 0).long()
    eps = float(binary_distance(w, x, "linf").median())  # about half of them can be fooled
    model = TorchClassifier(lin, bounds=(-1.0, 2.0))
    r = Square(max_queries=60)(model, x, y, eps=eps)
    signs = torch.randint(0, 2, (60, 1, 16), generator=g).double() * 2 - 1
    z = ((x[None] + eps * signs) @ w > 0).long()
    random_fooled = (z != y).any(dim=0)
    assert int(r.success.sum()) > int(random_fooled.sum()) + 5


def test_every_candidate_changes_one_window() -> None:
    """Against a model whose loss never changes, the search stays at its start: every
    candidate must differ from it (a window that would change nothing is redrawn), and
    only inside one window of the scheduled length."""
    lin = nn.Linear(20, 2).eval()
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([1.0, 0.0]))
    rec = Recorder(lin)
    model = TorchClassifier(rec, bounds=(0, 1))
    x = torch.full((1, 20), 0.5)
    Square(max_queries=60, p_init=0.1)(model, x, torch.tensor([0]), eps=0.2)
    start = rec.calls[1]
    for t, cand in enumerate(rec.calls[2:-1]):
        changed = (cand != start)[0].nonzero()[:, 0]
        assert changed.numel() >= 1
        side = max(1, round(square_fraction(0.1, t) * 20))
        assert int(changed.max() - changed.min()) + 1 <= side


# ---------------------------------------------------------------------- budgets
@pytest.mark.parametrize("n", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_budget_exact_and_never_exceeded(n: int, budget: int, norm: str) -> None:
    """Every model row is counted, per sample, and no sample goes beyond max_queries."""
    torch.manual_seed(0)
    rec = Recorder(nn.Linear(10, 3).eval())
    model = TorchClassifier(rec, bounds=(0, 1), num_classes=3)
    g = torch.Generator().manual_seed(n)
    x = torch.rand(n, 10, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    r = Square(norm=norm, max_queries=budget)(model, x, y, eps=0.05 if norm == "linf" else 0.1)
    assert_within_budget(r, rec.rows, budget, spent=True)


def test_anytime_prefix() -> None:
    """With one seed, a run with budget B makes exactly the first queries of a longer run."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(9, 6), nn.Tanh(), nn.Linear(6, 3)).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 9, generator=g)
    with torch.no_grad():
        y = net(x).argmax(1)
    runs = {}
    for budget in (40, 300):
        rec = Recorder(net)
        model = TorchClassifier(rec, bounds=(0, 1))
        attack = Square(max_queries=budget, seed=3, schedule_queries=10_000)
        runs[budget] = (attack(model, x, y, eps=0.15), rec.calls)
    (short, short_calls), (long, long_calls) = runs[40], runs[300]
    attack_calls = short_calls[:-1]  # the last is the base class's verification pass
    assert len(attack_calls) >= 30
    for a, b in zip(attack_calls, long_calls, strict=False):
        assert torch.equal(a, b)
    fooled = short.success
    assert torch.equal(short.x_adv[fooled], long.x_adv[fooled])
    assert torch.equal(short.queries[fooled], long.queries[fooled])


def test_default_schedule_is_fitted_to_the_budget() -> None:
    """schedule_queries=None lays the paper's schedule out over max_queries (as the paper's
    code does): the windows shrink sooner with a smaller budget, so the runs part early."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = net(x).argmax(1)
    calls = {}
    for budget in (40, 4000):
        rec = Recorder(net)
        Square(max_queries=budget, seed=3, p_init=0.5)(TorchClassifier(rec, bounds=(0, 1)),
                                                        x, y, eps=0.01)
        calls[budget] = rec.calls
    same = [torch.equal(a, b) for a, b in zip(calls[40][:-1], calls[4000], strict=False)]
    assert same[:2] == [True, True]  # the clean pass and the stripes
    assert not all(same)


# ---------------------------------------------------------------------- grids and shapes
def test_grid_points_queried_and_linf_ends() -> None:
    """On an 8-bit grid at eps 0.1 every query is a grid point in the ball, and the L∞
    values are x ± 25/255 (the grid points nearest x ± eps inside it) or a bound."""
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 7 * 11, 4)).eval()
    rec = Recorder(conv)
    model = TorchClassifier(rec, bounds=(0, 1), levels=256)
    g = torch.Generator().manual_seed(2)
    x = torch.round(torch.rand(6, 3, 7, 11, generator=g) * 255) / 255
    with torch.no_grad():
        y = conv(x).argmax(1)
    r = Square(max_queries=50)(model, x, y, eps=0.1)
    step = 25 / 255
    for call in rec.calls:
        assert on_grid(call, 0.0, 1.0, 256)
    for call in rec.calls[1:]:  # after the clean pass
        if call.shape[0] != x.shape[0]:
            continue
        gap = (call - x).abs()
        at_end = (gap - step).abs() < 1e-6
        at_bound = (call == 0) | (call == 1)
        assert bool((at_end | at_bound).all())
    assert on_grid(r.x_adv, 0.0, 1.0, 256)
    assert float((r.x_adv - x).abs().max()) <= step + 1e-6


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_per_feature_bounds_and_grid(norm: str) -> None:
    """Tabular data on a 17-level grid with per-feature bounds: every query and result is
    on the grid, in the bounds and in the ball."""
    case = tabular_grid(13)
    eps = 2.0 if norm == "linf" else 6.0
    case.check(Square(norm=norm, max_queries=60)(case.model, case.x, case.y, eps=eps), eps)


@pytest.mark.parametrize("shape", [(4, 3, 7, 11), (4, 30), (4, 2, 5, 1), (4, 2, 9)])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_any_input_shape(shape: tuple[int, ...], norm: str) -> None:
    """Images and any other shape (a 1-D layout of all features) run and keep the shape."""
    torch.manual_seed(0)
    d = math.prod(shape[1:])
    net = nn.Sequential(nn.Flatten(), nn.Linear(d, 3)).eval()
    model = TorchClassifier(net, bounds=(0, 1))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    eps = 0.3 if norm == "linf" else 2.0
    r = Square(norm=norm, max_queries=40)(model, x, eps=eps)
    assert r.x_adv.shape == x.shape
    assert bool((r.perturbation_norm <= eps + 1e-5).all())
    assert int(r.success.sum()) >= 1


def test_eps_zero_and_already_fooled() -> None:
    """eps = 0 returns x at two queries; samples wrong at x are returned unchanged."""
    model, x, y = mislabelled_batch()  # the first 3 are wrong at x
    r0 = Square()(model, x, y, eps=0.0)
    assert torch.equal(r0.x_adv, x) and bool((r0.queries == 2).all())
    r = Square(max_queries=30)(model, x, y, eps=0.2)
    assert torch.equal(r.x_adv[:3], x[:3]) and bool((r.queries[:3] == 2).all())


# ---------------------------------------------------------------------- contract
def test_deterministic_for_a_seed() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 4)).eval()
    model = TorchClassifier(net, bounds=(0, 1))
    x = torch.rand(12, 10, generator=torch.Generator().manual_seed(1))
    for norm, eps in (("linf", 0.1), ("l2", 0.3)):
        assert_seed_reproduces(
            lambda s, n=norm, e=eps: Square(norm=n, max_queries=80, seed=s)(model, x, eps=e), 7)


def test_progress_ends_at_total() -> None:
    seen = progress_of(Square(max_queries=25), *tiny_case(), eps=0.01)
    assert seen[-1] == (25, 25)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert all(t == 25 for _, t in seen)


def test_labels_only_model_is_refused() -> None:
    with pytest.raises(CapabilityError, match="scores"):
        Square()(LabelsOnly(), torch.full((2, 3), 0.5), torch.tensor([0, 1]), eps=0.1)


@pytest.mark.parametrize("field, value", [
    ("p_init", 0.0), ("p_init", 1.5), ("p_init", "0.1"), ("p_init", math.nan),
    ("loss", "hinge"), ("norm", "l1"), ("max_queries", 1), ("seed", -1),
])
def test_bad_parameters(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{field}' parameter of Square"):
        Square(**{field: value})


def test_repr_and_defaults() -> None:
    a = Square()
    assert (a.norm, a.p_init, a.loss, a.max_queries) == ("linf", None, "margin", 1000)
    assert Square(p_init=1).p_init == 1.0
    assert "Square(" in repr(a)
