"""The attack registry, `hoodwink attacks` and docs/attacks.md agree with the classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hoodwink.attacks import registry
from hoodwink.cli.main import app
from hoodwink.errors import ConfigError

DOC = (Path(__file__).resolve().parents[1] / "docs" / "attacks.md").read_text(encoding="utf-8")
NEEDS = {"white-box": "gradients", "scores": "scores", "labels": "labels"}


@pytest.mark.parametrize("info", registry.available(), ids=lambda i: i.name)
def test_docs_table_row_is_the_registry(info: registry.AttackInfo) -> None:
    row = (f"| `{info.name}` | `{info.cls.__name__}` | {NEEDS[info.threat]} | "
           f"{', '.join(info.norms)} | {'yes' if info.minimum_norm else 'no'} | {info.summary} |")
    assert row in DOC


def test_cli_lists_every_attack_as_json() -> None:
    out = CliRunner().invoke(app, ["attacks", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["name"] for r in rows] == [i.name for i in registry.available()]
    threats = {r["name"]: r["threat"] for r in rows}
    assert threats["pgd"] == "white-box" and threats["square"] == "scores"
    assert threats["hopskipjump"] == "labels" and threats["substitute"] == "labels"


def test_make_applies_the_names_defaults_and_rejects_unknown_names() -> None:
    assert registry.make("simba-dct").basis == "dct"  # type: ignore[attr-defined]
    assert registry.make("fd", max_queries=60).estimator == "fd"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="Unknown attack 'nope'.*square"):
        registry.get("nope")
