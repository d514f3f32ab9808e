"""``hoodwink serve``: the main job (fool a photo) on a local web page.

A FastAPI application with one small static page (HTML, CSS and a script, all
served from this package: nothing comes from the network). The user uploads a
photo, picks a target class (any name or synonym the CLI accepts, or an
index), a budget of 1/255 to 16/255 and, where this version of
:func:`hoodwink.studies.fool.fool_image` offers it, the transformation-robust
mode; the server queues the request (:class:`~hoodwink.serve.jobs.JobQueue`:
one attack at a time), runs :func:`~hoodwink.studies.fool.fool_image`, and the
page shows the triptych, the top-5 before and after (the "after" read back from
the saved PNG), the survival table and links to the PNG and the JSON record.

Everything a request writes goes into its own folder, named by a random token,
inside the server's output folder; uploaded file names are only shown, never
used as paths. Uploads are limited in bytes (``max_upload_bytes``) and pixels
(``max_pixels``, the CLI's :data:`hoodwink.imaging.MAX_PIXELS` by default), and
are held in memory until they are checked, so a refused upload leaves no file
anywhere.

Endpoints: ``GET /`` (the page), ``GET /api/info`` (model, classes, budgets,
limits, features), ``POST /api/jobs`` (multipart form: ``file``, ``target``,
``eps`` in 8-bit levels 1..16, ``robust``), ``GET /api/jobs/{id}`` (state,
place in line, progress, result or error), ``GET /api/jobs/{id}/files/{kind}``
with ``kind`` one of ``png``, ``json``, ``figure``, ``original`` (add
``?download=1`` for an attachment).
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import re
import secrets
import shutil
import socket
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hoodwink.errors import ConfigError, HoodwinkError, InputError, MissingDependencyError
from hoodwink.imaging import MAX_PIXELS
from hoodwink.serve.jobs import Job, JobQueue, QueueFullError

try:
    import python_multipart  # noqa: F401 - FastAPI reads uploads with it
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import Headers
    from starlette.formparsers import MultiPartException, MultiPartParser
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "hoodwink serve needs FastAPI, uvicorn and python-multipart: "
        "pip install 'hoodwink[serve]'."
    ) from _exc

if TYPE_CHECKING:
    import torch

    from hoodwink.models.torch import TorchClassifier

__all__ = [
    "BUDGETS_255",
    "DEFAULT_MODEL",
    "MAX_UPLOAD_BYTES",
    "SURVIVAL_DRAWS",
    "bind_socket",
    "create_app",
    "fool_features",
    "is_loopback",
    "load_photo_model",
    "running",
    "serve_forever",
]

_log = logging.getLogger(__name__)

#: The model served when none is named.
DEFAULT_MODEL = "efficientnet-lite0"
#: The budgets offered, in 8-bit levels: eps = k / 255.
BUDGETS_255: tuple[int, ...] = tuple(range(1, 17))
#: Largest upload accepted, in bytes (a 40-megapixel JPEG is well under it).
MAX_UPLOAD_BYTES = 25 * 2**20
#: Held-out transformations each result's survival table is measured on (about 0.6 s
#: for a 451×300 photo on one core).
SURVIVAL_DRAWS = 20
#: Room for the multipart envelope and the small form fields.
_FORM_OVERHEAD = 64 * 2**10
#: The photo models the page offers (the MNIST models read 28×28 digits, not photos).
_PHOTO_MODELS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
_STATIC = Path(__file__).parent / "static"
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_FILE_KINDS = ("png", "json", "figure", "original")
_MEDIA = {"png": "image/png", "json": "application/json", "figure": "image/png"}
#: The page needs nothing but this server: no CDN, no fonts, no analytics.
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'")


def fool_features() -> frozenset[str]:
    """The keyword parameters of this version's :func:`~hoodwink.studies.fool.fool_image`.

    The page offers the robust mode only when ``"robust"`` is among them, and
    asks for a survival table only when ``"survival_draws"`` is.
    """
    from hoodwink.studies.fool import fool_image

    return frozenset(inspect.signature(fool_image).parameters)


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str = "127.0.0.1", port: int = 8765) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises
    ------
    ConfigError
        The port is out of range, in use, or the address is not one of this
        machine's.
    """
    from hoodwink._validation import check_int

    port = check_int("serve", "port", port, low=0, high=65535)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(
            f"Cannot serve on host {host!r}: {exc.strerror}. Give an address of this machine, "
            "e.g. 127.0.0.1."
        ) from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        hint = ("another program (or another hoodwink serve) uses it; give another --port"
                if exc.errno == 98 else "give another --host or --port")
        raise ConfigError(
            f"Cannot serve on {host}:{port}: {exc.strerror or exc}; {hint}."
        ) from exc
    return sock


