"""The study contract: ``run`` returns data only, ``report`` needs nothing but the record.

For each study on tiny settings: the record survives a JSON round trip
exactly, and the report drawn from the record read back gives the same
Markdown and the same figure names as the report drawn from the original.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hoodwink.studies import background, dream, transfer


def _transfer() -> dict[str, Any]:
    return transfer.run("mnist-cnn", ["mnist-linear"], n=12, eps=[0.1], steps=2, seed=0)


def _dream() -> dict[str, Any]:
    return dream.run("mnist-cnn", [3, 7], steps=40, stepsize=2 / 255, confidence=0.9)


def _background() -> dict[str, Any]:
    return background.run(rounds=1, fooling_per_round=4, train_size=200, test_size=50,
                          epochs=1, epochs_per_round=1, steps=20, batch_size=32)


STUDIES: dict[str, tuple[Callable[[], dict[str, Any]], Any]] = {
    "transfer": (_transfer, transfer),
    "dream": (_dream, dream),
    "background": (_background, background),
}


def _plain(v: Any) -> bool:
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, str | int | float | bool)


@pytest.mark.parametrize("name", list(STUDIES))
def test_run_record_round_trips_and_report_needs_only_it(name: str, tmp_path: Path) -> None:
    make, module = STUDIES[name]
    record = make()
    assert _plain(record)
    back = json.loads(json.dumps(record))
    assert back == record
    first = module.report(record)
    again = module.report(back)
    assert again.markdown() == first.markdown()
    assert set(again.figures) == set(first.figures) and first.figures
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in first.figures.values())
    # Written, read back and rendered once more: the saved JSON is enough on its own.
    paths = first.write(tmp_path / name, stem=name)
    saved = json.loads(paths.json.read_text(encoding="utf-8"))
    assert module.report(saved).markdown() == first.markdown()
    assert paths.markdown.read_text(encoding="utf-8") == first.markdown()
    for fig in first.figures:
        assert (paths.folder / fig).is_file()


def test_dream_record_holds_the_judged_png() -> None:
    """The PNGs in the record are the files the confidences were measured on."""
    from hoodwink import zoo
    from hoodwink.imaging import decode_png
    from hoodwink.studies._record import from_b64

    record = _dream()
    model = zoo.load("mnist-cnn")
    for e in record["images"]:
        x = decode_png(from_b64(e["png"]), "L")
        p = float(model.probabilities(x)[0, e["target"]])
        assert p == pytest.approx(e["confidence_png"], abs=1e-6)
    rendered = dream.report(record)
    assert all(rendered.figures[e["file"]] == from_b64(e["png"]) for e in record["images"])


# ---------------------------------------------------------------------------- linear studies
def _linear_data() -> Any:
    from hoodwink.studies.linear import synthetic_images

    return synthetic_images(size=8, per_class=10, val_per_class=5)


def _linear_model() -> Any:
    from hoodwink.studies.linear import train_linear

    d = _linear_data()
    model, _ = train_linear(d.x_train, d.y_train, lr=0.05, epochs=3, weight_decay=1.0,
                            class_names=d.class_names, warn=False)
    return model


def _linear(name: str) -> tuple[dict[str, Any], Any]:
    from hoodwink.studies.linear.experiments import (
        dimension,
        fool,
        regularization,
        templates,
        toy,
        train,
    )

    if name == "train":
        return train.run(_linear_data(), lr=0.05, epochs=3, weight_decay=1.0, warn=False), train
    if name == "templates":
        return templates.run(_linear_model()), templates
    if name == "fool":
        return fool.run(_linear_model(), _linear_data(), n_compare=5, eps_linf=[0.1],
                        eps_l2=[1.0], pgd_steps=2), fool
    if name == "regularization":
        return regularization.run(_linear_data(), [1e-2, 1.0], epochs=2, eps=0.1), regularization
    if name == "dimension":
        return dimension.run(_linear_data(), [(4, 4), (8, 8)], epochs=2), dimension
    return toy.run(), toy


LINEAR = ["train", "templates", "fool", "regularization", "dimension", "toy"]


@pytest.mark.parametrize("name", LINEAR)
def test_linear_record_round_trips_and_report_needs_only_it(name: str, tmp_path: Path) -> None:
    record, module = _linear(name)
    assert _plain(record)
    back = json.loads(json.dumps(record, allow_nan=False))
    assert back == record
    first = module.report(record)
    again = module.report(back)
    assert again.markdown() == first.markdown()
    assert set(again.figures) == set(first.figures) and first.figures
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in first.figures.values())
    paths = first.write(tmp_path / name)
    saved = json.loads(paths.json.read_text(encoding="utf-8"))
    assert saved["schema"] == f"hoodwink.linear.{name}/1"
    assert module.report(saved).markdown() == first.markdown()
    assert sorted(saved["figures"]) == sorted(first.figures)
    for fig in first.figures:
        assert (paths.folder / fig).is_file()


# ---------------------------------------------------------------------------- fool
def _digit_png(folder: Path) -> tuple[Path, int]:
    """A correctly classified held-out MNIST digit saved as an 8-bit PNG."""
    import torch
    from PIL import Image

    from hoodwink import zoo
    from hoodwink.data.mnist import load_mnist

    x, y = load_mnist("test")
    pred = zoo.load("mnist-cnn").predict(x[:20])
    i = int((pred == y[:20]).nonzero()[0, 0])
    arr = (x[i, 0] * 255).round().to(torch.uint8).numpy()
    p = folder / "digit.png"
    Image.fromarray(arr, mode="L").save(p)
    return p, int(y[i])


def test_fool_record_round_trips_and_report_needs_only_it(tmp_path: Path) -> None:
    """fool.run's record is plain data; the report from its JSON is the same page."""
    from hoodwink.imaging import decode_png
    from hoodwink.studies import fool
    from hoodwink.studies._record import from_b64

    src, label = _digit_png(tmp_path)
    target = (label + 3) % 10
    record = fool.run("mnist-cnn", src, target=target, eps=0.3, steps=40)
    assert _plain(record)
    back = json.loads(json.dumps(record, allow_nan=False))
    assert back == record
    assert record["success"] and record["after"][0]["index"] == target
    assert record["mode"] == "L" and record["size"] == [28, 28]
    assert {"attack", "png_roundtrip", "total"} <= set(record["timings_s"])
    first = fool.report(record)
    again = fool.report(back)
    assert again.markdown() == first.markdown()
    assert set(again.figures) == set(first.figures) == {"digit-adv.png",
                                                       "digit-adv-triptych.png"}
    assert again.figures == first.figures
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in first.figures.values())
    # The adversarial PNG in the record is the file the "after" predictions describe.
    from hoodwink import zoo

    x_adv = decode_png(from_b64(record["images"]["adversarial"]["png"]), "L")
    p = float(zoo.load("mnist-cnn").probabilities(x_adv)[0, target])
    assert p == pytest.approx(record["after"][0]["probability"], abs=1e-6)
    paths = first.write(tmp_path / "fool", stem="digit-adv")
    saved = json.loads(paths.json.read_text(encoding="utf-8"))
    assert saved["schema"] == "hoodwink.fool/1"
    assert fool.report(saved).markdown() == first.markdown()
    for fig in first.figures:
        assert (paths.folder / fig).is_file()
    # The same attack through fool_image writes the same PNG and the same triptych.
    out = tmp_path / "cli" / "digit-adv.png"
    out.parent.mkdir()
    fool.fool_image(zoo.load("mnist-cnn"), src, model_name="mnist-cnn", target=target,
                    eps=0.3, out=out, steps=40, mode="L")
    assert out.read_bytes() == first.figures["digit-adv.png"]
    assert (out.parent / "digit-adv-triptych.png").read_bytes() == \
        first.figures["digit-adv-triptych.png"]
