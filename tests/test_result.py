"""AttackResult metrics, records, save/load, repr and table; sweeps, restarts, queries."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hoodwink import FGSM, PGD, AttackResult, Curve, ResultTable, TorchClassifier
from hoodwink.attacks.result import SCHEMA_VERSION
from hoodwink.errors import ConfigError, InputError
from hoodwink.reports import to_jsonable

pytestmark = pytest.mark.usefixtures("one_thread")


def hand_built(
    y: list[int], pred_clean: list[int], pred_adv: list[int], target: list[int] | None = None,
) -> AttackResult:
    """An AttackResult whose success and clean_correct follow the documented definitions."""
    yt, pc, pa = torch.tensor(y), torch.tensor(pred_clean), torch.tensor(pred_adv)
    tt = torch.tensor(target) if target is not None else None
    success = pa == tt if tt is not None else pa != yt
    n = len(y)
    return AttackResult(
        x_adv=torch.zeros(n, 2), success=success, clean_correct=pc == yt, pred_clean=pc,
        pred_adv=pa, perturbation_norm=torch.linspace(0, 0.1, n),
        queries=torch.full((n,), 3), y=yt, target=tt, eps=0.1, norm="linf",
        attack="FGSM(norm='linf')", seed=0, time_s=0.01,
    )


# ---------------------------------------------------------------------- metrics
def test_robust_accuracy_counts_clean_errors_as_errors() -> None:
    """robust_accuracy = mean(pred_adv == y) over all samples, misclassified-before included."""
    # sample 0: fooled; 1: resists; 2: wrong before and after; 3: resists;
    # 4: wrong before, "right" after (the attack pushed it back onto y, a win for the model).
    r = hand_built(y=[0, 1, 2, 0, 1], pred_clean=[0, 1, 0, 0, 2], pred_adv=[1, 1, 0, 0, 1])
    assert r.robust_accuracy() == pytest.approx(3 / 5)
    assert r.clean_accuracy() == pytest.approx(3 / 5)


def test_success_rate_untargeted_excludes_clean_errors() -> None:
    """Untargeted success_rate = mean(success[clean_correct]): already-wrong samples don't count."""
    r = hand_built(y=[0, 1, 2, 0, 1], pred_clean=[0, 1, 0, 0, 2], pred_adv=[1, 1, 0, 0, 1])
    # Clean-correct samples 0, 1, 3; only sample 0 was fooled.
    assert r.success_rate() == pytest.approx(1 / 3)


def test_success_rate_targeted_counts_all_samples() -> None:
    """Targeted success_rate = mean(pred_adv == target) over every sample."""
    r = hand_built(y=[0, 1, 2, 0], pred_clean=[0, 1, 0, 0], pred_adv=[2, 1, 1, 1],
                   target=[2, 0, 1, 1])
    assert r.targeted
    assert r.success_rate() == pytest.approx(3 / 4)
    assert r.robust_accuracy() == pytest.approx(1 / 4)


def test_success_rate_is_nan_when_nothing_to_attack() -> None:
    """With every sample misclassified before the attack, untargeted success_rate is nan."""
    r = hand_built(y=[0, 1], pred_clean=[1, 0], pred_adv=[1, 0])
    assert math.isnan(r.success_rate())
    assert r.robust_accuracy() == 0.0


def test_robust_accuracy_needs_labels() -> None:
    """robust_accuracy() without true labels raises a ValueError saying so."""
    r = hand_built(y=[0, 1], pred_clean=[0, 1], pred_adv=[1, 1])
    r = AttackResult(**{**r.__dict__, "y": None})
    with pytest.raises(ValueError, match="needs true labels"):
        r.robust_accuracy()