def serve_forever(app: FastAPI, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Run ``app`` with uvicorn on the bound ``sock`` until interrupted (Ctrl-C)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependencyError(
            "hoodwink serve needs uvicorn: pip install 'hoodwink[serve]'."
        ) from exc
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False))
    server.run(sockets=[sock])


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0, *,
            timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` from a background thread for the ``with`` block; yield its URL.

    For tests, benchmarks and notebooks: ``with running(app) as url: ...``
    (port 0: any free port). The server stops, and its worker with it, when
    the block ends.

    Raises
    ------
    ConfigError
        The address cannot be bound.
    InternalError
        The server did not start within ``timeout`` seconds.
    """
    import threading

    import uvicorn

    from hoodwink.errors import InternalError

    sock = bind_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="hoodwink-serve", daemon=True)
    thread.start()
    try:
        end = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > end:
                raise InternalError("The web server did not start; see the log above.")
            time.sleep(0.02)
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        yield f"http://{shown}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


# ---------------------------------------------------------------------------- the work


class _Runner:
    """Runs one job on the server's model (called by the queue's one worker thread)."""

    def __init__(self, model: TorchClassifier, model_name: str, *, steps: int | None,
                 survival_draws: int | None, eot_samples: int | None) -> None:
        self.model = model
        self.model_name = model_name
        self.steps = steps
        self.survival_draws = survival_draws
        self.eot_samples = eot_samples
        self.features = fool_features()

    def options(self, robust: bool) -> dict[str, Any]:
        """The optional keyword arguments this fool_image takes, for one job."""
        kw: dict[str, Any] = {}
        if robust:
            kw["robust"] = True
            if self.eot_samples is not None and "eot_samples" in self.features:
                kw["eot_samples"] = self.eot_samples
        if self.survival_draws is not None and "survival_draws" in self.features:
            kw["survival_draws"] = self.survival_draws
        if self.steps is not None:
            kw["steps"] = self.steps
        return kw

    def __call__(self, job: Job) -> dict[str, Any]:
        from hoodwink.studies.fool import fool_image

        def progress(done: int, total: int, message: str) -> None:
            job.progress = min(1.0, done / total) if total > 0 else 0.0

        stem = Path(job.source_name).stem or "photo"
        out = job.folder / f"{stem}-adv.png"
        outcome = fool_image(self.model, job.upload, model_name=self.model_name,
                             target=job.target, eps=job.eps_255 / 255, out=out,
                             seed=0, progress=progress,
                             **self.options(job.robust))
        paths = {"png": Path(outcome.outputs["adversarial"]),
                 "json": Path(outcome.outputs["record"]),
                 "original": job.upload}
        if "figure" in outcome.outputs:
            paths["figure"] = Path(outcome.outputs["figure"])
        job.paths = paths
        return self._result(job, outcome)

    def _result(self, job: Job, outcome: Any) -> dict[str, Any]:
        """The page's view of a finished job, with both images read back from disk."""
        from hoodwink.imaging import load_image

        x0 = load_image(job.upload, mode=outcome.mode)
        xa = load_image(job.paths["png"], mode=outcome.mode)
        if x0.shape != xa.shape:
            from hoodwink.errors import InternalError

            raise InternalError(
                f"The saved PNG is {tuple(xa.shape)} but the upload is {tuple(x0.shape)}."
            )
        before, after = self._top5(x0), self._top5(xa)
        survival = getattr(outcome, "survival", None)
        if survival is not None:
            note = None
        elif "survival_draws" not in self.features:
            note = ("survival: not measured (this version of hoodwink cannot measure it "
                    "yet)")
        else:
            note = ("survival: not measured (the server runs with --survival-draws 0)"
                    if self.survival_draws == 0 else "survival: not measured")
        base = f"/api/jobs/{job.id}/files"
        return {
            "source_name": job.source_name,
            "model": self.model_name,
            "target": {"index": job.target, "name": job.target_name},
            "eps_255": job.eps_255,
            "robust": job.robust,
            "success": after[0]["index"] == job.target,
            "size": [int(x0.shape[-1]), int(x0.shape[-2])],
            "mode": outcome.mode,
            "max_change_255": int(((xa - x0).abs().max() * 255).round().item()),
            "before": before,
            "after": after,
            "survival": survival,
            "survival_note": note,
            "steps": outcome.steps,
            "timings_s": dict(outcome.timings_s),
            "files": {k: f"{base}/{k}" for k in sorted(job.paths)},
            "download_names": {k: _download_name(job, k) for k in sorted(job.paths)},
        }

    def _top5(self, x: torch.Tensor) -> list[dict[str, Any]]:
        from hoodwink.studies.fool import top_k

        shape = self.model.input_shape
        if x.shape[1] == 1 and (shape is None or shape[0] == 3):
            # A grey photo: the model sees its one channel repeated, as fool_image attacks it.
            x = x.expand(-1, 3, -1, -1)
        return [dict(p.__dict__) for p in top_k(self.model, x, k=5)]


def _download_name(job: Job, kind: str) -> str:
    stem = Path(job.source_name).stem or "photo"
    return {"png": f"{stem}-adv.png", "json": f"{stem}-adv.json",
            "figure": f"{stem}-adv-triptych.png", "original": job.source_name}[kind]


# ---------------------------------------------------------------------------- checking uploads


def _safe_name(name: str | None) -> str:
    """A file name safe to show and to use inside the job's folder: no path, no odd characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._-")[:80]
    return cleaned or "photo"


def _resolve_target(names: tuple[str, ...] | list[str] | None, num_classes: int,
                    spec: str) -> int:
    """A class index from a name, synonym or index (the CLI's rules)."""
    from hoodwink._validation import parse_index

    s = spec.strip()
    if not s:
        raise ConfigError("Choose a target class: a name such as goldfish, or an index.")
    if names is not None and len(names) == 1000:
        from hoodwink.zoo.imagenet import resolve_class

        return resolve_class(s)
    idx = parse_index(s)
    if idx is not None:
        if not 0 <= idx < num_classes:
            raise ConfigError(f"Target {s!r} is outside the model's classes 0..{num_classes - 1}.")
        return idx
    if names is not None:
        lowered = [n.lower() for n in names]
        if s.lower() in lowered:
            return lowered.index(s.lower())
    raise ConfigError(f"Unknown class {s[:60]!r}; give one of the model's classes or an index.")


def _parse_eps(text: str) -> int:
    s = text.strip()
    if s.endswith("/255"):
        s = s[:-4]
    if not s.isascii() or not s.isdigit() or int(s) not in BUDGETS_255:
        raise ConfigError(
            f"The budget must be one of 1/255 .. 16/255 (give the 8-bit level, 1 to 16). "
            f"Got {text[:40]!r}."
        )
    return int(s)


def _parse_bool(text: str | None) -> bool:
    s = (text or "").strip().lower()
    if s in ("", "0", "false", "off", "no"):
        return False
    if s in ("1", "true", "on", "yes"):
        return True
    raise ConfigError(f"The robust field must be true or false. Got {s[:20]!r}.")


class _TooLarge(InputError):
    """An upload over the byte or pixel limit (HTTP 413)."""


def _check_image(path: Path, shown: str, max_pixels: int) -> None:
    """Refuse what is not a whole, readable image within the pixel limit (one clear line)."""
    from PIL import Image

    from hoodwink.imaging import load_image

    try:  # the header first: a huge image is refused before it is decoded
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _TooLarge(
            f"{shown} has too many pixels for this server. Downscale it first."
        ) from None
    except (OSError, SyntaxError, ValueError):  # UnidentifiedImageError is an OSError
        raise InputError(
            f"{shown} is not an image this page can read. Upload a PNG, JPEG, BMP, GIF, TIFF "
            "or WebP photo."
        ) from None
    if w * h > max_pixels:
        raise _TooLarge(
            f"{shown} is {w}×{h} = {w * h:,} pixels, over this server's limit of "
            f"{max_pixels:,} pixels. Downscale it first."
        )
    try:
        load_image(path, mode=None, max_pixels=max_pixels)
    except InputError as exc:
        cause = str(exc.__cause__ or "")
        if "truncated" in cause or "broken data stream" in cause or "EOF" in cause:
            raise InputError(
                f"{shown} is truncated: the file ends before the image does (an interrupted "
                "upload or a damaged file). Upload the whole file again."
            ) from None
        raise InputError(str(exc).replace(str(path), shown)) from None


# ---------------------------------------------------------------------------- the application


class _Server:
    """What the routes share: the model, the queue, the limits and the output folder."""

    def __init__(self, model: TorchClassifier, model_name: str, root: Path, *,
                 steps: int | None, max_upload_bytes: int, max_pixels: int, max_waiting: int,
                 keep: int, survival_draws: int | None, eot_samples: int | None) -> None:
        self.model, self.model_name, self.root = model, model_name, root
        self.max_upload_bytes, self.max_pixels = max_upload_bytes, max_pixels
        self.runner = _Runner(model, model_name, steps=steps, survival_draws=survival_draws,
                              eot_samples=eot_samples)
        self.queue = JobQueue(self.runner, max_waiting=max_waiting, keep=keep,
                              on_forget=self.remove)
        names = model.class_names
        self.names: tuple[str, ...] | None = tuple(names) if names is not None else None

    def info(self) -> dict[str, Any]:
        feats = self.runner.features
        return {
            "model": self.model_name,
            "classes": list(self.names) if self.names is not None else None,
            "budgets_255": list(BUDGETS_255),
            "robust_available": "robust" in feats,
            "survival_available": "survival_draws" in feats,
            "max_upload_bytes": self.max_upload_bytes,
            "max_pixels": self.max_pixels,
            "steps": self.runner.steps,
        }

    def prepare(self, data: bytes, filename: str | None, target: str, eps: str,
                robust: str | None) -> Job:
        """Check one request and save its upload in a new job folder (blocking: a thread)."""
        shown_name = _safe_name(filename)
        t = _resolve_target(self.names, self.model.num_classes or 0, target)
        e = _parse_eps(eps)
        r = _parse_bool(robust)
        if r and "robust" not in self.runner.features:
            raise ConfigError(
                "The robust mode is not available in this version of hoodwink; untick it."
            )
        if not data:
            raise InputError("The upload is empty; choose a photo.")
        if len(data) > self.max_upload_bytes:
            raise _TooLarge(self._too_large(len(data)))
        job_id = secrets.token_hex(16)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        try:
            (folder / "in").mkdir()
            upload = folder / "in" / shown_name
            upload.write_bytes(data)
            _check_image(upload, repr(shown_name), self.max_pixels)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        names = self.names
        return Job(id=job_id, folder=folder, upload=upload, source_name=shown_name,
                   target=t, target_name=names[t] if names is not None else str(t),
                   eps_255=e, robust=r)

    def _too_large(self, n: int | None = None) -> str:
        size = f" ({n / 2**20:.1f} MiB)" if n is not None else ""
        return (f"The upload{size} is over this server's limit of "
                f"{self.max_upload_bytes / 2**20:.1f} MiB. Compress or downscale the photo "
                "first.")

    def remove(self, job: Job) -> None:
        """Delete a job's folder (only ever a folder this server made under its root)."""
        folder = job.folder.resolve()
        if folder.parent == self.root.resolve() and _JOB_ID.fullmatch(folder.name):
            shutil.rmtree(folder, ignore_errors=True)

    def status(self, job: Job) -> dict[str, Any]:
        times = job.times
        now = time.perf_counter()
        waited = times.get("started", now) - times.get("created", now)
        return {
            "id": job.id,
            "state": job.state,
            "target": {"index": job.target, "name": job.target_name},
            "eps_255": job.eps_255,
            "robust": job.robust,
            "position": self.queue.position(job),
            "progress": round(job.progress, 4),
            "error": job.error,
            "result": job.result,
            "waited_s": round(waited, 3),
            "run_s": round(times["finished"] - times["started"], 3)
            if "finished" in times and "started" in times else None,
        }


def load_photo_model(name: str) -> tuple[TorchClassifier, str]:
    """Load a zoo photo classifier by name and warm it up with one forward pass.

    Raises
    ------
    ConfigError
        Not a zoo model, or not one that reads photos.
    """
    import torch

    from hoodwink import zoo

    canonical = zoo.canonical_name(name)
    if canonical not in _PHOTO_MODELS:
        raise ConfigError(
            f"hoodwink serve fools photo classifiers; {canonical!r} is not one. Give one of "
            f"{', '.join(_PHOTO_MODELS)}."
        )
    clf = zoo.load(canonical)
    clf.probabilities(torch.zeros(1, 3, 224, 224))  # the first call's one-off costs, now
    return clf, canonical


def create_app(
    model: TorchClassifier | None = None,
    *,
    model_name: str | None = None,
    out: str | Path = Path("out") / "serve",
    steps: int | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_waiting: int = 16,
    keep: int = 100,
    survival_draws: int | None = SURVIVAL_DRAWS,
    eot_samples: int | None = None,
) -> FastAPI:
    """The web application: the page, its API and one worker.

    Parameters
    ----------
    model : TorchClassifier, optional
        A classifier that takes a photo at its own size (its preprocessing
        resizes), with class names. Default: the zoo model ``model_name``,
        loaded now, once.
    model_name : str, optional
        Shown on the page and in the records; default :data:`DEFAULT_MODEL`
        (or ``"model"`` for a ``model`` given without a name).
    out : path
        The output folder; every request writes only into its own folder
        (a random 32-hex-digit name) inside it. Created if missing.
    steps : int, optional
        Attack steps (``fool_image``'s ``steps``), >= 1; None: its defaults
        (40 for plain PGD, more in the robust mode).
    max_upload_bytes : int
        Largest upload accepted, in bytes (HTTP 413 beyond).
    max_pixels : int
        Largest image accepted, width × height (the CLI's limit by default).
    max_waiting : int
        Most requests waiting in line (HTTP 503 beyond).
    keep : int
        Finished jobs kept; the oldest job's folder is deleted beyond it.
    survival_draws : int, optional
        Held-out random transformations (real JPEG, resampling, rotation...)
        each result is checked against, for its survival table, in both modes;
        passed to ``fool_image`` when it has this parameter. None: its own
        default; 0: no table.
    eot_samples : int, optional
        Transformations averaged per step in the robust mode; None: the default.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    MissingDependencyError
        FastAPI or python-multipart is not installed.
    ConfigError
        A bad parameter, an unknown model, or an output folder that cannot be
        written.
    """
    from hoodwink._validation import check_int
    from hoodwink.reports import make_folder

    steps = check_int("create_app", "steps", steps, low=1, allow_none=True)
    max_upload_bytes = check_int("create_app", "max_upload_bytes", max_upload_bytes, low=1)
    max_pixels = check_int("create_app", "max_pixels", max_pixels, low=1)
    survival_draws = check_int("create_app", "survival_draws", survival_draws, low=0,
                               allow_none=True)
    eot_samples = check_int("create_app", "eot_samples", eot_samples, low=1, allow_none=True)
    root = make_folder(out)
    if model is None:
        model, name = load_photo_model(model_name or DEFAULT_MODEL)
    else:
        name = model_name or "model"
    if model.class_names is None:
        raise ConfigError("hoodwink serve needs a model with class names (class_names=...).")
    srv = _Server(model, name, root, steps=steps, max_upload_bytes=max_upload_bytes,
                  max_pixels=max_pixels, max_waiting=max_waiting, keep=keep,
                  survival_draws=survival_draws, eot_samples=eot_samples)
    return _build(srv)


def _build(srv: _Server) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        srv.queue.start()
        try:
            yield
        finally:
            await run_in_threadpool(srv.queue.stop)

    app = FastAPI(title="hoodwink", lifespan=lifespan, docs_url=None,
                                   redoc_url=None, openapi_url=None)
    app.state.hoodwink = srv
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(_STATIC / "index.html", media_type="text/html")

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return srv.info()

    @app.post("/api/jobs")
    async def create_job(request: Request) -> JSONResponse:
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            return error(415, "Send the photo as a multipart/form-data form with a 'file' "
                              "field (the page does this).")
        limit = srv.max_upload_bytes + _FORM_OVERHEAD
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return error(413, srv._too_large(int(length)))
        try:
            form = await _read_form(request, limit)
        except _TooLarge:
            return error(413, srv._too_large())
        except InputError as exc:
            return error(400, str(exc))
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return error(400, "The form has no photo: give it in a 'file' field.")
        try:
            data = await upload.read()
            fields = {k: form.get(k) for k in ("target", "eps", "robust")}
            if any(v is not None and not isinstance(v, str) for v in fields.values()):
                raise ConfigError("The fields target, eps and robust must be text.")
            job = await run_in_threadpool(
                srv.prepare, data, upload.filename, str(fields["target"] or ""),
                str(fields["eps"] or "2"),
                fields["robust"] if isinstance(fields["robust"], str) else None)
        except _TooLarge as exc:
            return error(413, str(exc))
        except HoodwinkError as exc:
            return error(400, str(exc))
        finally:
            await form.close()
        try:
            srv.queue.start()
            position = srv.queue.submit(job)
        except QueueFullError as exc:
            srv.remove(job)
            return error(503, str(exc))
        return JSONResponse({"id": job.id, "state": job.state, "position": position},
                            status_code=202)

    def find(job_id: str) -> Job | None:
        return srv.queue.get(job_id) if _JOB_ID.fullmatch(job_id) else None

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> JSONResponse:
        job = find(job_id)
        if job is None:
            return error(404, f"No job {job_id[:40]!r} on this server (finished jobs are kept "
                              "for a while only). Upload the photo again.")
        return JSONResponse(srv.status(job))

    @app.get("/api/jobs/{job_id}/files/{kind}", response_model=None)
    def job_file(job_id: str, kind: str, download: bool = False) -> Response:
        job = find(job_id)
        if job is None or kind not in _FILE_KINDS:
            return error(404, "No such file: the job or the kind (png, json, figure, "
                              "original) is unknown.")
        path = job.paths.get(kind)
        if path is None or job.state != "done":
            return error(404, f"The {kind} file of this job is not ready.")
        resolved = path.resolve()
        if not resolved.is_relative_to(job.folder.resolve()) or not resolved.is_file():
            return error(404, f"The {kind} file of this job is gone.")
        name = _download_name(job, kind)
        return FileResponse(resolved, media_type=_MEDIA.get(kind),
                            filename=name if download else None,
                            content_disposition_type="attachment" if download else "inline")

    return app


async def _read_form(request: Request, limit: int) -> Any:
    """The multipart form, held in memory; over ``limit`` bytes raises :class:`_TooLarge`.

    Starlette spools file parts above 1 MiB to the system's temporary folder;
    here the spool is larger than the whole body may be, so an upload never
    touches the disk outside the job's folder.
    """
    class _InMemory(MultiPartParser):
        spool_max_size = limit + 1

    async def capped() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise _TooLarge("")
            yield chunk

    parser = _InMemory(Headers(raw=request.headers.raw), capped(), max_files=1, max_fields=8)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InputError(f"The form could not be read: {exc.message}") from exc
