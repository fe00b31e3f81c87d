"""Task kinds: one package per kind of data (its rows, formats and annotations).

``TaskKind`` names them; ``registry`` says, for each, how its files are read, what an
annotation is and how pages show it. Where each kind's parts live:

- text classification: ``text_classification/formats.py`` (CSV and JSONL import);
  export in ``app.services.export``; the annotation is one label.
- sequence tagging: ``sequence_tagging/formats.py`` (CoNLL and JSONL import, tag schemes),
  ``rows.py`` (a file as stored rows), ``annotation.py`` (spans as one string), ``export.py``.
- survival: ``survival/formats.py`` (CSV with mapped duration and event columns),
  ``annotation.py`` (``"<duration> <event>"``), ``export.py``.
- ranking: ``ranking/formats.py`` (svmlight/LETOR and CSV judgments; the annotation is one
  grade), ``context.py`` (the query's other judgments beside one), ``export.py``.
- shared: ``rows.py`` (the row every reader yields, blank and UTF-8 checks), ``errors.py``
  (``FormatError``, the one error every reader raises), ``estimators.py`` (the typed estimator
  registry, per kind).
- worker side (training, scoring, explaining each kind): ``workers/``.

Everything else (queue, leases, jobs, auth, exports' streaming) is the same for every kind.
"""

from enum import StrEnum


class TaskKind(StrEnum):
    text_classification = "text_classification"
    sequence_tagging = "sequence_tagging"
    survival = "survival"
    ranking = "ranking"