# ---------------------------------------------------------------------- records
def model_and_data(
    n: int = 40, seed: int = 0
) -> tuple[TorchClassifier, torch.Tensor, torch.Tensor]:
    """A 3-class linear model and inputs in [0, 1] it mostly classifies correctly."""
    torch.manual_seed(seed)
    net = nn.Linear(8, 3).eval()
    model = TorchClassifier(net)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 8, generator=g)
    y = model.predict(x)
    y[:4] = (y[:4] + 1) % 3  # a few samples misclassified before the attack
    return model, x, y


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_to_dict_is_json_with_schema(targeted: bool) -> None:
    """to_dict() is strict JSON (no NaN) with the schema version, summary and per-sample lists."""
    model, x, y = model_and_data()
    kw: dict[str, Any] = {"target": (y + 1) % 3} if targeted else {}
    r = PGD(steps=5)(model, x, y, eps=0.1, **kw)
    rec = r.to_dict()
    text = json.dumps(rec, allow_nan=False)
    back = json.loads(text)
    assert back["schema"] == SCHEMA_VERSION
    assert back["summary"]["n"] == len(x)
    assert back["summary"]["targeted"] is targeted
    assert back["samples"]["success"] == r.success.tolist()
    assert len(back["samples"]["perturbation_norm"]) == len(x)
    assert "samples" not in r.to_dict(per_sample=False)


def test_to_dict_with_nan_success_rate_is_strict_json() -> None:
    """A result whose success_rate is nan still serialises to strict JSON (as null)."""
    r = hand_built(y=[0, 1], pred_clean=[1, 0], pred_adv=[1, 0])
    rec = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert rec["summary"]["success_rate"] is None


# ---------------------------------------------------------------------- sweep
def test_sweep_returns_one_result_per_eps_in_order() -> None:
    """sweep() returns one result per budget, in the given order, each equal to a single call."""
    model, x, y = model_and_data()
    budgets = [0.2, 0.0, 0.05, 0.1]
    results = FGSM().sweep(model, x, y, eps=budgets)
    assert [r.eps for r in results] == budgets
    for r, e in zip(results, budgets, strict=True):
        assert torch.equal(r.x_adv, FGSM()(model, x, y, eps=e).x_adv)
    # FGSM on a linear model: a larger step fools at least as many samples.
    rates = [r.success.sum().item() for r in sorted(results, key=lambda r: r.eps)]
    assert rates == sorted(rates)
    arr = FGSM().sweep(model, x, y, eps=np.array(budgets))
    assert [r.eps for r in arr] == budgets


@pytest.mark.parametrize(
    "eps", [0.1, 1, np.float64(0.1), np.array(0.1), "0.1", [[0.1, 0.2]]],
    ids=["float", "int", "numpy-float", "numpy-0d", "string", "nested"],
)
def test_sweep_rejects_scalar_eps(eps: Any) -> None:
    """sweep() with anything but a flat list of budgets raises ConfigError."""
    model, x, y = model_and_data()
    with pytest.raises(ConfigError, match="list of budgets"):
        FGSM().sweep(model, x, y, eps=eps)


def test_sweep_rejects_bad_budget_in_list() -> None:
    """A bad budget inside the list raises the same ConfigError as a single call."""
    model, x, y = model_and_data()
    with pytest.raises(ConfigError, match=r"'eps' parameter of FGSM"):
        FGSM().sweep(model, x, y, eps=[0.1, -0.1])
    with pytest.raises(ConfigError, match=r"'eps' parameter of FGSM"):
        FGSM().sweep(model, x, y, eps=[0.1, "0.2"])


def test_sweep_rejects_empty_list() -> None:
    """sweep() with no budgets raises ConfigError."""
    model, x, y = model_and_data()
    with pytest.raises(ConfigError, match="at least one budget"):
        FGSM().sweep(model, x, y, eps=[])


# ---------------------------------------------------------------------- restarts and queries
def hard_case() -> tuple[TorchClassifier, torch.Tensor, torch.Tensor, float]:
    """Data and an eps at which one short PGD run fools some samples but not all."""
    model, x, y = model_and_data(n=60, seed=1)
    return model, x, y, 0.08


def test_restarts_keep_the_best_per_sample() -> None:
    """A sample fooled in restart 1 stays fooled, with the same x_adv, after more restarts."""
    model, x, y, eps = hard_case()
    # Two short steps: where a run ends depends on its random start, so restarts matter.
    one = PGD(steps=2, stepsize=eps / 4, restarts=1, seed=5)(model, x, y, eps=eps)
    many = PGD(steps=2, stepsize=eps / 4, restarts=6, seed=5)(model, x, y, eps=eps)
    fooled = one.success
    assert 0 < int(fooled.sum()) < len(x) - 4
    assert bool(many.success[fooled].all())
    assert torch.equal(many.x_adv[fooled], one.x_adv[fooled])
    assert int(many.success.sum()) > int(fooled.sum())  # the extra restarts found more


