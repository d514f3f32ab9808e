"""A local web page for the main job: upload a photo, fool the classifier, download the PNG.

Start it with ``hoodwink serve`` (bound to 127.0.0.1 unless ``--host`` says
otherwise), or build the application yourself::

    from hoodwink.serve import create_app
    app = create_app(out="out/serve")       # loads EfficientNet-Lite0 once
    # uvicorn.run(app, host="127.0.0.1", port=8765)

Needs the ``serve`` extra: ``pip install 'hoodwink[serve]'``.
"""

from hoodwink.serve.app import (
    BUDGETS_255,
    DEFAULT_MODEL,
    MAX_UPLOAD_BYTES,
    SURVIVAL_DRAWS,
    bind_socket,
    create_app,
    fool_features,
    is_loopback,
    load_photo_model,
    running,
    serve_forever,
)
from hoodwink.serve.jobs import Job, JobQueue, QueueFullError

__all__ = [
    "BUDGETS_255",
    "DEFAULT_MODEL",
    "MAX_UPLOAD_BYTES",
    "Job",
    "JobQueue",
    "QueueFullError",
    "SURVIVAL_DRAWS",
    "bind_socket",
    "create_app",
    "fool_features",
    "is_loopback",
    "load_photo_model",
    "running",
    "serve_forever",
]
