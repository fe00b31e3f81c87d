"""Named-entity data in and out: CoNLL and JSONL files, IOB1, IOB2 (BIO) and BIOES (BILOU) tags.

**Spans are the internal form.** A sentence is its tokens plus a set of labelled spans (token
offsets, end exclusive). Tags are only a way of writing spans down, and the three schemes write
the same spans differently, so spans are what the rest of Assay compares, counts, corrects and
scores; tags exist only at the edges, in ``tags_to_spans`` and ``spans_to_tags``. A span is
also the unit an annotator reviews, and a set of spans cannot hold an invalid sequence.

**Invalid tag sequences are read leniently, as seqeval and spaCy read them, and counted.** The
one rule for every scheme: an ``I-X`` or ``E-X`` continues the open entity when it has type X;
any other tag closes the open entity where it stands; an ``I-X`` or ``E-X`` that continues
nothing starts an entity (a lone ``E-X`` is one token long); an entity still open at the end of
the sentence ends there. Each place where a scheme's rules were broken is a ``Repair`` (file,
line, field and what was wrong) in ``Parsed.repairs``, a warning for the importer to show, not
an error: a silver corpus with a stray ``I-`` (the Japanese corpus in the shared data has two
``I-ART`` after ``O``) should import, and the reading above is the one every common tool makes.
What breaks the rules: IOB2, an ``I-X`` that does not follow ``B-X`` or ``I-X``; BIOES, that too,
a lone ``E-X``, and an entity not closed by ``E-X`` or ``S-X``; IOB1, nothing (every sequence
of ``O``, ``B-X`` and ``I-X`` has one reading; a ``B-X`` where ``I-X`` would do is harmless).

**Which scheme a file uses** (``detect_scheme``, over all of a file's tags): BIOES if any tag
is ``E-``, ``S-``, ``L-`` or ``U-``; else IOB1 if some ``I-X`` starts an entity (at a sentence's
start, after ``O`` or after another type) and every ``B-X`` directly follows a tag of type X
(the only place IOB1 writes ``B-``); else IOB2. IOB1 and IOB2 read the same spans; the
scheme decides only what counts as a repair and is worth keeping to write the file back alike.

**CoNLL** (``read_conll``): a token per line, columns separated by tabs (when the line has a
tab; a token may then hold no whitespace either) or else by runs of spaces; the token is the
first column and the tag the last, any columns between are ignored. A blank line ends a
sentence; a ``-DOCSTART-`` line ends one too and is skipped. There are no comment lines: a line
``# O`` is a ``#`` token tagged ``O`` in CoNLL-2003-style files, so no rule on the text alone
tells a CoNLL-U ``# text = ...`` comment from a token; such a line is read as a token, fails as
one, and the error says to remove the comments.

**JSONL** (``read_jsonl``): one JSON object per line (blank lines skipped), in one of two forms:

- ``{"tokens": ["U.N.", "official"], "tags": ["B-ORG", "O"]}``: tags in any scheme, read as
  above. ``spans`` may stand beside or instead of ``tags``, as ``{"start", "end", "label"}``
  with token offsets (end exclusive), the shape ``to_record`` writes; given both, they must
  agree.
- ``{"text": "U.N. official", "spans": [{"start": 0, "end": 4, "label": "ORG"}]}``: character
  offsets (end exclusive), as Prodigy writes (spaCy's ``Doc.to_json`` calls the list ``ents``;
  it is read the same). With a ``tokens`` list of objects ``{"start", "end"[, "text"]}``
  (Prodigy, spaCy), those are the tokens, whitespace-only ones dropped, and a span's
  ``token_start``/``token_end`` (Prodigy's, end inclusive) are used when present; without it the
  text is split at whitespace. A span's boundaries must fall on token boundaries; one inside a
  token is an error, never silently widened.

An optional ``id`` (string or whole number) becomes ``Sentence.external_id``; ids must be unique.
Prodigy's ``"answer": "reject"``/``"ignore"`` records are refused: their spans are not labels.
Other keys are ignored.

**Errors**: the first problem raises ``FormatError`` naming the file, line and field, and
nothing is returned (no half import). Tokens are non-empty, hold no whitespace (the CoNLL
writer could not write them back) and no NUL (PostgreSQL cannot store it); a type is non-empty,
without whitespace, and not ``O``.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from itertools import pairwise
from typing import Any

from app.core import strict_json
from app.core.text import excerpt
from app.kinds.errors import FormatError

QUOTE_CHARS = 80  # how much of a bad value an error message quotes
DOCSTART = "-DOCSTART-"
TAG_FORMS = "O, B-X, I-X, E-X, S-X"
# BILOU's L (last) and U (unit) are BIOES's E and S
PREFIXES = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}
WHITESPACE_OR_NUL = re.compile(r"[\s\x00]")  # \s is str.isspace, what split() splits at


class Scheme(StrEnum):
    """How tags write spans. ``Scheme("bio")``, ``Scheme("bilou")`` and ``Scheme("iobes")``
    give the same members as the names people use for them."""

    IOB1 = "IOB1"
    IOB2 = "IOB2"
    BIOES = "BIOES"

    @classmethod
    def _missing_(cls, value: object) -> Scheme | None:
        if not isinstance(value, str):
            return None
        name = value.upper()
        aliases = {"BIO": cls.IOB2, "IOBES": cls.BIOES, "BILOU": cls.BIOES}
        return aliases.get(name) or cls.__members__.get(name)


def _label_problem(label: object) -> str | None:
    """What makes ``label`` unusable as an entity type, if anything."""
    if not isinstance(label, str):
        return f"expected a string, got {type(label).__name__}"
    if not label:
        return "empty type"
    if label == "O":
        return "'O' means outside an entity; it cannot be a type"
    if WHITESPACE_OR_NUL.search(label):
        return f"type '{excerpt(label, QUOTE_CHARS)}' contains whitespace or a NUL character"
    return None


def _token_problem(token: object) -> str | None:
    """What makes ``token`` unusable as a token, if anything."""
    if not isinstance(token, str):
        return f"expected a string, got {type(token).__name__}"
    if not token:
        return "empty token"
    if WHITESPACE_OR_NUL.search(token):
        return f"token '{excerpt(token, QUOTE_CHARS)}' contains whitespace or a NUL character"
    return None


@dataclass(frozen=True, order=True)
class Span:
    """Tokens ``start`` to ``end`` (exclusive) of a sentence form an entity of type ``label``."""

    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"a span needs 0 <= start < end, got {self.start}-{self.end}")
        if problem := _label_problem(self.label):
            raise ValueError(problem)


def _first_overlap(spans: Sequence[Span]) -> tuple[int, int] | None:
    """Indices (in ``spans``) of two overlapping spans, the earlier-starting first, or None."""
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    # sorted by start, spans are disjoint when each starts at or after the previous one's end
    for before, after in pairwise(order):
        if spans[after].start < spans[before].end:
            return before, after
    return None


def check_spans(n_tokens: int, spans: Sequence[Span]) -> None:
    """Refuse spans past the sentence's end or overlapping (ValueError)."""
    for span in spans:
        if span.end > n_tokens:
            raise ValueError(f"span {span} ends after the sentence's {n_tokens} tokens")
    if pair := _first_overlap(spans):
        raise ValueError(f"spans {spans[pair[0]]} and {spans[pair[1]]} overlap")


