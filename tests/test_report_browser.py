"""The evaluation report opened in a real headless Chromium (Debian's ``chromium``).

The shipped page has no script. The test opens a copy with one inline script that,
after the window's load event, writes each image's natural and rendered size into
``data-*`` attributes; ``chromium --dump-dom`` then returns the DOM as the browser
built it. Checked: every figure loaded (natural size equal to its PNG's, rendered
size above zero), every number in the DOM equals the record's, and a screenshot
of the shipped page is not blank. Host names resolve nowhere, so a page that
needed the network would show broken images.

Without ``chromium`` the tests skip, or fail when ``HOODWINK_REQUIRE_BROWSER=1``
(CI sets it: ``make browser`` installs the package).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hoodwink.evaluation.render import write_report
from test_report_render import (
    check_numbers,
    make_record,
    make_tensors,
    page_numbers,
    required_keys,
    save,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

#: Written into the test's copy only: the shipped page stays script-free.
_PROBE = """<script>
window.addEventListener("load", function () {
  for (const img of document.images) {
    const box = img.getBoundingClientRect();
    img.setAttribute("data-natural-width", img.naturalWidth);
    img.setAttribute("data-natural-height", img.naturalHeight);
    img.setAttribute("data-rendered-width", Math.round(box.width));
    img.setAttribute("data-rendered-height", Math.round(box.height));
    img.setAttribute("data-complete", img.complete);
  }
  document.body.setAttribute("data-loaded", "yes");
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = ("Debian's chromium is not installed, so the report cannot be checked in a "
               "browser. Install it: apt-get install -y chromium (or run `make browser`).")
    if os.environ.get("HOODWINK_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " HOODWINK_REQUIRE_BROWSER=1 makes this a failure.")
    pytest.skip(message)


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), "--headless", "--disable-gpu", "--no-sandbox",
           "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp / 'profile'}",
           # Every host name fails to resolve: the page must need no network.
           "--host-resolver-rules=MAP * ~NOTFOUND", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Any]:
    tmp = tmp_path_factory.mktemp("browser")
    rec = make_record()
    tensors = make_tensors(rec)
    page = write_report(save(tmp, rec, tensors))
    return page, rec, tensors


def test_every_figure_loads_and_every_number_matches(
        saved: tuple[Path, dict[str, Any], Any], tmp_path: Path) -> None:
    page, rec, tensors = saved
    html_text = page.read_text(encoding="utf-8")
    assert "<script" not in html_text
    probe = tmp_path / "probe.html"
    probe.write_text(html_text.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    dom = _run(["--dump-dom", probe.as_uri()], tmp_path).stdout
    assert 'data-loaded="yes"' in dom, dom[:500]

    parsed = page_numbers(dom)
    figures = {str(i["data-figure"]): i for i in parsed.images}
    assert sorted(figures) == ["curve", "examples", "norms"]
    for name, img in figures.items():
        src = str(img["src"])
        width, height = _png_size(base64.b64decode(src.split(",", 1)[1]))
        assert img["data-complete"] == "true", name
        assert (int(str(img["data-natural-width"])), int(str(img["data-natural-height"]))) \
            == (width, height), name
        assert int(str(img["data-rendered-width"])) > 0, name
        assert int(str(img["data-rendered-height"])) > 0, name

    seen = check_numbers(parsed.numbers, json.loads(json.dumps(rec)), tensors)
    assert not required_keys(rec) - seen
    # The browser's DOM holds every number of the file, with the same text.
    assert [(n["key"], n["text"]) for n in parsed.numbers] == [
        (n["key"], n["text"]) for n in page_numbers(html_text).numbers]


def test_screenshot_of_the_shipped_page_is_not_blank(
        saved: tuple[Path, dict[str, Any], Any], tmp_path: Path) -> None:
    from PIL import Image

    page, _, _ = saved
    shot = tmp_path / "shot.png"
    _run([f"--screenshot={shot}", "--window-size=1100,2400", "--hide-scrollbars",
          page.as_uri()], tmp_path)
    with Image.open(shot) as im:
        grey = im.convert("L")
        assert grey.size == (1100, 2400)
        hist = grey.histogram()
    dark = sum(hist[:128]) / sum(hist)
    # Text, tables and the curve: a real page has dark pixels, but is mostly white.
    assert 0.005 < dark < 0.5, dark
