"""Efficacy against known answers: linear classifiers, where the smallest adversarial
perturbation has a closed form (or is a linear program).

For logits ``z = W x + b`` the set ``{x : z_j >= z_y}`` is a half-space, so the
distance from x to it in a norm is ``(z_y - z_j) / ||w_y - w_j||_*`` with the dual
norm ``*`` (L1 for L∞, L2 for L2, L∞ for L1). Unless a test is about the box, the
bounds are wide (-10, 10) and the inputs lie in [-1, 1], so the box never binds.

Tolerance: the model computes in float32 and the closed forms in float64, so
"never succeeds above eps" is checked for distances above ``eps * (1 + 1e-4)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hoodwink import FGSM, PGD, TorchClassifier

ABOVE = 1 + 1e-4  # float32 slack for the "impossible above eps" side
DUAL = {"linf": 1, "l2": 2, "l1": np.inf}  # the dual norm's ord for np.linalg.norm
N, D = 200, 20


pytestmark = pytest.mark.usefixtures("one_thread")


class Linear:
    """A linear classifier with fixed weights, its float64 weights and a data set."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, *, bounds: Any = (-10, 10),
                 x: np.ndarray | None = None, seed: int = 0) -> None:
        net = nn.Linear(weight.shape[1], weight.shape[0]).eval()
        with torch.no_grad():
            net.weight.copy_(torch.from_numpy(weight))
            net.bias.copy_(torch.from_numpy(bias))
        self.model = TorchClassifier(net, bounds=bounds)
        # The closed forms use the weights the model really has (float32, widened).
        self.W = net.weight.detach().double().numpy()
        self.b = net.bias.detach().double().numpy()
        if x is None:
            x = np.random.default_rng(seed + 1).uniform(-1, 1, size=(N, weight.shape[1]))
        self.x = torch.from_numpy(x.astype(np.float32))
        self.z = self.x.double().numpy() @ self.W.T + self.b
        self.y = self.z.argmax(axis=1)  # labels = clean predictions: every margin is positive

    @classmethod
    def random(cls, classes: int, seed: int, **kw: Any) -> Linear:
        rng = np.random.default_rng(seed)
        return cls(rng.normal(size=(classes, D)), rng.normal(size=classes), seed=seed, **kw)

    def pairwise_distance(self, j: np.ndarray, norm: str) -> np.ndarray:
        """Distance from each x to the half-space z_j >= z_y (inf where j == y)."""
        rows = np.arange(len(self.y))
        dw = self.W[self.y] - self.W[j]
        margin = self.z[rows, self.y] - self.z[rows, j]
        dual = np.linalg.norm(dw, ord=DUAL[norm], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(j == self.y, np.inf, margin / dual)

    def untargeted_distance(self, norm: str) -> np.ndarray:
        """Exact minimal untargeted distance: the nearest pairwise decision boundary."""
        n, c = len(self.y), self.W.shape[0]
        return np.min([self.pairwise_distance(np.full(n, j), norm) for j in range(c)], axis=0)

    def attack(self, attack: Any, eps: float, **kw: Any) -> np.ndarray:
        r = attack(self.model, self.x, torch.from_numpy(self.y), eps=eps, **kw)
        return r.success.numpy()


def assert_matches_distance(success: np.ndarray, dist: np.ndarray, eps: float,
                            below: float) -> None:
    """Success on every sample with dist < below*eps, on none with dist > eps."""
    must = dist < below * eps
    cannot = dist > eps * ABOVE
    assert must.sum() >= 20 and cannot.sum() >= 20, "the data set does not test both sides"
    missed = np.flatnonzero(must & ~success)
    assert missed.size == 0, f"missed samples at distance/eps = {dist[missed] / eps}"
    impossible = np.flatnonzero(cannot & success)
    assert impossible.size == 0, f"'succeeded' at distance/eps = {dist[impossible] / eps}"


# ---------------------------------------------------------------------- two classes
PGD_SETTINGS = {
    "linf": {},  # default stepsize 2.5 eps / steps
    "l2": {"stepsize_factor": 1 / 20},
    "l1": {"stepsize_factor": 1 / 20},
}


def pgd(norm: str, eps: float, **kw: Any) -> PGD:
    factor = PGD_SETTINGS[norm].get("stepsize_factor")
    stepsize = factor * eps if factor is not None else None
    return PGD(norm=norm, steps=100, stepsize=stepsize, **kw)


@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_two_class_matches_closed_form(norm: str, loss: str) -> None:
    """Two classes: PGD succeeds iff margin/||w1-w0||_dual < eps (below 0.95 eps, never above)."""
    lin = Linear.random(2, seed=0)
    dist = lin.pairwise_distance(1 - lin.y, norm)
    eps = float(np.median(dist))
    success = lin.attack(pgd(norm, eps, loss=loss), eps)
    assert_matches_distance(success, dist, eps, below=0.95)


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_pgd_l1_two_class_matches_closed_form(loss: str) -> None:
    """Two classes, L1: PGD succeeds below 0.95 * margin/||w1-w0||_inf, never above eps.

    With l1_sparsity=0.95 each step moves 5% of the 20 coordinates, i.e. the single
    one of largest |gradient|: the exact L1 steepest-ascent direction.
    """
    lin = Linear.random(2, seed=0)
    dist = lin.pairwise_distance(1 - lin.y, "l1")
    eps = float(np.median(dist))
    success = lin.attack(pgd("l1", eps, loss=loss, l1_sparsity=0.95), eps)
    assert_matches_distance(success, dist, eps, below=0.95)


def test_pgd_l1_default_sparsity_two_class() -> None:
    """Two classes, L1 with the default sparse step: success below 0.85 eps, never above eps.

    The default step spreads over the top 10% of coordinates (2 of 20), so the
    perturbation ends up shared between them and reaches only about
    eps * mean(top-2 |w1-w0|) / max |w1-w0| of the optimal margin change. We check
    that this data set keeps that ratio above 0.9 and then ask for success below
    0.85 eps, leaving room for the unequal split a random start leaves behind.
    """
    lin = Linear.random(2, seed=0)
    top = np.sort(np.abs(lin.W[1] - lin.W[0]))[::-1]
    assert top[:2].mean() / top[0] > 0.9
    dist = lin.pairwise_distance(1 - lin.y, "l1")
    eps = float(np.median(dist))
    success = lin.attack(pgd("l1", eps, loss="margin", restarts=3), eps)
    assert_matches_distance(success, dist, eps, below=0.85)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fgsm_two_class_is_optimal(norm: str) -> None:
    """Two classes: one FGSM step is the optimal perturbation, so it succeeds iff dist < eps."""
    lin = Linear.random(2, seed=0)
    dist = lin.pairwise_distance(1 - lin.y, norm)
    eps = float(np.median(dist))
    success = lin.attack(FGSM(norm=norm), eps)
    assert_matches_distance(success, dist, eps, below=1 / ABOVE)


def test_box_binding_linf() -> None:
    """With bounds (0, 1) binding, FGSM and PGD reach exactly sum_k |dw_k| min(eps, room_k)."""
    rng = np.random.default_rng(3)
    # Beta(0.3, 0.3) puts many features near 0 or 1, where the box cuts the eps-ball.
    lin = Linear(rng.normal(size=(2, D)), rng.normal(size=2), bounds=(0, 1),
                 x=rng.beta(0.3, 0.3, size=(N, D)))
    eps = 0.15
    x = lin.x.double().numpy()
    rows = np.arange(N)
    dw = np.abs(lin.W[1] - lin.W[0])
    direction = np.sign(lin.W[1 - lin.y] - lin.W[lin.y])  # the margin-closing sign per feature
    room = np.where(direction > 0, 1 - x, x)
    reach = (dw * np.minimum(eps, room)).sum(axis=1)
    margin = lin.z[rows, lin.y] - lin.z[rows, 1 - lin.y]
    need = margin / reach  # 1 = exactly the largest margin change the box and ball allow
    assert (need < 0.95).sum() >= 20 and (need > ABOVE).sum() >= 20
    # The box matters: these samples would be within reach if it were ignored.
    assert ((margin < eps * dw.sum()) & (need > ABOVE)).sum() >= 10
    for attack, below in [(FGSM(), 1 / ABOVE), (PGD(steps=100, loss="margin"), 0.95)]:
        success = lin.attack(attack, eps)
        missed = ~success & (need < below)
        assert not missed.any(), f"{attack!r} missed at need {need[missed]}"
        assert not (success & (need > ABOVE)).any()


# ---------------------------------------------------------------------- many classes
# How close to the exact distance PGD (margin loss, 5 restarts) gets on 5 classes. We
# measured the worst miss over data seeds 0-5: L2 always reached >= 1.0 eps, L∞ 0.91 eps,
# L1 0.88 eps. Maximising the untargeted margin is maximising a convex function, a local
# search that can settle on a vertex facing the wrong class; restarts help only partly.
MULTICLASS_BELOW = {"linf": 0.85, "l2": 0.95, "l1": 0.85}


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_pgd_multiclass_untargeted_matches_closed_form(norm: str) -> None:
    """5 classes: untargeted PGD succeeds iff min_j (z_y - z_j)/||w_y - w_j||_dual < eps.

    Held to MULTICLASS_BELOW (see there). Cross-entropy is not held to the closed form
    here: it mixes the competitors' gradients and misses samples at 0.6-0.8 eps on
    such data, a known weakness of CE for multi-class attacks rather than a bug.
    """
    lin = Linear.random(5, seed=1)
    dist = lin.untargeted_distance(norm)
    eps = float(np.median(dist))
    kw = {"l1_sparsity": 0.95} if norm == "l1" else {}
    success = lin.attack(pgd(norm, eps, loss="margin", restarts=5, **kw), eps)
    assert_matches_distance(success, dist, eps, below=MULTICLASS_BELOW[norm])


def targeted_linf_distance(lin: Linear, target: np.ndarray, bounds: tuple[float, float]
                           ) -> np.ndarray:
    """Exact minimal L∞ perturbation making ``target`` the argmax, by linear programming.

    Variables (delta, s): minimise s subject to |delta_k| <= s, the box, and
    (w_t - w_j).(x + delta) + b_t - b_j >= 0 for every j != t.
    """
    linprog = pytest.importorskip("scipy.optimize").linprog  # scipy comes with scikit-learn
    n, d = lin.x.shape
    c = lin.W.shape[0]
    x = lin.x.double().numpy()
    out = np.empty(n)
    eye = np.eye(d)
    ball = np.vstack([np.hstack([eye, -np.ones((d, 1))]), np.hstack([-eye, -np.ones((d, 1))])])
    cost = np.r_[np.zeros(d), 1.0]
    for i in range(n):
        t = target[i]
        others = [j for j in range(c) if j != t]
        g = lin.W[t] - lin.W[others]  # (c-1, d)
        a_ub = np.vstack([np.hstack([-g, np.zeros((c - 1, 1))]), ball])
        b_ub = np.r_[g @ x[i] + lin.b[t] - lin.b[others], np.zeros(2 * d)]
        var_bounds = [(bounds[0] - x[i, k], bounds[1] - x[i, k]) for k in range(d)] + [(0, None)]
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=var_bounds, method="highs")
        out[i] = res.x[-1] if res.status == 0 else np.inf
    return out


