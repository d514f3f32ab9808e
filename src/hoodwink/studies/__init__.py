"""Studies: the seed reproductions and experiments, built on the library.

Imports point one way: ``cli`` → ``studies`` → the library (``attacks``,
``models``, ``data``, ``zoo``); nothing in the library imports from here.

The contract
------------
Each study is a pair of functions:

``run(..., progress=None) -> record``
    Runs the experiment and returns its record: a ``dict`` of plain data
    (dict, list, str, int, float, bool, None; no tuples, tensors, arrays or
    NaN), so that ``json.loads(json.dumps(record)) == record``. ``progress``
    is a :data:`hoodwink.progress.ProgressCallback`, off by default.
``report(record) -> Rendered``
    Draws the page and the figures from the record alone (no model, no
    tensors): a :class:`~hoodwink.studies._record.Rendered` holding the
    :class:`~hoodwink.reports.Report` (its Markdown/HTML blocks and the
    record) and the figures as PNG bytes by file name.
    ``report(record).write(folder, stem)`` writes the figures and
    ``<stem>.json/.md/.html``; a report drawn from the JSON file read back is
    the same page.

Pixels that a figure shows travel *inside* the record, so it is
self-contained: the dream study keeps each saved PNG as base64 text under
``images[i]["png"]`` (:func:`hoodwink.studies._record.to_b64`), the very
bytes its confidences were measured on.

Studies with the contract: :mod:`hoodwink.studies.fool` (its record holds the
original and the adversarial PNG under ``images``; :func:`~hoodwink.studies.fool.fool_image`
still writes the CLI's files), :mod:`hoodwink.studies.dream`,
:mod:`hoodwink.studies.transfer`, :mod:`hoodwink.studies.background`, and
each linear-classifier experiment
``hoodwink.studies.linear.experiments.<name>`` for ``train``, ``templates``,
``fool``, ``regularization``, ``dimension`` and ``toy``.

* :mod:`hoodwink.studies.fool`: fool a photo classifier, judged on the saved PNG;
* :mod:`hoodwink.studies.dream`: fooling images grown from noise;
* :mod:`hoodwink.studies.transfer`: how adversarial examples transfer between models;
* :mod:`hoodwink.studies.background`: the "background class" defence, round by round;
* :mod:`hoodwink.studies.linear`: the essay's linear-classifier experiments.
"""
