"""``hoodwink serve``: the main job on a local web page.

A thin shell over :func:`hoodwink.serve.create_app` and
:func:`hoodwink.serve.serve_forever`: each flag maps onto one of their
arguments. The address is checked (bound) before the model loads, so a port in
use costs one line and exit code 2. The page is served on 127.0.0.1 unless
``--host`` says otherwise; any other address gets a loud warning, since the page
has no login and anyone who reaches it can use this machine's CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hoodwink.cli._common import check_output, print_warning, run_guarded

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in
        tests).
    """

    @app.command("serve")
    def serve_cmd(
        host: Annotated[
            str, typer.Option(help="The address to listen on. 127.0.0.1: this machine only. "
                                   "0.0.0.0 opens the page to the network, without a login.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="The TCP port (0: any free port).")] = 8765,
        out: Annotated[
            Path | None, typer.Option(help="The output folder; each request writes only into "
                                           "its own folder inside it. Default: ./out/serve/.")
        ] = None,
        model: Annotated[
            str, typer.Option(help="The photo classifier: efficientnet-lite0, -lite1 or "
                                   "-lite2 (loaded once, at start-up).")
        ] = "efficientnet-lite0",
        steps: Annotated[
            int | None, typer.Option(help="Attack steps per request. Default: 40 for plain "
                                          "PGD, more in the robust mode.")
        ] = None,
        survival_draws: Annotated[
            int, typer.Option(help="Held-out random transformations (real JPEG, resizing, "
                                   "rotation...) each result is checked against; 0: no "
                                   "survival table.")
        ] = 20,
        max_upload_mb: Annotated[
            float, typer.Option(help="Largest upload accepted, in MiB.")
        ] = 25.0,
        max_pixels: Annotated[
            int | None, typer.Option(help="Largest image accepted, width × height. Default: "
                                          "the CLI's limit (40,000,000).")
        ] = None,
        max_waiting: Annotated[
            int, typer.Option(help="Most requests waiting in line; more are refused (503).")
        ] = 16,
    ) -> None:
        """Start a local web page: upload a photo, pick a target class, download the fooled PNG."""

        def go() -> None:
            from hoodwink._validation import check_real
            from hoodwink.imaging import MAX_PIXELS
            from hoodwink.serve import bind_socket, create_app, is_loopback, serve_forever

            folder = check_output(out, "serve", kind="folder")
            mib = check_real("serve", "max_upload_mb", max_upload_mb, low=0.001)
            if not is_loopback(host):
                print_warning(
                    f"serving on {host}: anyone who can reach this machine on port {port} can "
                    "upload photos and run attacks on its CPU; the page has no login. Use "
                    "--host 127.0.0.1 unless you mean it."
                )
            sock = bind_socket(host, port)  # a port in use fails here, before the model loads
            try:
                app = create_app(model_name=model, out=folder, steps=steps,
                                 survival_draws=survival_draws,
                                 max_upload_bytes=max(1, int(mib * 2**20)),
                                 max_pixels=max_pixels if max_pixels is not None else MAX_PIXELS,
                                 max_waiting=max_waiting)
                bound = sock.getsockname()
                shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
                typer.echo(f"hoodwink serve: open http://{shown}:{bound[1]}/ (Ctrl-C stops); "
                           f"writing into {folder}/", err=True)
                serve_forever(app, sock)
            finally:
                sock.close()

        run_guarded(go)