class BumpThenCrowd(nn.Module):
    """1-D input t in [0, 1]; true class 0 has logit 0.

    Class 1 wins only in a bump around t = 0.5; ten more classes rise with t and
    end just below class 0. Cross-entropy keeps growing past the bump, so gradient
    ascent from t = 0 passes through an adversarial stretch and ends, at its highest
    loss, classified correctly again.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x[:, :1]
        bump = 0.2 - 40 * (t - 0.5) ** 2
        crowd = (t - 1.01).expand(-1, 10)
        return torch.cat([torch.zeros_like(t), bump, crowd], dim=1)


@pytest.mark.parametrize("early_stop", [True, False])
def test_adversarial_iterate_beats_higher_loss(early_stop: bool) -> None:
    """A sample adversarial at some iterate ends adversarial, though later ones score higher."""
    model = TorchClassifier(BumpThenCrowd().eval())
    attack = PGD(steps=20, stepsize=0.05, random_start=False, early_stop=early_stop)
    r = attack(model, torch.zeros(1, 1), torch.tensor([0]), eps=1.0)
    assert r.success.tolist() == [True]
    assert 0.4 <= r.x_adv.item() <= 0.6
    # The premise: the end of the path has a higher loss and is not adversarial.
    end = torch.ones(1, 1)
    assert model.predict(end).item() == 0
    ce = nn.functional.cross_entropy
    assert ce(model.logits(end), torch.tensor([0])) > ce(model.logits(r.x_adv), torch.tensor([0]))


def test_best_iterate_is_kept_without_early_stop() -> None:
    """With early_stop=False every sample fooled with early stopping is still fooled."""
    model, x, y, eps = hard_case()
    stop = PGD(steps=10, early_stop=True, seed=5)(model, x, y, eps=eps)
    go_on = PGD(steps=10, early_stop=False, seed=5)(model, x, y, eps=eps)
    assert bool(go_on.success[stop.success].all())


def test_early_stop_saves_queries() -> None:
    """Samples fooled early stop spending queries; already-wrong ones cost only the 2 checks."""
    model, x, y, _ = hard_case()
    steps = 20
    r = PGD(steps=steps, seed=5)(model, x, y, eps=0.2)
    full = PGD(steps=steps, early_stop=False, seed=5)(model, x, y, eps=0.2)
    attacked = r.clean_correct
    fooled = r.success & attacked
    assert int(fooled.sum()) >= 10
    assert bool((r.queries[fooled] < steps).all())
    assert bool((r.queries[~attacked] == 2).all())
    assert int(r.queries.sum()) < int(full.queries.sum())
    # Without early stopping every attacked sample spends the whole run.
    assert bool((full.queries[attacked] == steps + 1 + 2).all())


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize(("steps", "restarts"), [(1, 1), (4, 3), (7, 2)])
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_queries_never_exceed_budget(steps: int, restarts: int, norm: str, targeted: bool) -> None:
    """Per sample, queries <= restarts*(steps+1) + 2, and samples never fooled use exactly that."""
    model, x, y, _ = hard_case()
    eps = {"linf": 0.05, "l2": 0.1, "l1": 0.3}[norm]
    kw: dict[str, Any] = {"target": (y + 1) % 3} if targeted else {}
    r = PGD(norm=norm, steps=steps, restarts=restarts)(model, x, y, eps=eps, **kw)
    budget = restarts * (steps + 1) + 2
    assert bool((r.queries <= budget).all())
    assert bool((r.queries >= 2).all())
    assert not bool(r.success.all())
    assert bool((r.queries[~r.success] == budget).all())


def test_fgsm_counts_one_query_plus_checks() -> None:
    """FGSM spends one gradient query per sample (which also gives the clean prediction),
    plus the verification pass."""
    model, x, y = model_and_data()
    r = FGSM()(model, x, y, eps=0.05)
    assert r.queries.tolist() == [2] * len(x)


# ---------------------------------------------------------------------- save / load
def assert_same_result(a: AttackResult, b: AttackResult) -> None:
    """Every tensor equal with the same dtype and shape, None stays None, scalars equal."""
    for name in ("x_adv", "success", "clean_correct", "pred_clean", "pred_adv",
                 "perturbation_norm", "queries", "y", "target"):
        ta, tb = getattr(a, name), getattr(b, name)
        if ta is None:
            assert tb is None, name
            continue
        assert tb is not None, name
        assert tb.dtype == ta.dtype, name
        assert tb.shape == ta.shape, name
        assert torch.equal(tb, ta.cpu()), name
    for name in ("eps", "norm", "attack", "seed", "time_s"):
        assert getattr(b, name) == getattr(a, name), name
        assert type(getattr(b, name)) is type(getattr(a, name)), name


def _case(kind: str) -> AttackResult:
    if kind == "float64":
        torch.manual_seed(3)
        model = TorchClassifier(nn.Linear(8, 3).double().eval())
        x = torch.rand(12, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        return PGD(steps=4, seed=2)(model, x, model.predict(x), eps=0.3)
    model, x, y = model_and_data(n=12)
    if kind == "targeted":
        return PGD(steps=4, seed=2)(model, x, y, target=(y + 1) % 3, eps=0.3)
    if kind == "no-labels":
        return PGD(norm="l2", steps=4, seed=None)(model, x, eps=0.5)
    return PGD(steps=4, seed=2)(model, x, y, eps=0.3)


@pytest.mark.parametrize("kind", ["untargeted", "targeted", "no-labels", "float64"])
def test_save_load_round_trip_is_exact(kind: str, tmp_path: Path) -> None:
    """load(save(r)) equals r: tensors bit-equal in their dtypes and shapes, scalars equal."""
    r = _case(kind)
    if kind == "float64":
        assert r.x_adv.dtype == torch.float64
    if kind == "no-labels":
        assert r.y is None and r.target is None and r.seed is None
    if kind == "targeted":
        assert r.target is not None and r.y is not None
    path = r.save(tmp_path / "run")
    assert path == tmp_path / "run.json"
    tensor_file = tmp_path / "run.safetensors"
    assert tensor_file.is_file()
    rec = json.loads(path.read_text())
    assert rec["schema"] == SCHEMA_VERSION == "hoodwink.attack_result/2"
    assert rec["tensors"]["file"] == "run.safetensors"
    assert rec["tensors"]["sha256"] == hashlib.sha256(tensor_file.read_bytes()).hexdigest()
    back = AttackResult.load(path)
    assert_same_result(r, back)
    assert_same_result(r, AttackResult.load(tmp_path / "run"))  # suffix appended on load too
    assert back.summary() == r.summary()


def test_save_keeps_given_suffix_and_creates_folder(tmp_path: Path) -> None:
    """A path with a suffix is used as is; the tensor file takes its stem; folders are made."""
    r = hand_built(y=[0, 1, 2], pred_clean=[0, 1, 2], pred_adv=[1, 1, 0])
    path = r.save(tmp_path / "new" / "r.rec")
    assert path == tmp_path / "new" / "r.rec"
    assert (tmp_path / "new" / "r.safetensors").is_file()
    assert_same_result(r, AttackResult.load(path))


def test_moved_pair_still_loads(tmp_path: Path) -> None:
    """The JSON names its tensor file relative to itself, so the pair can be moved together."""
    r = hand_built(y=[0, 1, 2], pred_clean=[0, 1, 2], pred_adv=[1, 1, 0])
    r.save(tmp_path / "a" / "r.json")
    (tmp_path / "b").mkdir()
    for f in ("r.json", "r.safetensors"):
        (tmp_path / "a" / f).rename(tmp_path / "b" / f)
    assert_same_result(r, AttackResult.load(tmp_path / "b" / "r.json"))


def _saved(tmp_path: Path) -> Path:
    return hand_built(y=[0, 1, 2], pred_clean=[0, 1, 2], pred_adv=[1, 1, 0]).save(
        tmp_path / "r.json")


def test_load_missing_file(tmp_path: Path) -> None:
    """Loading a path that does not exist raises InputError naming it."""
    with pytest.raises(InputError, match=r"nope\.json.*does not exist"):
        AttackResult.load(tmp_path / "nope")


def test_load_missing_tensor_file(tmp_path: Path) -> None:
    """A JSON whose tensor file is gone raises InputError naming the tensor file."""
    path = _saved(tmp_path)
    (tmp_path / "r.safetensors").unlink()
    with pytest.raises(InputError, match=r"r\.safetensors.*does not exist"):
        AttackResult.load(path)


def test_load_tampered_tensor_file(tmp_path: Path) -> None:
    """A tensor file whose sha256 differs from the record's raises InputError."""
    path = _saved(tmp_path)
    other = hand_built(y=[0, 1, 2], pred_clean=[0, 1, 2], pred_adv=[2, 1, 0])
    other.save(tmp_path / "other.json")
    (tmp_path / "other.safetensors").replace(tmp_path / "r.safetensors")
    with pytest.raises(InputError, match="sha256"):
        AttackResult.load(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json {", "not a JSON file"),
        ("[1, 2, 3]", "not a saved AttackResult"),
        ('{"title": "a report"}', "not a saved AttackResult"),
        ('{"schema": "hoodwink.curve/1"}', "not a saved AttackResult"),
        ('{"schema": "hoodwink.attack_result/1", "summary": {}}', "schema .*attack_result/1"),
        ('{"schema": "hoodwink.attack_result/2", "summary": {}}', "names no tensor file"),
    ],
    ids=["not-json", "list", "other-record", "curve", "old-version", "no-tensors"],
)
def test_load_rejects_what_is_not_a_result(content: str, match: str, tmp_path: Path) -> None:
    """A JSON that is not a version-2 result raises InputError saying why."""
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        AttackResult.load(path)