@dataclass(frozen=True)
class Sentence:
    """A tokenised sentence and its entities. ``line`` (1-based) is where it starts in its
    source file (for JSONL, its line); it is where the sentence came from, not what it is, so
    equality leaves it out. Tokens and spans are stored as tuples, spans sorted."""

    tokens: tuple[str, ...]
    spans: tuple[Span, ...]
    line: int = field(compare=False)
    external_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "spans", tuple(sorted(self.spans)))
        if not self.tokens:
            raise ValueError("a sentence needs at least one token")
        for i, token in enumerate(self.tokens):
            if problem := _token_problem(token):
                raise ValueError(f"tokens[{i}]: {problem}")
        check_spans(len(self.tokens), self.spans)


@dataclass(frozen=True)
class Repair:
    """A place where the tags broke their scheme's rules and were read leniently."""

    line: int
    field: str
    message: str


@dataclass(frozen=True)
class Parsed:
    """A whole file: its sentences, the scheme its tags were read in (detected unless given;
    IOB2 when the file has no tags) and the repairs made on the way."""

    sentences: tuple[Sentence, ...]
    scheme: Scheme
    repairs: tuple[Repair, ...]


# --- tags <-> spans ---------------------------------------------------------------------------


def _parse_tag(tag: str, scheme: Scheme | None = None) -> tuple[str, str]:
    """(prefix, type) of a tag, BILOU's L and U read as E and S; ValueError when it is not a
    tag (of ``scheme``, when given)."""
    if tag == "O":
        return "O", ""
    prefix, dash, label = tag.partition("-") if isinstance(tag, str) else ("", "", "")
    if not dash or prefix not in PREFIXES or _label_problem(label):
        raise ValueError(f"tag '{excerpt(str(tag), QUOTE_CHARS)}' is not a tag ({TAG_FORMS})")
    prefix = PREFIXES[prefix]
    if prefix in ("E", "S") and scheme in (Scheme.IOB1, Scheme.IOB2):
        raise ValueError(f"tag '{tag}' is not an {scheme} tag (O, B-X, I-X)")
    return prefix, label


