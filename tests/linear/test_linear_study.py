"""The regularisation and dimension studies, on small synthetic data where the trends must show."""

from __future__ import annotations

import math

import pytest
import torch

from hoodwink.errors import ConfigError
from hoodwink.studies.linear import (
    dimension_study,
    essay_findings,
    regularization_study,
    roughness,
    synthetic_images,
)
from hoodwink.studies.linear.study import spearman


def test_roughness_reference_values() -> None:
    flat = torch.ones(1, 1, 16, 16)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 1, 64, 64, generator=g)
    assert float(roughness(flat)[0]) == 0.0
    assert float(roughness(noise)[0]) == pytest.approx(4.0, rel=0.05)
    assert float(roughness(3.0 * noise)[0]) == pytest.approx(float(roughness(noise)[0]))


@pytest.fixture(scope="module")
def study() -> object:
    # Full-batch gradient descent (batch = all 45 images) on 144 pixels: every model is
    # close to its regularised optimum, which moves from fitting the pixel noise (weak
    # decay) to the smooth class means (strong decay).
    data = synthetic_images(size=12, per_class=15, signal=0.1, noise=0.3)
    return regularization_study(data, [1e-2, 1e-1, 1.0, 10.0, 100.0], lr=0.1, epochs=300,
                                batch_size=45, eps=0.15)


def test_regularization_trends_are_monotone_on_synthetic_data(study: object) -> None:
    rows = study.rows  # type: ignore[attr-defined]
    assert [r["weight_decay"] for r in rows] == [1e-2, 1e-1, 1.0, 10.0, 100.0]
    norms = [r["weight_norm"] for r in rows]
    rough = [r["roughness"] for r in rows]
    l2 = [r["mean_l2_distance"] for r in rows]
    linf = [r["mean_linf_distance"] for r in rows]
    conf = [r["fooling_confidence"] for r in rows]
    assert norms == sorted(norms, reverse=True)  # stronger decay, smaller weights
    assert rough == sorted(rough, reverse=True)  # ... smoother templates
    assert l2 == sorted(l2) and linf == sorted(linf)  # ... harder to fool
    assert conf == sorted(conf, reverse=True)  # ... less confident wrong answers
    assert rough[0] - rough[-1] > 0.1
    findings = {f["measure"]: f for f in study.findings}  # type: ignore[attr-defined]
    for measure in ("roughness", "mean_l2_distance", "mean_linf_distance",
                    "fooling_confidence"):
        assert findings[measure]["holds"] and findings[measure]["monotone"]


def test_essay_findings_judges_from_the_numbers() -> None:
    rows = [
        {"weight_decay": 1e-3, "roughness": 2.0, "val_accuracy": 0.9, "mean_l2_distance": 0.5,
         "mean_linf_distance": 0.05, "fooling_confidence": 0.9},
        {"weight_decay": 1.0, "roughness": 1.0, "val_accuracy": 0.95, "mean_l2_distance": 0.4,
         "mean_linf_distance": 0.08, "fooling_confidence": 0.3},
    ]
    got = {f["measure"]: f["holds"] for f in essay_findings(rows)}
    assert got == {"roughness": True, "val_accuracy": False, "mean_l2_distance": False,
                   "mean_linf_distance": True, "fooling_confidence": True}


def test_spearman() -> None:
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [1, 1, 1]))


def test_study_rejects_bad_decays() -> None:
    data = synthetic_images(size=6, per_class=4, val_per_class=4)
    with pytest.raises(ConfigError, match="weight_decays"):
        regularization_study(data, [1e-3])
    with pytest.raises(ConfigError, match="weight_decays"):
        regularization_study(data, [0.0, 1.0])


def test_dimension_study_measures_eps_l1_on_trained_models() -> None:
    data = synthetic_images(size=16, per_class=20, val_per_class=10)
    st = dimension_study(data, [(4, 4), (8, 8), (16, 16)], eps=0.01, epochs=20)
    rows = st.rows
    assert [r["n"] for r in rows] == [16, 64, 256]
    for r, model in zip(rows, st.models, strict=True):
        # The measured score change of eps*sign(w_c) is exactly eps*||w_c||_1 = eps*n*m.
        assert r["activation_change"] == pytest.approx(0.01 * r["l1_norm"], rel=1e-6)
        assert r["activation_change"] == pytest.approx(r["formula"], rel=1e-6)
        assert r["activation_change_clipped"] <= r["activation_change"] + 1e-12
        assert model.input_dim == r["n"]
    assert rows[0]["fixed_m_prediction"] == pytest.approx(rows[0]["formula"])