def test_load_rejects_record_without_fields(tmp_path: Path) -> None:
    """A record whose exact fields were removed raises InputError (the hash still matches)."""
    path = _saved(tmp_path)
    rec = json.loads(path.read_text())
    del rec["result"]
    path.write_text(json.dumps(rec))
    with pytest.raises(InputError, match="not a complete saved result"):
        AttackResult.load(path)


def test_save_refuses_tensor_file_name(tmp_path: Path) -> None:
    """save('r.safetensors') would overwrite its own tensors: InputError with the fix."""
    r = hand_built(y=[0, 1], pred_clean=[0, 1], pred_adv=[1, 1])
    with pytest.raises(InputError, match=r"r\.json"):
        r.save(tmp_path / "r.safetensors")


# ---------------------------------------------------------------------- repr and table
def test_repr_is_one_short_line() -> None:
    """repr(result) is one line under 200 characters, with the figures and no tensors."""
    model, x, y = model_and_data(n=100)
    x = x.repeat(1, 100)  # 800 features: the dataclass repr would run to many thousands
    model = TorchClassifier(nn.Linear(800, 3).eval())
    y = model.predict(x)
    r = PGD(steps=2)(model, x, y, eps=0.05)
    text = repr(r)
    assert "\n" not in text and len(text) < 200, text
    assert "tensor" not in text
    assert "n=100" in text and "norm='linf'" in text and "eps=0.05" in text
    assert f"success_rate={r.success_rate():.4g}" in text
    assert f"robust_accuracy={r.robust_accuracy():.4g}" in text
    assert str(r) == text
    no_labels = PGD(steps=2)(model, x, eps=0.05)
    assert "robust_accuracy" not in repr(no_labels)
    assert "targeted=True" in repr(PGD(steps=2)(model, x, y, target=(y + 1) % 3, eps=0.05))