def _decode(tags: Sequence[str], scheme: Scheme) -> tuple[list[Span], list[tuple[int, str]]]:
    """The spans of one sentence's tags, read by the module's lenient rule, and the positions
    where the tags broke the scheme's rules, each with what was wrong."""
    spans: list[Span] = []
    broken: list[tuple[int, str]] = []
    start, label = -1, ""  # the open entity; start is -1 when none is open
    for i, (prefix, kind) in enumerate(_parse_tag(tag, scheme) for tag in tags):
        if start >= 0 and kind == label and prefix in ("I", "E"):
            if prefix == "E":
                spans.append(Span(start, i + 1, label))
                start = -1
            continue
        unclosed = start >= 0 and scheme is Scheme.BIOES
        if unclosed or (prefix in ("I", "E") and scheme is not Scheme.IOB1):
            where = f"after '{tags[i - 1]}'" if i else "at the start of a sentence"
            broken.append((i, f"'{tags[i]}' {where} is not valid {scheme}"))
        if start >= 0:
            spans.append(Span(start, i, label))
            start = -1
        if prefix in ("E", "S"):
            spans.append(Span(i, i + 1, kind))
        elif prefix in ("B", "I"):
            start, label = i, kind
    if start >= 0:
        if scheme is Scheme.BIOES:
            broken.append((len(tags) - 1, f"'{tags[-1]}' ends a sentence, not valid BIOES"))
        spans.append(Span(start, len(tags), label))
    return spans, broken


def tags_to_spans(tags: Sequence[str], scheme: Scheme) -> list[Span]:
    """The spans that one sentence's tags write, in order; invalid sequences are read by the
    lenient rule of the module docstring. ValueError for a string that is not a tag."""
    return _decode(tags, scheme)[0]


def spans_to_tags(n_tokens: int, spans: Iterable[Span], scheme: Scheme = Scheme.IOB2) -> list[str]:
    """The tags of a sentence of ``n_tokens`` tokens with these spans (ValueError if they
    overlap or pass its end). IOB1 writes ``B-`` only where an entity directly follows one of
    the same type; BIOES writes ``S-`` for a one-token entity."""
    ordered = sorted(spans)
    check_spans(n_tokens, ordered)
    tags = ["O"] * n_tokens
    previous: Span | None = None
    for span in ordered:
        inside = [f"I-{span.label}"] * (span.end - span.start)
        touching = previous is not None and previous.end == span.start
        touching = touching and previous.label == span.label
        if scheme is Scheme.BIOES:
            inside[-1] = f"E-{span.label}"
            inside[0] = f"S-{span.label}" if len(inside) == 1 else f"B-{span.label}"
        elif scheme is Scheme.IOB2 or touching:
            inside[0] = f"B-{span.label}"
        tags[span.start : span.end] = inside
        previous = span
    return tags


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> Scheme:
    """The scheme a file's tags (one sequence per sentence) are written in, by the rule in the
    module docstring; ValueError for a string that is not a tag."""
    entity_starting_i = b_without_same_type_before = False
    for tags in tag_sequences:
        before = ("O", "")
        for tag in tags:
            prefix, kind = _parse_tag(tag)
            if prefix in ("E", "S"):
                return Scheme.BIOES
            follows_same_type = before[0] in ("B", "I") and before[1] == kind
            entity_starting_i |= prefix == "I" and not follows_same_type
            b_without_same_type_before |= prefix == "B" and not follows_same_type
            before = (prefix, kind)
    if entity_starting_i and not b_without_same_type_before:
        return Scheme.IOB1
    return Scheme.IOB2