@pytest.fixture(scope="module")
def targeted_case() -> tuple[Linear, np.ndarray, np.ndarray]:
    """5 classes, a random target != y per sample, and its exact L∞ distance (LP)."""
    lin = Linear.random(5, seed=2)
    rng = np.random.default_rng(4)
    target = (lin.y + rng.integers(1, 5, size=N)) % 5
    return lin, target, targeted_linf_distance(lin, target, (-10, 10))


def test_targeted_lower_bound_is_below_linear_program(
    targeted_case: tuple[Linear, np.ndarray, np.ndarray],
) -> None:
    """The pairwise distance to z_t = z_y never exceeds the LP's targeted distance."""
    lin, target, dist = targeted_case
    lower = lin.pairwise_distance(target, "linf")
    assert (lower <= dist + 1e-9).all()
    assert (lower < dist - 1e-3).sum() >= 20  # and it is not the same thing


@pytest.mark.parametrize(("loss", "restarts"), [("margin", 10), ("ce", 1)])
def test_pgd_targeted_linf_matches_linear_program(
    targeted_case: tuple[Linear, np.ndarray, np.ndarray], loss: str, restarts: int
) -> None:
    """Targeted L∞ PGD succeeds when the LP distance < 0.85 eps and never when it exceeds eps.

    Both targeted losses are concave here, yet a fixed-size sign step is a subgradient
    method: on the piecewise-linear margin it cycles around kinks where two competitors
    tie (on this data margin PGD with 5 restarts still misses a sample at 0.79 eps), so
    the margin loss gets 10 restarts. Over data seeds 0-5 the worst miss was 0.90 eps for
    margin with 10 restarts and 0.89 eps for smooth CE with one; we ask for 0.85 eps.
    Success is impossible where even the pairwise lower bound exceeds eps.
    """
    lin, target, dist = targeted_case
    lower = lin.pairwise_distance(target, "linf")
    eps = float(np.median(dist))
    success = lin.attack(PGD(steps=100, loss=loss, restarts=restarts), eps,
                         target=torch.from_numpy(target))
    assert_matches_distance(success, dist, eps, below=0.85)
    assert (lower > eps * ABOVE).sum() >= 20
    assert not (success & (lower > eps * ABOVE)).any()