def test_table_rows_match_tensors() -> None:
    """One row per sample; each cell equals the tensor it comes from."""
    model, x, y = model_and_data(n=10)
    r = PGD(steps=3)(model, x, y, target=(y + 1) % 3, eps=0.2)
    t = r.table()
    assert isinstance(t, ResultTable)
    assert t.columns == ("index", "y", "target", "pred_clean", "pred_adv", "success", "norm",
                         "queries")
    assert len(t.rows) == len(t) == 10
    assert r.target is not None and r.y is not None
    for i, row in enumerate(t.to_dicts()):
        assert row["index"] == i
        assert row["y"] == int(r.y[i]) and row["target"] == int(r.target[i])
        assert row["pred_clean"] == int(r.pred_clean[i])
        assert row["pred_adv"] == int(r.pred_adv[i])
        assert row["success"] is bool(r.success[i])
        assert np.float32(row["norm"]) == r.perturbation_norm[i].item()
        assert row["queries"] == int(r.queries[i])
    lines = str(t).splitlines()
    assert len(lines) == 11 and lines[0].split() == list(t.columns)
    assert len({len(line) for line in lines}) <= 2  # aligned (trailing blanks trimmed)
    md = t.to_markdown().splitlines()
    assert md[0] == "| index | y | target | pred_clean | pred_adv | success | norm | queries |"
    assert len(md) == 12


