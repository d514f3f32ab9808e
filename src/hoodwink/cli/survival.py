"""``hoodwink survival``: does a fooled image survive JPEG, resizing and edits?

A thin shell over :func:`hoodwink.survival.survival`: the saved image goes
through the real operations (Pillow's JPEG codec at qualities 95, 75, 50 and
held-out random draws of a resize, rotation, crop, blur, brightness or
contrast change followed by JPEG), and the table says how often the target
(or, untargeted, any class but the original's) is kept. ``--json`` prints the
record instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hoodwink.cli._common import console, resolve_target, run_guarded
from hoodwink.cli._study_options import JsonOpt, SeedOpt

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``survival`` to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in
        tests).
    """

    @app.command("survival")
    def survival_cmd(
        image: Annotated[Path, typer.Argument(
            help="The fooled image as saved (e.g. out/fool/photo-adv.png).")],
        original: Annotated[Path | None, typer.Option(
            help="The photo before the attack: its class is the one to stay away from "
                 "(untargeted), and the largest change is reported.")] = None,
        target: Annotated[str | None, typer.Option(
            help="Target class the image should keep (name, synonym or index); without it, "
                 "kept means any class but the original's (needs --original).")] = None,
        model: Annotated[str, typer.Option(help="Model name (see `hoodwink models`).")]
        = "efficientnet-lite0",
        draws: Annotated[int, typer.Option(
            help="Held-out random draws (a transformation, then JPEG at quality 50-95).")]
        = 50,
        seed: SeedOpt = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """Apply real JPEG, resizing, rotation, crops, blur and lighting changes to IMAGE and
        report how often the fooling survives."""

        def go() -> None:
            from hoodwink import zoo
            from hoodwink.errors import ConfigError, ShapeError
            from hoodwink.imaging import load_image
            from hoodwink.studies.fool import _load_for
            from hoodwink.survival import survival

            if target is None and original is None:
                raise ConfigError(
                    "Give --target (the class the image should keep) or --original (the photo "
                    "before the attack; then any other class counts as kept)."
                )
            name = zoo.canonical_name(model)
            clf = zoo.load(name)
            x_adv, attacked = _load_for(clf, image, None)
            t = resolve_target(clf, target) if target is not None else None
            y0 = None
            max_change = None
            if original is not None:
                x0 = load_image(original, mode="L" if x_adv.shape[1] == 1 else "RGB")
                if x0.shape != x_adv.shape:
                    raise ShapeError(
                        f"{original} is {x0.shape[-1]}×{x0.shape[-2]} but {image} is "
                        f"{x_adv.shape[-1]}×{x_adv.shape[-2]}; give the photo the image was "
                        "made from."
                    )
                y0 = int(attacked.predict(x0)[0])
                max_change = int(round(float((x_adv - x0).abs().max()) * 255))
            rep = survival(attacked, image, target=t, original_label=y0, draws=draws,
                           seed=seed)
            rec = rep.to_dict()
            names = clf.class_names
            rec["image"] = str(image)
            rec["model"] = name
            if t is not None:
                rec["target_name"] = names[t] if names else str(t)
            if y0 is not None:
                rec["original"] = str(original)
                rec["original_name"] = names[y0] if names else str(y0)
                rec["max_change_255"] = max_change
            if as_json:
                typer.echo(json.dumps(rec, indent=2))
                return
            from rich.table import Table

            goal = (f"target {rec['target_name']}" if t is not None
                    else f"anything but {rec['original_name']}")
            table = Table(title=f"{name} on {image.name}: {goal} kept after real operations")
            for col in ("transformation", "kept", "n", "rate", "95% CI"):
                table.add_column(col)
            for r in rep.table:
                lo, hi = r["ci95"]
                table.add_row(r["family"], str(r["kept"]), str(r["n"]), f"{r['rate']:.0%}",
                              f"{lo:.0%}–{hi:.0%}")
            console.print(table)
            extra = (f"; largest change from {original.name}: {max_change}/255"
                     if original is not None and max_change is not None else "")
            console.print(f"held-out draws seed {seed}{extra}", highlight=False)

        run_guarded(go)
