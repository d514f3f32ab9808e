"""``hoodwink serve``: the web application through FastAPI's TestClient (no browser).

A real attack on the bundled cat with EfficientNet-Lite0 (loaded once for the
module), checked independently of the server: the downloaded PNG is read with
Pillow, compared pixel by pixel with the upload and classified again. Then the
refusals (not an image, truncated, too large in bytes or pixels, bad fields),
the queue (one job at a time, places in line, a full line refused), that nothing
is written outside the output folder (not even the system's temporary folder),
and the command's own checks through a typer app.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

with warnings.catch_warnings():  # starlette's TestClient warns about httpx's future
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from PIL import Image  # noqa: E402

from hoodwink.errors import ConfigError, InputError  # noqa: E402
from hoodwink.serve import (  # noqa: E402
    BUDGETS_255,
    Job,
    JobQueue,
    QueueFullError,
    create_app,
    fool_features,
    is_loopback,
)

CAT = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.jpg"
GOLDFISH, TIGER_CAT, BEACON = 1, 282, 437


@pytest.fixture(scope="module")
def lite0() -> Any:
    from hoodwink import zoo

    return zoo.load("efficientnet-lite0")


def _client(app: Any) -> TestClient:
    return TestClient(app)


@pytest.fixture(scope="module")
def served(lite0: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient,
                                                                                   Path]]:
    root = tmp_path_factory.mktemp("serve") / "out"
    app = create_app(lite0, model_name="efficientnet-lite0", out=root, survival_draws=6)
    with _client(app) as client:
        yield client, root


def _wait(client: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if st["state"] in ("done", "failed"):
            return st
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _post(client: TestClient, data: bytes, name: str = "chelsea.jpg", **fields: str) -> Any:
    return client.post("/api/jobs", files={"file": (name, data, "application/octet-stream")},
                       data=fields)


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def _job_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


# ---------------------------------------------------------------------------- the main job


@pytest.fixture(scope="module")
def fooled(served: tuple[TestClient, Path]) -> dict[str, Any]:
    client, _ = served
    r = _post(client, CAT.read_bytes(), name="../../my cat.jpg", target="goldfish", eps="2")
    assert r.status_code == 202, r.text
    assert r.json()["position"] == 1
    st = _wait(client, r.json()["id"])
    assert st["state"] == "done", st["error"]
    return st


def test_result_matches_an_independent_check(
        served: tuple[TestClient, Path], fooled: dict[str, Any], lite0: Any) -> None:
    client, _ = served
    res = fooled["result"]
    assert res["success"] is True and res["target"] == {"index": GOLDFISH, "name": "goldfish"}
    png = client.get(res["files"]["png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    adv, orig = _pixels(png.content), _pixels(CAT.read_bytes())
    assert adv.shape == orig.shape == (300, 451, 3)
    assert res["size"] == [451, 300]
    change = int(np.abs(adv - orig).max())
    assert 1 <= change <= 2 and res["max_change_255"] == change
    import torch

    x = torch.from_numpy(adv.astype(np.float32) / 255).permute(2, 0, 1)[None]
    probs = lite0.probabilities(x)[0]
    assert int(probs.argmax()) == GOLDFISH == res["after"][0]["index"]
    assert res["after"][0]["probability"] == pytest.approx(float(probs[GOLDFISH]), abs=1e-5)
    # Top-5 both ways; "before" is the upload's own ranking (a cat).
    assert len(res["before"]) == len(res["after"]) == 5
    assert res["before"][0]["index"] == TIGER_CAT
    ps = [p["probability"] for p in res["before"]]
    assert ps == sorted(ps, reverse=True)


def test_downloads_have_safe_names_and_the_record_agrees(
        served: tuple[TestClient, Path], fooled: dict[str, Any]) -> None:
    client, root = served
    res = fooled["result"]
    assert res["source_name"] == "my_cat.jpg"  # the path is dropped, odd characters replaced
    got = client.get(res["files"]["png"], params={"download": 1})
    assert got.headers["content-disposition"] == 'attachment; filename="my_cat-adv.png"'
    record = client.get(res["files"]["json"], params={"download": 1}).json()
    assert record["schema"] == "hoodwink.fool/1"
    assert record["target"] == GOLDFISH and record["eps_255"] == 2
    assert record["max_change_255"] == res["max_change_255"]
    # Every file lies in the job's own folder, named by its random id.
    folder = root / fooled["id"]
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == sorted(f"{fooled['id']}/{n}" for n in (
        "in/my_cat.jpg", "my_cat-adv.png", "my_cat-adv.json", "my_cat-adv-triptych.png"))
    assert (folder / "in" / "my_cat.jpg").read_bytes() == CAT.read_bytes()
    fig = client.get(res["files"]["figure"])
    assert fig.status_code == 200 and fig.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_survival_table_or_a_clear_note(fooled: dict[str, Any]) -> None:
    res = fooled["result"]
    if "survival_draws" not in fool_features():
        assert res["survival"] is None
        assert res["survival_note"].startswith("survival: not measured")
        return
    assert res["survival_note"] is None
    table = {row["family"]: row for row in res["survival"]["table"]}
    for q in (95, 75, 50):  # the real JPEG rows are always there
        assert table[f"jpeg-{q}"]["n"] == 1
    assert table["png"]["kept"] == 1  # the lossless PNG itself keeps the target
    rows = res["survival"]["rows"]
    assert len(rows) >= 3 + 6  # the fixed JPEG rows and the server's 6 held-out draws
    assert all(isinstance(r["kept"], bool) and 0 <= r["pred"] < 1000 for r in rows)


def test_page_and_info(served: tuple[TestClient, Path]) -> None:
    client, _ = served
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    text = page.text
    assert "http://" not in text and "https://" not in text  # nothing from the network
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in text and client.get(asset).status_code == 200
    info = client.get("/api/info").json()
    assert info["model"] == "efficientnet-lite0" and len(info["classes"]) == 1000
    assert info["classes"][GOLDFISH] == "goldfish"
    assert info["budgets_255"] == list(BUDGETS_255) == list(range(1, 17))
    assert info["robust_available"] == ("robust" in fool_features())


# ---------------------------------------------------------------------------- refusals


def _refused(client: TestClient, root: Path, data: bytes, status: int, needle: str,
             **fields: str) -> None:
    before = _job_folders(root)
    r = _post(client, data, **{"target": "goldfish", **fields})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"], r.json()
    assert _job_folders(root) == before  # a refused upload leaves no folder behind


def test_bad_files_get_clear_messages(served: tuple[TestClient, Path]) -> None:
    client, root = served
    data = CAT.read_bytes()
    _refused(client, root, b"hello, not a photo", 400, "is not an image this page can read")
    _refused(client, root, data[: len(data) // 2], 400, "is truncated")
    _refused(client, root, b"", 400, "The upload is empty")


def test_bad_fields_get_clear_messages(served: tuple[TestClient, Path]) -> None:
    client, root = served
    data = CAT.read_bytes()
    _refused(client, root, data, 400, "387", target="panda")  # two classes: ambiguous
    _refused(client, root, data, 400, "Unknown", target="no such class at all")
    _refused(client, root, data, 400, "Choose a target class", target="  ")
    _refused(client, root, data, 400, "1/255 .. 16/255", eps="17")
    _refused(client, root, data, 400, "1/255 .. 16/255", eps="0.5")
    _refused(client, root, data, 400, "robust field", robust="maybe")
    if "robust" not in fool_features():
        _refused(client, root, data, 400, "not available", robust="true")
    r = client.post("/api/jobs", content=data, headers={"content-type": "image/jpeg"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    r = client.post("/api/jobs", data={"target": "goldfish"},
                    files={"other": ("x", b"1", "text/plain")})
    assert r.status_code == 400 and "'file' field" in r.json()["error"]


def test_limits_in_bytes_and_pixels(lite0: Any, tmp_path: Path) -> None:
    data = CAT.read_bytes()
    small = create_app(lite0, out=tmp_path / "a", max_upload_bytes=len(data) - 1)
    with _client(small) as client:
        _refused(client, tmp_path / "a", data, 413, "over this server's limit of")
    few = create_app(lite0, out=tmp_path / "b", max_pixels=451 * 300 - 1)
    with _client(few) as client:
        _refused(client, tmp_path / "b", data, 413, "451×300 = 135,300 pixels")
    assert {p.name for p in tmp_path.iterdir()} == {"a", "b"}


def test_uploads_never_touch_the_system_temp_folder(
        served: tuple[TestClient, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # Starlette spools uploads over 1 MiB to a temporary file (unnamed on Linux, so it is
    # counted here, not looked for); the server keeps them in memory instead.
    opened: list[Any] = []
    real = tempfile.TemporaryFile

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", counting)
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    assert buf.tell() > 1.2 * 2**20
    client, root = served
    _refused(client, root, buf.getvalue(), 400, "Unknown", target="no such class at all")
    assert opened == []


def test_unknown_jobs_and_files(served: tuple[TestClient, Path], fooled: dict[str, Any]) -> None:
    client, _ = served
    assert client.get("/api/jobs/" + "0" * 32).status_code == 404
    assert client.get("/api/jobs/../../etc/passwd").status_code == 404
    base = f"/api/jobs/{fooled['id']}/files"
    assert client.get(f"{base}/secret").status_code == 404
    assert client.get(f"{base}/..%2F..%2Fin").status_code == 404
    assert client.get(f"{base}/original").content == CAT.read_bytes()


# ------------------------------------------------------------------ failures of the attack


def test_a_budget_too_small_fails_cleanly(lite0: Any, tmp_path: Path) -> None:
    app = create_app(lite0, out=tmp_path, steps=1, survival_draws=0)
    with _client(app) as client:
        r = _post(client, CAT.read_bytes(), target="lighthouse", eps="1")
        st = _wait(client, r.json()["id"])
        assert st["target"] == {"index": BEACON, "name": "beacon"}  # a synonym, resolved
        assert st["state"] == "failed" and "was not enough" in st["error"]
        folder = tmp_path / st["id"]
        # Nothing but the upload: fool_image writes only a success.
        assert [p.name for p in folder.rglob("*") if p.is_file()] == ["chelsea.jpg"]
        assert client.get(f"/api/jobs/{st['id']}/files/png").status_code == 404

        r = _post(client, CAT.read_bytes(), target=str(TIGER_CAT), eps="2")
        st = _wait(client, r.json()["id"])
        assert st["state"] == "failed" and "already classified as the target" in st["error"]


# ---------------------------------------------------------------------------- the queue


def _job(i: int) -> Job:
    return Job(id=f"{i:032x}", folder=Path("."), upload=Path("."), source_name="x.png",
               target=0, target_name="t", eps_255=2, robust=False)


def test_queue_runs_one_job_at_a_time_in_order() -> None:
    gate, running, order = threading.Event(), [0], []
    peak = [0]
    lock = threading.Lock()

    def run(job: Job) -> dict[str, Any]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(10)
        order.append(job.id)
        with lock:
            running[0] -= 1
        return {"n": int(job.id, 16)}

    q = JobQueue(run, max_waiting=2)
    q.start()
    jobs = [_job(i) for i in range(3)]
    assert q.submit(jobs[0]) == 1
    end = time.monotonic() + 5
    while jobs[0].state != "running" and time.monotonic() < end:
        time.sleep(0.005)
    assert [q.submit(j) for j in jobs[1:]] == [1, 2]
    assert [q.position(j) for j in jobs] == [0, 1, 2]
    with pytest.raises(QueueFullError, match="waiting already"):
        q.submit(_job(9))
    gate.set()
    assert all(q.wait(j, timeout=10) for j in jobs)
    q.stop()
    assert order == [j.id for j in jobs] and peak[0] == 1
    assert [j.result for j in jobs] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert q.get(f"{9:032x}") is None  # the refused job was never queued


def test_queue_failures_and_forgetting() -> None:
    forgotten: list[str] = []

    def run(job: Job) -> dict[str, Any]:
        if job.id.endswith("1"):
            raise InputError("a clear message")
        if job.id.endswith("2"):
            raise RuntimeError("boom")
        return {}

    q = JobQueue(run, keep=2, on_forget=lambda j: forgotten.append(j.id))
    jobs = [_job(i) for i in range(4)]
    q.start()
    for j in jobs:
        q.submit(j)
    assert all(q.wait(j, timeout=10) for j in jobs)
    q.stop()
    assert [j.state for j in jobs] == ["done", "failed", "failed", "done"]
    assert jobs[1].error == "a clear message"
    assert jobs[2].error is not None and jobs[2].error.startswith("Internal error (RuntimeError")
    assert forgotten == [jobs[0].id, jobs[1].id]
    assert q.get(jobs[0].id) is None and q.get(jobs[3].id) is jobs[3]
    with pytest.raises(ConfigError, match="max_waiting"):
        JobQueue(run, max_waiting=0)


# ---------------------------------------------------------------------------- the command


def _cli() -> Any:
    import typer

    from hoodwink.cli.serve import register

    app = typer.Typer()
    register(app)

    @app.command("other")
    def other() -> None:  # a second command, so typer keeps "serve" as a subcommand
        """Unused."""

    return app


def test_loopback_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_command_port_in_use_and_the_open_host_warning(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hoodwink.serve import bind_socket

    taken = bind_socket("127.0.0.1", 0)
    try:
        port = str(taken.getsockname()[1])
        got = CliRunner().invoke(_cli(), ["serve", "--port", port, "--out",
                                          str(tmp_path / "o")])
        assert got.exit_code == 2
        assert "Address already in use" in got.output and "--port" in got.output
        got = CliRunner().invoke(_cli(), ["serve", "--host", "0.0.0.0", "--port", port,
                                          "--out", str(tmp_path / "o")])
        assert got.exit_code == 2
        assert "warning: serving on 0.0.0.0" in " ".join(got.output.split())
    finally:
        taken.close()
    got = CliRunner().invoke(_cli(), ["serve", "--port", "0", "--model", "mnist-cnn",
                                      "--out", str(tmp_path / "o")])
    assert got.exit_code == 2 and "photo classifiers" in got.output


def test_command_builds_the_app_and_serves_on_loopback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import hoodwink.serve

    seen: dict[str, Any] = {}

    def fake_serve(app: Any, sock: Any, **_: Any) -> None:
        seen["address"] = sock.getsockname()
        seen["info"] = app.state.hoodwink.info()
        seen["root"] = app.state.hoodwink.root

    monkeypatch.setattr(hoodwink.serve, "serve_forever", fake_serve)
    got = CliRunner().invoke(_cli(), ["serve", "--port", "0", "--out", str(tmp_path / "web"),
                                      "--max-upload-mb", "2", "--max-pixels", "1000000"])
    assert got.exit_code == 0, got.output
    assert seen["address"][0] == "127.0.0.1"
    assert f"open http://127.0.0.1:{seen['address'][1]}/" in got.output
    assert seen["info"]["max_upload_bytes"] == 2 * 2**20
    assert seen["info"]["max_pixels"] == 1_000_000
    assert seen["root"] == tmp_path / "web" and (tmp_path / "web").is_dir()
    assert json.loads(json.dumps(seen["info"]))["model"] == "efficientnet-lite0"


@pytest.mark.slow
def test_robust_mode_through_the_page(lite0: Any, tmp_path: Path) -> None:
    if "robust" not in fool_features():
        pytest.skip("this fool_image has no robust mode yet")
    app = create_app(lite0, out=tmp_path, survival_draws=10)
    with _client(app) as client:
        assert client.get("/api/info").json()["robust_available"] is True
        r = _post(client, CAT.read_bytes(), target="goldfish", eps="8", robust="true")
        st = _wait(client, r.json()["id"], timeout=600)
        assert st["state"] == "done", st["error"]
        res = st["result"]
        assert res["robust"] is True and res["success"] is True
        adv = _pixels(client.get(res["files"]["png"]).content)
        assert int(np.abs(adv - _pixels(CAT.read_bytes())).max()) <= 8 == res["eps_255"]
        record = client.get(res["files"]["json"]).json()
        assert record["robust"] is True and record["survival"] == res["survival"]
        table = {row["family"]: row for row in res["survival"]["table"]}
        assert table["jpeg-75"]["n"] == 1