def test_table_shows_missing_as_dash() -> None:
    """Without labels and target, y and target are None and print as '–'."""
    r = hand_built(y=[0, 1], pred_clean=[0, 1], pred_adv=[1, 1])
    r = AttackResult(**{**r.__dict__, "y": None})
    t = r.table()
    assert [row["y"] for row in t.to_dicts()] == [None, None]
    assert [row["target"] for row in t.to_dicts()] == [None, None]
    assert str(t).splitlines()[1].split()[1:3] == ["–", "–"]


def test_table_rejects_ragged_rows() -> None:
    """A row with the wrong number of cells raises InputError naming the row."""
    with pytest.raises(InputError, match="Row 1"):
        ResultTable(columns=("a", "b"), rows=((1, 2), (3,)))


# ---------------------------------------------------------------------- plain numbers
def test_json_numbers_are_short_for_float32() -> None:
    """A float32 norm of 0.978 is written 0.978, not 0.9779999852180481; float64 keeps all."""
    r = hand_built(y=[0, 1, 2], pred_clean=[0, 1, 2], pred_adv=[1, 0, 2])
    r = AttackResult(**{**r.__dict__,
                        "perturbation_norm": torch.tensor([0.978, 0.1, 1 / 3])})
    text = json.dumps(r.to_dict(), allow_nan=False)
    assert "0.9779999852180481" not in text
    rec = json.loads(text)
    assert rec["samples"]["perturbation_norm"] == [0.978, 0.1, 0.33333334]
    # The short decimal reads back to the very same float32.
    assert torch.equal(torch.tensor(rec["samples"]["perturbation_norm"]), r.perturbation_norm)
    # Median over the successful samples 0 and 1 (0.1, 0.978): the lower middle, as torch.
    assert rec["summary"]["median_norm_successful"] == 0.1
    assert rec["summary"]["success_rate"] == 2 / 3 and rec["summary"]["robust_accuracy"] == 1 / 3
    wide = AttackResult(**{**r.__dict__,
                           "perturbation_norm": torch.tensor([0.978, 0.1, 1 / 3],
                                                             dtype=torch.float64)})
    assert wide.to_dict()["samples"]["perturbation_norm"] == [0.978, 0.1, 1 / 3]


def test_to_jsonable_shortens_float32_only() -> None:
    """to_jsonable writes float32 tensors, arrays and scalars short; float64 in full; NaN null."""
    v = np.float32(0.9779999852180481)
    assert float(v) == 0.9779999852180481
    assert to_jsonable(v) == 0.978
    assert to_jsonable(np.array([[v, np.float32("nan")]])) == [[0.978, None]]
    assert to_jsonable(torch.tensor([[0.978], [2.5]])) == [[0.978], [2.5]]
    assert to_jsonable(torch.tensor(0.978)) == 0.978
    assert to_jsonable(np.float64(0.9779999852180481)) == 0.9779999852180481
    assert to_jsonable({"a": (np.int64(3), torch.tensor([1, 2]))}) == {"a": [3, [1, 2]]}
    x = torch.rand(500, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.tensor(to_jsonable(x), dtype=torch.float32), x)


def test_sweep_result_is_a_curve() -> None:
    """sweep() returns a Curve, still usable as the list of results it used to be."""
    model, x, y = model_and_data()
    curve = FGSM().sweep(model, x, y, eps=[0.05, 0.1])
    assert isinstance(curve, Curve)
    assert [r.eps for r in curve] == [0.05, 0.1] and len(curve) == 2
