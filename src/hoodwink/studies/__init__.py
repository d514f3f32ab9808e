"""Studies: the seed reproductions and experiments, built on the library.

Each study is a function that runs an experiment and returns a record, and a
report that renders that record. Imports point one way: ``cli`` → ``studies``
→ the library (``attacks``, ``models``, ``data``, ``zoo``); nothing in the
library imports from here.

* :mod:`hoodwink.studies.fool`: fool a photo classifier, judged on the saved PNG;
* :mod:`hoodwink.studies.dream`: fooling images grown from noise;
* :mod:`hoodwink.studies.transfer`: how adversarial examples transfer between models;
* :mod:`hoodwink.studies.background`: the "background class" defence, round by round;
* :mod:`hoodwink.studies.linear`: the essay's linear-classifier experiments.
"""
