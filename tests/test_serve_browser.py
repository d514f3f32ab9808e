"""``hoodwink serve`` driven in a real browser: Playwright on Debian's system Chromium.

The test starts the server on a free port of 127.0.0.1, opens the page, uploads
the bundled cat, types a target by a synonym ("lighthouse", which ImageNet calls
"beacon"), waits for the result, downloads the PNG through the page's link and
checks it independently of the server: its size equals the upload's, no pixel
moved more than eps·255 from the original, and a freshly loaded EfficientNet-Lite0
classifies it as the target. Every request the page makes must go to the server
(nothing from the network). A bad file must give a clear message on the page.

Playwright's own browser download does not work here, so the test launches
``/usr/bin/chromium`` (``make browser`` installs it). Without chromium or the
playwright package the tests skip, or fail when ``HOODWINK_REQUIRE_BROWSER=1``.
With ``HOODWINK_UPDATE_DOCS=1`` the page's screenshot is saved as
``docs/images/serve.png`` for the README.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
CAT = ROOT / "examples" / "images" / "chelsea.jpg"
BEACON = 437
EPS_255 = 4


def _missing(message: str) -> None:
    if os.environ.get("HOODWINK_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " HOODWINK_REQUIRE_BROWSER=1 makes this a failure.")
    pytest.skip(message)


def _chromium() -> str:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    _missing("Debian's chromium is not installed, so the page cannot be tested in a browser. "
             "Install it: apt-get install -y chromium (or run `make browser`).")
    raise AssertionError("unreachable")


def _sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("The playwright package is not installed: pip install -e '.[dev]'.")
    return sync_playwright


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    chromium, sync_playwright = _chromium(), _sync_playwright()
    del chromium, sync_playwright  # checked before the model loads
    pytest.importorskip("fastapi")
    from hoodwink.serve import create_app, running

    out = tmp_path_factory.mktemp("serve") / "out"
    app = create_app(out=out)
    with running(app) as url:
        yield url, out


@pytest.fixture()
def page(server: tuple[str, Path]) -> Iterator[tuple[Any, list[str]]]:
    url, _ = server
    with _sync_playwright()() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  # Every host name fails to resolve: the page must need no network.
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            context = browser.new_context(accept_downloads=True,
                                          viewport={"width": 1100, "height": 900})
            pg = context.new_page()
            requests: list[str] = []
            pg.on("request", lambda r: requests.append(r.url))
            pg.goto(url + "/")
            # A function, not an expression string: the page's CSP forbids eval.
            pg.wait_for_function(
                "() => document.querySelectorAll('#classes option').length === 1000")
            yield pg, requests
        finally:
            browser.close()


def test_upload_fool_download_and_check(page: tuple[Any, list[str]], server: tuple[str, Path],
                                        tmp_path: Path) -> None:
    pg, requests = page
    url, _ = server
    pg.set_input_files("#photo", str(CAT))
    pg.fill("#target", "lighthouse")
    pg.select_option("#eps", str(EPS_255))
    t0 = time.perf_counter()
    pg.click("#go")
    pg.wait_for_selector("#result:not([hidden])", timeout=180_000)
    seconds = time.perf_counter() - t0
    assert pg.is_hidden("#error")
    assert "beacon" in pg.inner_text("#summary")
    after = pg.locator("#after tbody tr")
    assert after.count() == 5 and "beacon (437)" in after.nth(0).inner_text()
    assert pg.locator("#before tbody tr").count() == 5
    assert pg.locator("#survival-table, #survival-note").count() == 1
    # The triptych really loaded in the browser.
    assert pg.eval_on_selector("#triptych", "i => i.complete && i.naturalWidth") > 0

    with pg.expect_download() as info:
        pg.click("#download-png")
    download = info.value
    assert download.suggested_filename == "chelsea-adv.png"
    saved = tmp_path / "downloaded.png"
    download.save_as(saved)

    from PIL import Image

    with Image.open(saved) as im:
        assert im.format == "PNG" and im.size == Image.open(CAT).size == (451, 300)
        adv = np.asarray(im.convert("RGB"), dtype=np.int16)
    orig = np.asarray(Image.open(CAT).convert("RGB"), dtype=np.int16)
    assert 1 <= int(np.abs(adv - orig).max()) <= EPS_255
    import torch

    from hoodwink import zoo

    clf = zoo.load("efficientnet-lite0")
    x = torch.from_numpy(adv.astype(np.float32) / 255).permute(2, 0, 1)[None]
    assert int(clf.predict(x)[0]) == BEACON
    # Nothing but the server was asked for anything.
    assert requests and all(r.startswith(url + "/") for r in requests), requests

    shot = tmp_path / "serve.png"
    pg.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as im:
        assert np.asarray(im.convert("L")).std() > 10  # not a blank page
    if os.environ.get("HOODWINK_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "images" / "serve.png")
    print(f"upload to result in the browser: {seconds:.2f} s")


def test_a_bad_file_gets_a_clear_message(page: tuple[Any, list[str]], tmp_path: Path) -> None:
    pg, _ = page
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo", encoding="utf-8")
    pg.set_input_files("#photo", str(bad))
    pg.fill("#target", "goldfish")
    pg.click("#go")
    pg.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "'notes.jpg' is not an image this page can read" in pg.inner_text("#error")
    assert pg.is_hidden("#result")