# --- readers ----------------------------------------------------------------------------------


@dataclass
class _Tagged:
    """A sentence read with tags, waiting for the file's scheme to turn them into spans."""

    tokens: list[str]
    tags: list[str]
    line: int
    locate: Callable[[int], tuple[int, str]]  # tag index -> (line, field), for repairs
    external_id: str | None = None
    given_spans: list[Span] | None = None  # JSONL ``spans`` beside ``tags``: must agree


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Lines numbered from 1, a byte-order mark at the start dropped."""
    for number, line in enumerate(lines, start=1):
        yield number, line.removeprefix("\ufeff") if number == 1 else line


def _describe(spans: Iterable[Span]) -> str:
    text = ", ".join(f"{s.label} {s.start}-{s.end}" for s in spans) or "none"
    return excerpt(text, QUOTE_CHARS)


def _resolve(filename: str, entries: list[Sentence | _Tagged], scheme: Scheme | None) -> Parsed:
    """Turn the tagged sentences into spans in the given or detected scheme."""
    if not entries:
        raise FormatError(filename, None, None, "the file has no sentences")
    scheme = scheme or detect_scheme(e.tags for e in entries if isinstance(e, _Tagged))
    sentences: list[Sentence] = []
    repairs: list[Repair] = []
    for entry in entries:
        if isinstance(entry, Sentence):
            sentences.append(entry)
            continue
        spans, broken = _decode(entry.tags, scheme)
        repairs += [Repair(*entry.locate(i), message) for i, message in broken]
        if entry.given_spans is not None and sorted(entry.given_spans) != spans:
            raise FormatError(
                filename,
                entry.line,
                "spans",
                f"the spans ({_describe(sorted(entry.given_spans))}) do not match the tags, "
                f"read as {scheme} ({_describe(spans)})",
            )
        sentences.append(Sentence(entry.tokens, spans, entry.line, entry.external_id))
    return Parsed(tuple(sentences), scheme, tuple(repairs))


def _conll_sentences(
    lines: Iterable[str], filename: str, max_tokens: int, scheme: Scheme | None
) -> Iterator[_Tagged]:
    tokens: list[str] = []
    tags: list[str] = []
    token_lines: list[int] = []
    for number, raw in _numbered(lines):
        text = raw.strip()
        columns = [c.strip() for c in text.split("\t")] if "\t" in text else text.split()
        if not columns or columns[0] == DOCSTART:
            if tokens:
                yield _Tagged(
                    tokens, tags, token_lines[0], lambda i, at=token_lines: (at[i], "tag")
                )
                tokens, tags, token_lines = [], [], []
            continue
        fail = partial(FormatError, filename, number)
        hint = " (this format has no comment lines: remove them)" if text[0] == "#" else ""
        if problem := _token_problem(columns[0]):
            raise fail("token", problem + hint)
        if len(columns) == 1:
            raise fail("tag", f"no tag: a line is a token and its tag, the last column{hint}")
        try:
            _parse_tag(columns[-1], scheme)
        except ValueError as err:
            raise fail("tag", f"{err}{hint}") from None
        if len(tokens) == max_tokens:
            raise fail(
                "token",
                f"a sentence of more than {max_tokens} tokens (it starts on line {token_lines[0]})",
            )
        tokens.append(columns[0])
        tags.append(columns[-1])
        token_lines.append(number)
    if tokens:
        yield _Tagged(tokens, tags, token_lines[0], lambda i, at=token_lines: (at[i], "tag"))


def read_conll(
    lines: Iterable[str], filename: str, *, max_tokens: int, scheme: Scheme | None = None
) -> Parsed:
    """Read a CoNLL file (a text file or any iterable of its lines); see the module docstring.
    ``scheme`` None detects it; a sentence of more than ``max_tokens`` tokens is an error."""
    return _resolve(filename, list(_conll_sentences(lines, filename, max_tokens, scheme)), scheme)


Fail = Callable[[str | None, str], FormatError]


def _json_object(text: str, fail: Fail, max_depth: int) -> dict[str, Any]:
    try:
        record = strict_json.loads(text, max_depth)
    except strict_json.JsonRefused as err:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.path)
        raise fail(path.lstrip(".") or None, err.message) from None
    except json.JSONDecodeError as err:
        raise fail(None, f"invalid JSON: {err.msg}") from None
    except ValueError as err:  # e.g. an integer longer than Python converts
        raise fail(None, f"invalid JSON: {err}") from None
    if not isinstance(record, dict):
        raise fail(None, "each line must be a JSON object")
    return record


def _list(record: dict[str, Any], key: str, fail: Fail) -> list[Any]:
    value = record[key]
    if not isinstance(value, list):
        raise fail(key, f"expected a list, got {type(value).__name__}")
    return value


def _integer(item: dict[str, Any], key: str, name: str, fail: Fail) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        found = "nothing" if value is None else json.dumps(value)
        raise fail(f"{name}.{key}", f"expected a whole number, got {excerpt(found, QUOTE_CHARS)}")
    return value


def _span_items(record: dict[str, Any], key: str, fail: Fail) -> Iterator[tuple[str, dict, str]]:
    """(field name, object, label) of each span, the label checked."""
    for j, item in enumerate(_list(record, key, fail)):
        name = f"{key}[{j}]"
        if not isinstance(item, dict):
            raise fail(name, "a span is an object with start, end and label")
        if problem := _label_problem(item.get("label")):
            raise fail(f"{name}.label", problem)
        yield name, item, item["label"]


def _disjoint(spans: list[Span], key: str, fail: Fail) -> list[Span]:
    if pair := _first_overlap(spans):
        first, second = pair
        raise fail(
            f"{key}[{second}]",
            f"overlaps {key}[{first}] (tokens {spans[first].start}-{spans[first].end} and "
            f"{spans[second].start}-{spans[second].end}); entities cannot overlap",
        )
    return spans


def _token_offset_spans(record: dict[str, Any], n_tokens: int, fail: Fail) -> list[Span]:
    spans = []
    for name, item, label in _span_items(record, "spans", fail):
        start, end = (_integer(item, key, name, fail) for key in ("start", "end"))
        if not 0 <= start < end <= n_tokens:
            raise fail(
                name, f"token offsets {start}-{end} are not within 0-{n_tokens}, start < end"
            )
        spans.append(Span(start, end, label))
    return _disjoint(spans, "spans", fail)


def _token_record(
    record: dict[str, Any], line: int, external_id: str | None, fail: Fail, scheme: Scheme | None
) -> Sentence | _Tagged:
    """A record with ``tokens`` (strings) and ``tags`` and/or token-offset ``spans``."""
    tokens = _list(record, "tokens", fail)
    if not tokens:
        raise fail("tokens", "no tokens")
    for i, token in enumerate(tokens):
        if problem := _token_problem(token):
            hint = " (token objects need the record's 'text')" if isinstance(token, dict) else ""
            raise fail(f"tokens[{i}]", problem + hint)
    given = _token_offset_spans(record, len(tokens), fail) if "spans" in record else None
    if "tags" not in record:
        if given is None:
            raise fail("tags", "missing: a record with 'tokens' needs 'tags' or 'spans'")
        return Sentence(tokens, given, line, external_id)
    tags = _list(record, "tags", fail)
    if len(tags) != len(tokens):
        raise fail("tags", f"{len(tags)} tags for {len(tokens)} tokens")
    for i, tag in enumerate(tags):
        try:
            _parse_tag(tag, scheme)
        except ValueError as err:
            raise fail(f"tags[{i}]", str(err)) from None
    return _Tagged(tokens, tags, line, lambda i: (line, f"tags[{i}]"), external_id, given)


def _object_tokens(record: dict[str, Any], text: str, fail: Fail) -> list[tuple[int, int] | None]:
    """Character ranges of Prodigy/spaCy token objects, None for a whitespace-only token."""
    ranges: list[tuple[int, int] | None] = []
    end_before = 0
    for i, item in enumerate(_list(record, "tokens", fail)):
        name = f"tokens[{i}]"
        if not isinstance(item, dict):
            raise fail(name, "with 'text', tokens are objects with start and end (Prodigy's form)")
        start, end = (_integer(item, key, name, fail) for key in ("start", "end"))
        if not end_before <= start < end <= len(text):
            raise fail(
                name,
                f"characters {start}-{end} are not after the previous token and within the text",
            )
        end_before = end
        if item.get("text", text[start:end]) != text[start:end]:
            raise fail(f"{name}.text", f"is not the text's characters {start}-{end}")
        if text[start:end].isspace():
            ranges.append(None)
        elif problem := _token_problem(text[start:end]):
            raise fail(name, problem)
        else:
            ranges.append((start, end))
    return ranges


def _boundary(offset: int, ranges: list[tuple[int, int]], what: str) -> str:
    """Why character ``offset`` is not where a token ``what`` (starts, ends)."""
    k = bisect.bisect_right([r[0] for r in ranges], offset) - 1
    inside = ""
    if k >= 0 and ranges[k][0] < offset < ranges[k][1]:
        inside = f" (it is inside the token at characters {ranges[k][0]}-{ranges[k][1]})"
    return f"character {offset} is not where a token {what}{inside}"


def _text_record(
    record: dict[str, Any], line: int, external_id: str | None, fail: Fail
) -> Sentence:
    """A record with ``text`` and character-offset ``spans`` (or spaCy's ``ents``)."""
    text = record["text"]
    if not isinstance(text, str):
        raise fail("text", f"expected a string, got {type(text).__name__}")
    key = next((k for k in ("spans", "ents") if k in record), None)
    if key is None:
        raise fail("spans", "missing: a record with 'text' needs 'spans' ([] for no entities)")
    if "tokens" in record:
        all_ranges = _object_tokens(record, text, fail)
        # token positions in the record -> positions in the sentence (whitespace tokens dropped)
        kept = {i: n for n, i in enumerate(i for i, r in enumerate(all_ranges) if r is not None)}
        ranges = [r for r in all_ranges if r is not None]
    else:
        all_ranges, kept = [], {}
        ranges = [m.span() for m in re.finditer(r"\S+", text)]
    if not ranges:
        raise fail("text", "no tokens: the text is empty or whitespace")
    if "\x00" in text:
        raise fail("text", "contains a NUL character")
    starts = {r[0]: n for n, r in enumerate(ranges)}
    ends = {r[1]: n for n, r in enumerate(ranges)}
    spans = []
    for name, item, label in _span_items(record, key, fail):
        if all_ranges and "token_start" in item and "token_end" in item:
            first, last = (_integer(item, k, name, fail) for k in ("token_start", "token_end"))
            if not 0 <= first <= last < len(all_ranges):
                raise fail(name, f"token_start-token_end {first}-{last} are not tokens")
            for k, index in (("token_start", first), ("token_end", last)):
                if index not in kept:
                    raise fail(f"{name}.{k}", f"token {index} is whitespace")
            spans.append(Span(kept[first], kept[last] + 1, label))
            continue
        start, end = (_integer(item, k, name, fail) for k in ("start", "end"))
        if start not in starts:
            raise fail(f"{name}.start", _boundary(start, ranges, "starts"))
        if end not in ends:
            raise fail(f"{name}.end", _boundary(end, ranges, "ends"))
        if ends[end] < starts[start]:
            raise fail(f"{name}.end", f"character {end} is before the start, {start}")
        spans.append(Span(starts[start], ends[end] + 1, label))
    tokens = [text[start:end] for start, end in ranges]
    return Sentence(tokens, _disjoint(spans, key, fail), line, external_id)


def _external_id(record: dict[str, Any], fail: Fail) -> str | None:
    value = record.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        found = excerpt(json.dumps(value), QUOTE_CHARS)
        raise fail("id", f"expected a string or a whole number, got {found}")
    if "\x00" in str(value):
        raise fail("id", "contains a NUL character")
    return str(value).strip() or None


def read_jsonl(
    lines: Iterable[str],
    filename: str,
    *,
    max_tokens: int,
    max_depth: int,
    scheme: Scheme | None = None,
) -> Parsed:
    """Read a JSONL file (a text file or any iterable of its lines); see the module docstring.
    ``scheme`` None detects it from the records with tags; a sentence of more than
    ``max_tokens`` tokens and JSON nested deeper than ``max_depth`` are errors."""
    entries: list[Sentence | _Tagged] = []
    first_line: dict[str, int] = {}
    for number, raw in _numbered(lines):
        if not raw.strip():
            continue
        fail: Fail = partial(FormatError, filename, number)
        record = _json_object(raw, fail, max_depth)
        answer = record.get("answer", "accept")
        if answer != "accept":
            found = excerpt(str(answer), QUOTE_CHARS)
            raise fail("answer", f"'{found}': only accepted examples are annotations")
        external_id = _external_id(record, fail)
        if external_id is not None:
            first = first_line.setdefault(external_id, number)
            if first != number:
                quoted = excerpt(external_id, QUOTE_CHARS)
                raise fail("id", f"duplicate id '{quoted}' (first on line {first})")
        if "text" in record:
            entry = _text_record(record, number, external_id, fail)
        elif "tokens" in record:
            entry = _token_record(record, number, external_id, fail, scheme)
        else:
            raise fail("tokens", "a record needs 'tokens' and 'tags', or 'text' and 'spans'")
        if len(entry.tokens) > max_tokens:
            where = "tokens" if "tokens" in record else "text"
            raise fail(where, f"{len(entry.tokens)} tokens in one sentence; at most {max_tokens}")
        entries.append(entry)
    return _resolve(filename, entries, scheme)


# --- writers ----------------------------------------------------------------------------------


def conll_block(sentence: Sentence, scheme: Scheme = Scheme.IOB2) -> str:
    """One sentence as CoNLL: ``token TAG`` lines, then a blank line."""
    if DOCSTART in sentence.tokens:
        raise ValueError(f"a token '{DOCSTART}' would be read back as a document line")
    tags = spans_to_tags(len(sentence.tokens), sentence.spans, scheme)
    lines = (f"{token} {tag}\n" for token, tag in zip(sentence.tokens, tags, strict=True))
    return "".join(lines) + "\n"


def write_conll(sentences: Iterable[Sentence], scheme: Scheme = Scheme.IOB2) -> str:
    """Sentences as a CoNLL file (``read_conll`` reads it back to the same sentences)."""
    return "".join(conll_block(sentence, scheme) for sentence in sentences)


def to_record(sentence: Sentence, scheme: Scheme = Scheme.IOB2) -> dict[str, Any]:
    """One sentence as a JSONL object: ``id`` (when it has one), ``tokens``, ``tags`` in
    ``scheme`` and ``spans`` as ``{"start", "end", "label"}`` in token offsets (end exclusive),
    both forms so a reader may use either. An exporter may add keys (provenance) before
    writing; ``read_jsonl`` ignores them."""
    record: dict[str, Any] = {} if sentence.external_id is None else {"id": sentence.external_id}
    record["tokens"] = list(sentence.tokens)
    record["tags"] = spans_to_tags(len(sentence.tokens), sentence.spans, scheme)
    record["spans"] = [{"start": s.start, "end": s.end, "label": s.label} for s in sentence.spans]
    return record


def write_jsonl(sentences: Iterable[Sentence], scheme: Scheme = Scheme.IOB2) -> str:
    """Sentences as JSONL, one ``to_record`` object a line (UTF-8 text, not escaped)."""
    return "".join(json.dumps(to_record(s, scheme), ensure_ascii=False) + "\n" for s in sentences)
