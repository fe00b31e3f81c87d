"""Task kinds: one package per kind of data (its rows, formats and annotations).

``TaskKind`` names them; ``app.kinds.registry`` says, for each, how its files are read, what
an annotation is and how pages show it; ``workers.kinds`` says how each is trained and scored.
Everything else (queue, leases, jobs, auth, exports' streaming) is the same for every kind.
"""

from enum import StrEnum


class TaskKind(StrEnum):
    text_classification = "text_classification"
    sequence_tagging = "sequence_tagging"