# ---------------------------------------------------------------------- FGSM arithmetic
def two_class_with_dead_features(seed: int) -> Linear:
    """Two classes; features 3 and 7 have zero weight in both rows (zero gradient there)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(2, D))
    w[:, [3, 7]] = 0.0
    # Inputs on a dyadic grid and eps = 1/4: x ± eps is exact in float32.
    x = rng.integers(-8, 9, size=(N, D)) / 8
    return Linear(w, rng.normal(size=2), x=x)


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_fgsm_linf_step_is_minus_sign_of_weight_difference(targeted: bool) -> None:
    """Two classes: the FGSM L∞ step is exactly -sign(w_y - w_other) * eps, 0 on dead features."""
    lin = two_class_with_dead_features(5)
    eps = 0.25
    y = torch.from_numpy(lin.y)
    kw = {"target": 1 - y} if targeted else {}
    r = FGSM()(lin.model, lin.x, y, eps=eps, **kw)
    delta = (r.x_adv - lin.x).numpy()
    expected = -np.sign(lin.W[lin.y] - lin.W[1 - lin.y]) * eps
    np.testing.assert_array_equal(delta, expected.astype(np.float32))
    assert (delta[:, [3, 7]] == 0).all()


def test_fgsm_linf_moves_every_coordinate_by_eps_or_zero() -> None:
    """5 classes: each coordinate moves by exactly ±eps where the gradient is nonzero, else 0."""
    rng = np.random.default_rng(6)
    w = rng.normal(size=(5, D))
    w[:, [3, 7]] = 0.0
    lin = Linear(w, rng.normal(size=5), x=rng.integers(-8, 9, size=(N, D)) / 8)
    r = FGSM()(lin.model, lin.x, torch.from_numpy(lin.y), eps=0.25)
    delta = (r.x_adv - lin.x).numpy()
    live = np.ones(D, dtype=bool)
    live[[3, 7]] = False
    assert (np.abs(delta[:, live]) == 0.25).all()
    assert (delta[:, ~live] == 0).all()


@pytest.mark.parametrize(("loss", "atol"), [("margin", 1e-6), ("ce", 1e-4)])
def test_fgsm_l2_moves_eps_along_weight_difference(loss: str, atol: float) -> None:
    """Two classes: the FGSM L2 step is eps * (w_other - w_y) / ||w_other - w_y||_2.

    The margin gradient is the weight difference itself; the CE gradient is
    p_other * (w_other - w_y) assembled from float32 softmax terms (1 - p and p),
    whose rounding bends the direction by up to ~1e-4 when p_other is small.
    """
    lin = Linear.random(2, seed=7)
    eps = 0.3
    r = FGSM(norm="l2", loss=loss)(lin.model, lin.x, torch.from_numpy(lin.y), eps=eps)
    delta = (r.x_adv - lin.x).double().numpy()
    dw = lin.W[1 - lin.y] - lin.W[lin.y]
    expected = eps * dw / np.linalg.norm(dw, axis=1, keepdims=True)
    np.testing.assert_allclose(delta, expected, atol=atol)
    np.testing.assert_allclose(np.linalg.norm(delta, axis=1), eps, rtol=1e-5)


def test_seed_article_eta_is_sign_of_w() -> None:
    """w = [3, -5, 7]: FGSM with eps=1 gives eta = sign(w) = [1, -1, 1] and w.eta = 15."""
    net = nn.Linear(3, 2, bias=False).eval()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [3.0, -5.0, 7.0]]))
    model = TorchClassifier(net, bounds=(-10, 10))
    x = torch.zeros(1, 3)
    r = FGSM()(model, x, torch.tensor([0]), eps=1.0)
    assert r.x_adv.tolist() == [[1.0, -1.0, 1.0]]
    rise = model.logits(r.x_adv)[0, 1] - model.logits(x)[0, 1]
    assert rise.item() == 15.0


@pytest.mark.parametrize("side", [16, 64, 256])
def test_fgsm_score_rise_grows_as_eps_n_m(side: int) -> None:
    """A linear score over n = 3*side*side weights of size m rises by exactly eps*n*m per FGSM step.

    For 256x256x3 images, m = 0.01 and eps = 1/255 that is 196608 * 0.01 / 255 ≈ 7.71:
    an imperceptible change moves the score by several units.
    """
    n, m, eps = 3 * side * side, 0.01, 1 / 255
    signs = np.random.default_rng(8).choice([-1.0, 1.0], size=n)
    net = nn.Sequential(nn.Flatten(), nn.Linear(n, 2, bias=False)).eval()
    with torch.no_grad():
        net[1].weight.copy_(torch.from_numpy(np.stack([np.zeros(n), m * signs])))
    model = TorchClassifier(net, bounds=(-1, 1))
    x = torch.zeros(1, 3, side, side)
    r = FGSM()(model, x, torch.tensor([0]), eps=eps)
    assert (r.x_adv.abs() == torch.tensor(eps, dtype=torch.float32)).all()
    rise = (model.logits(r.x_adv)[0, 1] - model.logits(x)[0, 1]).item()
    assert rise == pytest.approx(eps * n * m, rel=1e-4)
    if side == 256:
        assert rise == pytest.approx(196608 * 0.01 / 255, rel=1e-4)
        assert rise == pytest.approx(7.71, abs=0.01)
