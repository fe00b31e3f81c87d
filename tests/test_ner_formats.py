"""Named-entity import and export (app.kinds.sequence_tagging.formats): tag schemes both ways,
scheme detection, lenient reading with its repairs, every error with its file, line and field,
round trips, and the real corpora excerpts in tests/data. Pure: no database, no server."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from app.kinds.sequence_tagging.formats import (
    FormatError,
    Parsed,
    Scheme,
    Sentence,
    Span,
    conll_block,
    detect_scheme,
    read_conll,
    read_jsonl,
    spans_to_tags,
    tags_to_spans,
    to_record,
    write_conll,
    write_jsonl,
)

DATA = Path(__file__).parent / "data"
MAX_TOKENS = 512
MAX_DEPTH = 32
IOB1, IOB2, BIOES = Scheme.IOB1, Scheme.IOB2, Scheme.BIOES


def conll(text: str, max_tokens: int = MAX_TOKENS, scheme: Scheme | None = None) -> Parsed:
    return read_conll(io.StringIO(text), "train.conll", max_tokens=max_tokens, scheme=scheme)


def jsonl(*records: object, max_tokens: int = MAX_TOKENS, max_depth: int = MAX_DEPTH) -> Parsed:
    """Each record is a JSON value to dump, or a str taken as the line itself."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    text = "".join(line + "\n" for line in lines)
    return read_jsonl(io.StringIO(text), "train.jsonl", max_tokens=max_tokens, max_depth=max_depth)


def tagged(tags: list[str], scheme: Scheme | None = None) -> Parsed:
    """One sentence with tokens t0, t1, ... and these tags, read from CoNLL text."""
    return conll("".join(f"t{i} {tag}\n" for i, tag in enumerate(tags)), scheme=scheme)


def refused(error: pytest.ExceptionInfo[FormatError], line: int | None, field: str | None) -> str:
    """The error's message, after checking where it points."""
    assert (error.value.line, error.value.field) == (line, field), str(error.value)
    return error.value.message


# --- schemes, both ways -------------------------------------------------------------------------

# (n tokens, spans, IOB1 tags, IOB2 tags, BIOES tags)
CASES = [
    pytest.param(
        5,
        [Span(0, 1, "PER"), Span(3, 5, "LOC")],
        "I-PER O O I-LOC I-LOC",
        "B-PER O O B-LOC I-LOC",
        "S-PER O O B-LOC E-LOC",
        id="entities-at-start-and-end",
    ),
    pytest.param(
        4,
        [Span(0, 2, "PER"), Span(2, 3, "PER")],
        "I-PER I-PER B-PER O",
        "B-PER I-PER B-PER O",
        "B-PER E-PER S-PER O",
        id="adjacent-same-type",
    ),
    pytest.param(
        3,
        [Span(0, 1, "PER"), Span(1, 2, "PER"), Span(2, 3, "PER")],
        "I-PER B-PER B-PER",
        "B-PER B-PER B-PER",
        "S-PER S-PER S-PER",
        id="three-single-token-same-type",
    ),
    pytest.param(
        3,
        [Span(0, 1, "ORG"), Span(1, 3, "PER")],
        "I-ORG I-PER I-PER",
        "B-ORG B-PER I-PER",
        "S-ORG B-PER E-PER",
        id="adjacent-other-type",
    ),
    pytest.param(
        4,
        [Span(0, 4, "MISC")],
        "I-MISC I-MISC I-MISC I-MISC",
        "B-MISC I-MISC I-MISC I-MISC",
        "B-MISC I-MISC I-MISC E-MISC",
        id="whole-sentence",
    ),
    pytest.param(1, [Span(0, 1, "X")], "I-X", "B-X", "S-X", id="one-token-sentence"),
    pytest.param(2, [], "O O", "O O", "O O", id="no-entities"),
    pytest.param(
        6,
        [Span(1, 2, "LOC"), Span(3, 4, "LOC")],
        "O I-LOC O I-LOC O O",
        "O B-LOC O B-LOC O O",
        "O S-LOC O S-LOC O O",
        id="same-type-apart",
    ),
]


@pytest.mark.parametrize(("n", "spans", "iob1", "iob2", "bioes"), CASES)
def test_spans_and_tags_both_ways(n, spans, iob1, iob2, bioes):
    for scheme, written in ((IOB1, iob1), (IOB2, iob2), (BIOES, bioes)):
        tags = written.split()
        assert spans_to_tags(n, spans, scheme) == tags, scheme
        assert tags_to_spans(tags, scheme) == spans, scheme
        assert tagged(tags, scheme).repairs == (), scheme  # what the writer writes is valid


def test_the_default_scheme_is_iob2_and_span_order_does_not_matter():
    spans = [Span(3, 5, "LOC"), Span(0, 1, "PER")]
    assert spans_to_tags(5, spans) == ["B-PER", "O", "O", "B-LOC", "I-LOC"]


def test_bilou_is_bioes():
    spans = [Span(0, 1, "PER"), Span(2, 4, "LOC"), Span(4, 7, "ORG")]
    tags = ["U-PER", "O", "B-LOC", "L-LOC", "B-ORG", "I-ORG", "L-ORG"]
    assert tags_to_spans(tags, BIOES) == spans
    assert detect_scheme([tags]) is BIOES
    parsed = tagged(tags)
    assert (parsed.scheme, parsed.repairs) == (BIOES, ())
    assert parsed.sentences[0].spans == tuple(spans)


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("IOB1", IOB1),
        ("iob2", IOB2),
        ("BIO", IOB2),
        ("bioes", BIOES),
        ("IOBES", BIOES),
        ("BILOU", BIOES),
        ("bilou", BIOES),
    ],
)
def test_scheme_names(name, scheme):
    assert Scheme(name) is scheme


def test_an_unknown_scheme_name_is_refused():
    with pytest.raises(ValueError):
        Scheme("IOB3")


def test_spans_that_overlap_or_pass_the_end_cannot_be_written():
    with pytest.raises(ValueError, match="overlap"):
        spans_to_tags(4, [Span(0, 2, "A"), Span(1, 3, "B")])
    with pytest.raises(ValueError, match="ends after"):
        spans_to_tags(2, [Span(1, 3, "A")])


@pytest.mark.parametrize(
    ("start", "end", "label"), [(2, 2, "X"), (3, 1, "X"), (-1, 1, "X"), (0, 1, "O"), (0, 1, "")]
)
def test_a_span_needs_a_range_and_a_type(start, end, label):
    with pytest.raises(ValueError):
        Span(start, end, label)


def test_a_sentence_is_immutable_and_checked():
    sentence = Sentence(["a", "b", "c"], [Span(2, 3, "Y"), Span(0, 1, "X")], line=7)
    assert sentence.tokens == ("a", "b", "c")
    assert sentence.spans == (Span(0, 1, "X"), Span(2, 3, "Y"))
    assert sentence == Sentence(("a", "b", "c"), (Span(0, 1, "X"), Span(2, 3, "Y")), line=1)
    assert sentence != Sentence(("a", "b", "c"), (Span(0, 1, "X"),), line=7)
    assert sentence != Sentence(("a", "b", "c"), sentence.spans, line=7, external_id="1")
    for tokens, spans in [
        ([], []),
        (["a b"], []),
        (["a\x00"], []),
        (["a", "b"], [Span(0, 2, "X"), Span(1, 2, "Y")]),
        (["a"], [Span(0, 2, "X")]),
    ]:
        with pytest.raises(ValueError):
            Sentence(tokens, spans, line=1)


# --- scheme detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequences", "scheme"),
    [
        ([["B-PER", "I-PER", "O"]], IOB2),
        ([["I-PER", "I-PER", "O", "I-LOC"]], IOB1),
        ([["I-PER", "B-PER", "O"]], IOB1),  # B- only between entities of one type
        ([["I-PER"], ["I-LOC"]], IOB1),  # a sentence's start is an entity start
        ([["O", "I-PER", "B-PER"], ["O", "B-LOC"]], IOB2),  # a B- after O is not IOB1's
        ([["B-PER", "I-LOC"]], IOB2),  # I-LOC starts an entity, but so does the B-PER
        ([["O", "I-ART"], ["B-ART", "I-ART"]], IOB2),  # IOB2 with a stray I-
        ([["B-PER", "E-PER"]], BIOES),
        ([["O"], ["S-PER"]], BIOES),
        ([["U-PER"]], BIOES),
        ([["B-PER", "L-PER"]], BIOES),
        ([["O", "O"]], IOB2),
        ([], IOB2),
    ],
)
def test_detect_scheme(sequences, scheme):
    assert detect_scheme(sequences) is scheme


def test_detect_scheme_refuses_what_is_not_a_tag():
    with pytest.raises(ValueError, match="'B_PER' is not a tag"):
        detect_scheme([["O", "B_PER"]])


def test_a_file_is_read_in_its_detected_scheme():
    parsed = conll("EU I-ORG\nrejects O\nGerman I-MISC\ncall O\n")
    assert parsed.scheme is IOB1
    assert parsed.sentences[0].spans == (Span(0, 1, "ORG"), Span(2, 3, "MISC"))


# --- lenient reading and the repairs it counts --------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "scheme", "spans", "broken"),
    [
        ("O I-PER I-PER", IOB2, [Span(1, 3, "PER")], {2: "'I-PER' after 'O' is not valid IOB2"}),
        ("I-PER O", IOB2, [Span(0, 1, "PER")], {1: "'I-PER' at the start of a sentence"}),
        ("B-PER I-LOC", IOB2, [Span(0, 1, "PER"), Span(1, 2, "LOC")], {2: "'I-LOC' after"}),
        ("O I-PER I-PER", IOB1, [Span(1, 3, "PER")], {}),
        ("B-PER I-LOC", IOB1, [Span(0, 1, "PER"), Span(1, 2, "LOC")], {}),
        ("B-PER I-PER O", BIOES, [Span(0, 2, "PER")], {3: "'O' after 'I-PER'"}),
        ("O B-PER", BIOES, [Span(1, 2, "PER")], {2: "'B-PER' ends a sentence"}),
        ("E-PER O", BIOES, [Span(0, 1, "PER")], {1: "'E-PER' at the start"}),
        ("I-PER E-PER", BIOES, [Span(0, 2, "PER")], {1: "'I-PER' at the start"}),
        ("B-PER S-LOC", BIOES, [Span(0, 1, "PER"), Span(1, 2, "LOC")], {2: "'S-LOC' after"}),
        ("B-PER E-LOC", BIOES, [Span(0, 1, "PER"), Span(1, 2, "LOC")], {2: "'E-LOC' after"}),
        ("B-PER B-PER E-PER", BIOES, [Span(0, 1, "PER"), Span(1, 3, "PER")], {2: "'B-PER'"}),
    ],
)
def test_invalid_sequences_are_read_leniently_and_counted(tags, scheme, spans, broken):
    """A tag that does not continue the open entity ends it; an I-/E- that continues none starts
    one; each place the scheme's rules were broken is a repair on its line (token i on line
    i + 1)."""
    tags = tags.split()
    assert tags_to_spans(tags, scheme) == spans
    parsed = tagged(tags, scheme)
    assert parsed.sentences[0].spans == tuple(spans)
    assert {r.line: r.message for r in parsed.repairs}.keys() == broken.keys()
    for repair in parsed.repairs:
        assert repair.field == "tag"
        assert repair.message.startswith(broken[repair.line])


def test_a_repair_in_jsonl_names_the_tag():
    parsed = jsonl({"tokens": ["a"], "tags": ["B-P"]}, {"tokens": ["x", "y"], "tags": ["O", "I-P"]})
    assert [(r.line, r.field) for r in parsed.repairs] == [(2, "tags[1]")]
    assert parsed.sentences[1].spans == (Span(1, 2, "P"),)


# --- CoNLL --------------------------------------------------------------------------------------


def test_conll_columns_tabs_spaces_and_docstart():
    text = (
        "\ufeff-DOCSTART- -X- -X- O\n"
        "\n"
        "U.N.\tNNP\tI-NP\tB-ORG\n"  # tabs: token first, tag last, the rest ignored
        "official   NN I-NP   O\n"  # runs of spaces
        "Ekeus B-PER  \r\n"  # trailing spaces and a CR
        "-DOCSTART- -X- -X- O\n"  # ends the sentence without a blank line
        "Baghdad B-LOC\n"
        "\n"
        "\n"
        "  \t \n"
        "# O\n"  # a hash token, not a comment
        "hello O"  # no newline at the end
    )
    parsed = conll(text)
    assert [(s.tokens, s.spans, s.line) for s in parsed.sentences] == [
        (("U.N.", "official", "Ekeus"), (Span(0, 1, "ORG"), Span(2, 3, "PER")), 3),
        (("Baghdad",), (Span(0, 1, "LOC"),), 7),
        (("#", "hello"), (), 11),
    ]
    assert all(s.external_id is None for s in parsed.sentences)


def test_conll_bad_tag():
    with pytest.raises(FormatError) as error:
        conll("-DOCSTART- O\n\nJohn B-PER\nSmith I-PER\n\nsaid O\nto O\nBob B_PER\n")
    assert str(error.value) == (
        "train.conll, line 8, field 'tag': tag 'B_PER' is not a tag (O, B-X, I-X, E-X, S-X)"
    )
    assert error.value.as_dict() == {
        "file": "train.conll",
        "line": 8,
        "field": "tag",
        "message": "tag 'B_PER' is not a tag (O, B-X, I-X, E-X, S-X)",
    }
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("text", "line", "field", "says"),
    [
        ("a O\nb\n", 2, "tag", "no tag"),
        ("a O\n\nb B-\n", 3, "tag", "'B-' is not a tag"),
        ("a O\nb B-O\n", 2, "tag", "'B-O' is not a tag"),
        ("a O\nb X-PER\n", 2, "tag", "'X-PER' is not a tag"),
        ("a O\nb b-per\n", 2, "tag", "'b-per' is not a tag"),
        ("a O\nNew York\tB-LOC\n", 2, "token", "contains whitespace"),
        ("a O\nb\x00 O\n", 2, "token", "NUL"),
        ("# text = a cat\na O\n", 1, "tag", "no comment lines: remove them"),
        ("#\na O\n", 1, "tag", "no tag: a line is a token and its tag, the last column (this"),
    ],
)
def test_conll_errors_name_line_and_field(text, line, field, says):
    with pytest.raises(FormatError) as error:
        conll(text)
    assert says in refused(error, line, field)


def test_conll_a_scheme_given_refuses_tags_outside_it():
    with pytest.raises(FormatError) as error:
        conll("a B-PER\nb E-PER\n", scheme=IOB2)
    assert refused(error, 2, "tag") == "tag 'E-PER' is not an IOB2 tag (O, B-X, I-X)"


@pytest.mark.parametrize("text", ["", "\n\n  \n", "-DOCSTART- -X- -X- O\n\n"])
def test_conll_without_sentences(text):
    with pytest.raises(FormatError) as error:
        conll(text)
    assert str(error.value) == "train.conll: the file has no sentences"
    assert refused(error, None, None) == "the file has no sentences"


def test_conll_sentence_longer_than_the_limit():
    assert len(conll("x O\n\na O\nb O\nc O\n", max_tokens=3).sentences) == 2
    with pytest.raises(FormatError) as error:
        conll("x O\n\na O\nb O\nc O\nd O\n", max_tokens=3)
    assert refused(error, 6, "token") == "a sentence of more than 3 tokens (it starts on line 3)"


def test_conll_output():
    sentences = [
        Sentence(["U.N.", "official", "Ekeus"], [Span(0, 1, "ORG"), Span(2, 3, "PER")], 1),
        Sentence(["Baghdad"], [Span(0, 1, "LOC")], 5),
    ]
    assert write_conll(sentences) == "U.N. B-ORG\nofficial O\nEkeus B-PER\n\nBaghdad B-LOC\n\n"
    assert (
        write_conll(sentences, IOB1) == "U.N. I-ORG\nofficial O\nEkeus I-PER\n\nBaghdad I-LOC\n\n"
    )
    assert conll_block(sentences[1], BIOES) == "Baghdad S-LOC\n\n"
    assert write_conll([]) == ""


def test_conll_cannot_write_a_docstart_token():
    with pytest.raises(ValueError, match="document line"):
        write_conll([Sentence(["-DOCSTART-"], [], 1)])


# --- JSONL --------------------------------------------------------------------------------------


def test_jsonl_tokens_and_tags():
    parsed = jsonl(
        {
            "id": "s1",
            "tokens": ["EU", "rejects", "German", "call"],
            "tags": ["I-ORG", "O", "I-MISC", "O"],
        },
        "",
        {"id": 7, "tokens": ["Peter", "Blackburn"], "tags": ["I-PER", "I-PER"], "meta": {"a": 1}},
    )
    assert parsed.scheme is IOB1
    assert [(s.tokens, s.spans, s.line, s.external_id) for s in parsed.sentences] == [
        (("EU", "rejects", "German", "call"), (Span(0, 1, "ORG"), Span(2, 3, "MISC")), 1, "s1"),
        (("Peter", "Blackburn"), (Span(0, 2, "PER"),), 3, "7"),
    ]


def test_jsonl_tokens_with_spans_beside_or_instead_of_tags():
    spans = [{"start": 2, "end": 4, "label": "LOC"}, {"start": 0, "end": 1, "label": "PER"}]
    tokens = ["Ann", "visits", "New", "York"]
    tags = ["B-PER", "O", "B-LOC", "I-LOC"]
    both = jsonl({"tokens": tokens, "tags": tags, "spans": spans})
    alone = jsonl({"tokens": tokens, "spans": spans})
    assert both.sentences == alone.sentences
    assert both.sentences[0].spans == (Span(0, 1, "PER"), Span(2, 4, "LOC"))


def test_jsonl_text_and_character_spans_split_at_whitespace():
    text = "U.N. official  Ekeus heads\tfor Baghdad ."
    spans = [
        {"start": 31, "end": 38, "label": "LOC"},
        {"start": 0, "end": 4, "label": "ORG"},
        {"start": 15, "end": 20, "label": "PER"},
    ]
    parsed = jsonl({"text": text, "spans": spans, "id": "a"})
    sentence = parsed.sentences[0]
    assert sentence.tokens == ("U.N.", "official", "Ekeus", "heads", "for", "Baghdad", ".")
    assert sentence.spans == (Span(0, 1, "ORG"), Span(2, 3, "PER"), Span(5, 6, "LOC"))
    assert (sentence.external_id, parsed.scheme, parsed.repairs) == ("a", IOB2, ())


def test_jsonl_prodigy_tokens():
    """Prodigy's own shape: token objects (a whitespace token among them), spans with both
    character offsets and inclusive token_start/token_end."""
    text = "Apple 's CEO\n\nTim Cook spoke"
    words = [(0, 5), (6, 8), (9, 12), (12, 14), (14, 17), (18, 22), (23, 28)]
    tokens = [{"text": text[s:e], "start": s, "end": e, "id": i} for i, (s, e) in enumerate(words)]
    spans = [
        {"start": 0, "end": 5, "token_start": 0, "token_end": 0, "label": "ORG"},
        {"start": 14, "end": 22, "token_start": 4, "token_end": 5, "label": "PERSON"},
    ]
    record = {"text": text, "tokens": tokens, "spans": spans, "answer": "accept"}
    sentence = jsonl(record).sentences[0]
    assert sentence.tokens == ("Apple", "'s", "CEO", "Tim", "Cook", "spoke")
    assert sentence.spans == (Span(0, 1, "ORG"), Span(3, 5, "PERSON"))
    # without token_start/token_end, the character offsets are mapped onto the same tokens
    for span in spans:
        del span["token_start"], span["token_end"]
    assert jsonl(record).sentences == (sentence,)


def test_jsonl_spacy_doc_json():
    """spaCy's Doc.to_json: tokens without text, entities under 'ents'; a text with no spaces
    (Japanese) is tokenised by its tokens."""
    text = "日本の知床半島"
    record = {
        "text": text,
        "ents": [{"start": 0, "end": 2, "label": "LOC"}, {"start": 3, "end": 7, "label": "LOC"}],
        "tokens": [
            {"id": 0, "start": 0, "end": 2, "pos": "PROPN"},
            {"id": 1, "start": 2, "end": 3, "pos": "ADP"},
            {"id": 2, "start": 3, "end": 5, "pos": "PROPN"},
            {"id": 3, "start": 5, "end": 7, "pos": "NOUN"},
        ],
    }
    sentence = jsonl(record).sentences[0]
    assert sentence.tokens == ("日本", "の", "知床", "半島")
    assert sentence.spans == (Span(0, 1, "LOC"), Span(2, 4, "LOC"))


def test_jsonl_scheme_is_detected_over_the_records_with_tags():
    parsed = jsonl(
        {"text": "Ann", "spans": [{"start": 0, "end": 3, "label": "PER"}]},
        {"tokens": ["a", "b"], "tags": ["S-PER", "O"]},
    )
    assert parsed.scheme is BIOES


@pytest.mark.parametrize(
    ("records", "line", "field", "says"),
    [
        (['{"tokens": ["a"], "tags": ["O"]}', "{oops"], 2, None, "invalid JSON"),
        (["[1, 2]"], 1, None, "each line must be a JSON object"),
        (['{"tokens": ["a"], "tags": ["O"], "tags": ["O"]}'], 1, None, "appears twice"),
        ([{"tokens": ["a"], "tags": [float("nan")]}], 1, None, "NaN is not a JSON value"),
        ([{"tags": ["O"]}], 1, "tokens", "needs 'tokens' and 'tags', or 'text' and 'spans'"),
        ([{"tokens": "a b"}], 1, "tokens", "expected a list"),
        ([{"tokens": ["a", "b c"], "tags": ["O", "O"]}], 1, "tokens[1]", "contains whitespace"),
        ([{"tokens": ["a", ""], "tags": ["O", "O"]}], 1, "tokens[1]", "empty token"),
        ([{"tokens": ["a", 3], "tags": ["O", "O"]}], 1, "tokens[1]", "expected a string"),
        ([{"tokens": [], "tags": []}], 1, "tokens", "no tokens"),
        ([{"tokens": ["a"]}], 1, "tags", "needs 'tags' or 'spans'"),
        ([{"tokens": ["a", "b"], "tags": ["O"]}], 1, "tags", "1 tags for 2 tokens"),
        ([{"tokens": ["a", "b"], "tags": ["O", "B_PER"]}], 1, "tags[1]", "'B_PER' is not a tag"),
        ([{"tokens": ["a"], "tags": [None]}], 1, "tags[0]", "'None' is not a tag"),
        (
            [{"tokens": ["a", "b"], "tags": ["B-PER", "I-PER"], "spans": []}],
            1,
            "spans",
            "the spans (none) do not match the tags, read as IOB2 (PER 0-2)",
        ),
        (
            [{"tokens": ["a", "b"], "spans": [{"start": 1, "end": 3, "label": "X"}]}],
            1,
            "spans[0]",
            "token offsets 1-3 are not within 0-2",
        ),
        (
            [{"tokens": ["a"], "spans": [{"start": "0", "end": 1, "label": "X"}]}],
            1,
            "spans[0].start",
            'expected a whole number, got "0"',
        ),
        ([{"text": "Ann", "spans": [{"start": 0, "end": 3}]}], 1, "spans[0].label", "expected a"),
        ([{"text": "Ann", "spans": [{"start": 0, "label": "P"}]}], 1, "spans[0].end", "nothing"),
        ([{"text": "a", "spans": [[0, 1, "X"]]}], 1, "spans[0]", "a span is an object"),
        ([{"text": "Ann"}], 1, "spans", "needs 'spans' ([] for no entities)"),
        ([{"text": " \t", "spans": []}], 1, "text", "no tokens"),
        ([{"text": 5, "spans": []}], 1, "text", "expected a string"),
        ([{"text": "a\x00", "spans": []}], 1, "text", "NUL"),
        (
            [
                {
                    "text": "Ann",
                    "spans": [{"start": 0, "end": 3, "label": "PER"}],
                    "answer": "reject",
                }
            ],
            1,
            "answer",
            "'reject': only accepted examples are annotations",
        ),
        ([{"text": "Ann", "spans": [], "id": 1.5}], 1, "id", "expected a string or a whole"),
        ([{"text": "Ann", "spans": [], "id": True}], 1, "id", "expected a string or a whole"),
    ],
)
def test_jsonl_errors_name_line_and_field(records, line, field, says):
    with pytest.raises(FormatError) as error:
        jsonl(*records)
    assert says in refused(error, line, field)


def test_jsonl_span_inside_a_token():
    text = "U.N. official Ekeus heads for Baghdad."
    spans = [
        {"start": 0, "end": 4, "label": "ORG"},
        {"start": 14, "end": 19, "label": "PER"},
        {"start": 32, "end": 37, "label": "LOC"},  # "Baghdad." is one token: starts at 30
    ]
    with pytest.raises(FormatError) as error:
        jsonl({"tokens": ["a"], "tags": ["O"]}, {"text": text, "spans": spans})
    assert refused(error, 2, "spans[2].start") == (
        "character 32 is not where a token starts (it is inside the token at characters 30-38)"
    )
    spans[2]["start"] = 30
    with pytest.raises(FormatError) as error:
        jsonl({"tokens": ["a"], "tags": ["O"]}, {"text": text, "spans": spans})
    assert refused(error, 2, "spans[2].end") == (
        "character 37 is not where a token ends (it is inside the token at characters 30-38)"
    )


@pytest.mark.parametrize(
    ("span", "field", "says"),
    [
        ({"start": 3, "end": 4}, "spans[0].start", "character 3 is not where a token starts"),
        ({"start": 4, "end": 3}, "spans[0].end", "character 3 is before the start, 4"),
        ({"start": 4, "end": 5}, "spans[0].end", "not where a token ends (it is inside the"),
        ({"start": 4, "end": 99}, "spans[0].end", "character 99 is not where a token ends"),
        ({"start": 4, "end": 8, "token_start": 1}, "spans[0].end", "not where a token ends"),
    ],
)
def test_jsonl_span_boundaries_off_the_tokens(span, field, says):
    """'Ann' (0-3) and 'Lee' (4-7) after whitespace splitting; the token offsets of a span are
    only read with token objects."""
    with pytest.raises(FormatError) as error:
        jsonl({"text": "Ann Lee", "spans": [{**span, "label": "PER"}]})
    assert says in refused(error, 1, field)


def test_jsonl_nesting_deeper_than_the_limit():
    with pytest.raises(FormatError) as error:
        jsonl({"tokens": ["a"], "tags": ["O"]}, {"tokens": ["a"], "x": [[1]]}, max_depth=2)
    assert refused(error, 2, "x[0]") == "nested deeper than 2 levels"


def test_jsonl_overlapping_spans():
    spans = [
        {"start": 0, "end": 7, "label": "PER"},
        {"start": 8, "end": 11, "label": "LOC"},
        {"start": 4, "end": 11, "label": "ORG"},
    ]
    with pytest.raises(FormatError) as error:
        jsonl({"text": "Ann Lee Kim", "spans": spans})
    assert refused(error, 1, "spans[2]") == (
        "overlaps spans[0] (tokens 0-2 and 1-3); entities cannot overlap"
    )
    same = [{"start": 1, "end": 2, "label": "A"}, {"start": 1, "end": 2, "label": "A"}]
    with pytest.raises(FormatError) as error:
        jsonl({"tokens": ["a", "b"], "spans": same})
    assert "overlaps spans[0]" in refused(error, 1, "spans[1]")


@pytest.mark.parametrize(
    ("tokens", "span", "field", "says"),
    [
        ([{"start": 0, "end": 3}, {"start": 2, "end": 7}], {}, "tokens[1]", "not after the"),
        ([{"start": 0, "end": 3}, {"start": 4, "end": 9}], {}, "tokens[1]", "within the text"),
        (
            [{"start": 0, "end": 3, "text": "Ann"}, {"start": 4, "end": 7, "text": "Le"}],
            {},
            "tokens[1].text",
            "is not the text's",
        ),
        ([{"start": 0, "end": 7}], {}, "tokens[0]", "contains whitespace"),
        (["Ann", "Lee"], {}, "tokens[0]", "tokens are objects with start and end"),
        (
            [{"start": 0, "end": 3}, {"start": 3, "end": 4}, {"start": 4, "end": 7}],
            {"token_start": 1, "token_end": 2},
            "spans[0].token_start",
            "token 1 is whitespace",
        ),
        (
            [{"start": 0, "end": 3}, {"start": 4, "end": 7}],
            {"token_start": 1, "token_end": 2},
            "spans[0]",
            "1-2 are not tokens",
        ),
    ],
)
def test_jsonl_bad_token_objects(tokens, span, field, says):
    record = {
        "text": "Ann Lee",
        "tokens": tokens,
        "spans": [{"start": 0, "end": 3, "label": "P", **span}],
    }
    with pytest.raises(FormatError) as error:
        jsonl(record)
    assert says in refused(error, 1, field)


def test_jsonl_token_objects_without_text_are_refused():
    with pytest.raises(FormatError) as error:
        jsonl({"tokens": [{"start": 0, "end": 3}], "spans": []})
    assert "token objects need the record's 'text'" in refused(error, 1, "tokens[0]")


def test_jsonl_duplicate_id():
    with pytest.raises(FormatError) as error:
        jsonl(
            {"id": "a", "tokens": ["x"], "tags": ["O"]},
            {"id": "b", "tokens": ["x"], "tags": ["O"]},
            "",
            {"id": " a ", "tokens": ["y"], "tags": ["O"]},
        )
    assert refused(error, 4, "id") == "duplicate id 'a' (first on line 1)"


def test_jsonl_sentence_longer_than_the_limit():
    with pytest.raises(FormatError) as error:
        jsonl({"tokens": ["a"], "tags": ["O"]}, {"text": "a b c d", "spans": []}, max_tokens=3)
    assert refused(error, 2, "text") == "4 tokens in one sentence; at most 3"
    with pytest.raises(FormatError) as error:
        jsonl({"tokens": list("abcd"), "tags": ["O"] * 4}, max_tokens=3)
    assert refused(error, 1, "tokens") == "4 tokens in one sentence; at most 3"


def test_jsonl_without_sentences():
    with pytest.raises(FormatError) as error:
        jsonl("", "  ")
    assert refused(error, None, None) == "the file has no sentences"


def test_jsonl_a_scheme_given_refuses_tags_outside_it():
    with pytest.raises(FormatError) as error:
        read_jsonl(
            io.StringIO('{"tokens": ["a"], "tags": ["S-X"]}\n'),
            "t.jsonl",
            max_tokens=MAX_TOKENS,
            max_depth=MAX_DEPTH,
            scheme=IOB1,
        )
    assert refused(error, 1, "tags[0]") == "tag 'S-X' is not an IOB1 tag (O, B-X, I-X)"


def test_jsonl_output():
    sentence = Sentence(["Ann", "Lee", "met", "Bo"], [Span(0, 2, "PER"), Span(3, 4, "PER")], 1, "x")
    assert to_record(sentence, BIOES) == {
        "id": "x",
        "tokens": ["Ann", "Lee", "met", "Bo"],
        "tags": ["B-PER", "E-PER", "O", "S-PER"],
        "spans": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 4, "label": "PER"}],
    }
    unnamed = Sentence(["東京"], [Span(0, 1, "LOC")], 1)
    assert write_jsonl([unnamed]) == (
        '{"tokens": ["東京"], "tags": ["B-LOC"], '
        '"spans": [{"start": 0, "end": 1, "label": "LOC"}]}\n'
    )


# --- the real corpora excerpts ------------------------------------------------------------------


def read_file(name: str) -> Parsed:
    with (DATA / name).open(encoding="utf-8") as handle:
        return read_conll(handle, name, max_tokens=MAX_TOKENS)


def counted(name: str) -> tuple[int, int, Counter[str]]:
    """Sentences, tokens and entities per type of a `token TAG` file, counted on its text alone:
    an entity starts at B-X, or at I-X when the tag before it (in the sentence) is not of type X."""
    sentences, tokens, entities = 0, 0, Counter()
    for block in (DATA / name).read_text(encoding="utf-8").split("\n\n"):
        tags = [line.split()[-1] for line in block.splitlines() if line.strip()]
        sentences += bool(tags)
        tokens += len(tags)
        for before, tag in zip(["O", *tags], tags, strict=False):
            if tag.startswith("B-") or (tag.startswith("I-") and before[2:] != tag[2:]):
                entities[tag[2:]] += 1
    return sentences, tokens, entities


def test_conll2003_sample():
    parsed = read_file("conll2003_sample.conll")
    assert (parsed.scheme, parsed.repairs) == (IOB1, ())
    found = [
        (s.line, [(" ".join(s.tokens[x.start : x.end]), x.label) for x in s.spans])
        for s in parsed.sentences
    ]
    assert found == [
        (3, [("U.N.", "ORG"), ("Ekeus", "PER"), ("Baghdad", "LOC")]),
        (13, [("AI2", "ORG"), ("Joel", "PER"), ("Seattle", "LOC")]),
    ]
    assert parsed.sentences[0].tokens == (
        "U.N.",
        "official",
        "Ekeus",
        "heads",
        "for",
        "Baghdad",
        ".",
    )
    assert sum(len(s.tokens) for s in parsed.sentences) == 14


@pytest.mark.parametrize(
    ("name", "scheme", "repair_lines"),
    [
        ("news_en_silver_ner_40.conll", IOB2, []),
        # the Japanese corpus's two I-ART after O (its sentences 225 and 377)
        ("ner_ja_hironsan_excerpt.conll", IOB2, [1106, 1132]),
    ],
)
def test_real_corpora(name, scheme, repair_lines):
    parsed = read_file(name)
    n_sentences, n_tokens, entities = counted(name)
    assert parsed.scheme is scheme
    assert len(parsed.sentences) == n_sentences
    assert sum(len(s.tokens) for s in parsed.sentences) == n_tokens
    assert Counter(x.label for s in parsed.sentences for x in s.spans) == entities
    assert [(r.line, r.field) for r in parsed.repairs] == [(line, "tag") for line in repair_lines]
    assert all(r.message == "'I-ART' after 'O' is not valid IOB2" for r in parsed.repairs)
    lines = [s.line for s in parsed.sentences]  # each sentence starts after the one before
    after = [line + len(s.tokens) + 1 for line, s in zip(lines, parsed.sentences, strict=True)]
    assert lines == [1, *after[:-1]]


def test_news_first_sentence():
    sentence = read_file("news_en_silver_ner_40.conll").sentences[0]
    found = [(" ".join(sentence.tokens[x.start : x.end]), x.label) for x in sentence.spans][:4]
    assert found == [
        ("Michigan", "GPE"),
        ("Betsy DeVos", "PERSON"),
        ("today", "DATE"),
        ("Trump", "PERSON"),
    ]


def test_japanese_repaired_artifact():
    sentence = read_file("ner_ja_hironsan_excerpt.conll").sentences[40]
    arts = ["".join(sentence.tokens[x.start : x.end]) for x in sentence.spans if x.label == "ART"]
    assert arts == [
        "アジャイルスーパー",
        "号",
    ]  # 「アジャイルスーパー」号: the I-ART after 」 starts one


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["conll2003_sample.conll", "news_en_silver_ner_40.conll", "ner_ja_hironsan_excerpt.conll"],
)
@pytest.mark.parametrize("scheme", list(Scheme))
def test_round_trips(name, scheme):
    sentences = read_file(name).sentences
    again = conll(write_conll(sentences, scheme))
    assert again.sentences == sentences
    assert (again.scheme, again.repairs) == (scheme, ())  # written valid, and detected back
    named = tuple(
        Sentence(s.tokens, s.spans, s.line, f"{name}:{i}") for i, s in enumerate(sentences)
    )
    text = write_jsonl(named, scheme)
    parsed = read_jsonl(io.StringIO(text), "x.jsonl", max_tokens=MAX_TOKENS, max_depth=MAX_DEPTH)
    assert parsed.sentences == named
    assert [s.line for s in parsed.sentences] == list(range(1, len(named) + 1))
    assert write_conll(parsed.sentences, scheme) == write_conll(sentences, scheme)


# --- properties on random data ------------------------------------------------------------------


def random_spans(rng: random.Random, n: int) -> list[Span]:
    """Disjoint spans of one to three tokens, two types, so adjacent same-type spans are common."""
    spans, i = [], 0
    while i < n:
        length = rng.randint(1, 3)
        if rng.random() < 0.5 and i + length <= n:
            spans.append(Span(i, i + length, rng.choice("AB")))
            i += length
        else:
            i += 1
    return spans


@pytest.mark.parametrize("scheme", list(Scheme))
def test_spans_to_tags_to_spans_is_the_identity(scheme):
    rng = random.Random(1505 + list(Scheme).index(scheme))
    cases = [(n, random_spans(rng, n)) for n in (rng.randint(1, 12) for _ in range(2000))]
    assert sum(len(spans) for _, spans in cases) > 3000
    for n, spans in cases:
        tags = spans_to_tags(n, spans, scheme)
        assert tags_to_spans(tags, scheme) == spans, (tags, spans)
    # and the tags written are valid in their scheme: reading them repairs nothing
    text = "".join(
        "".join(f"t {tag}\n" for tag in spans_to_tags(n, spans, scheme)) + "\n"
        for n, spans in cases
    )
    assert conll(text, scheme=scheme).repairs == ()


@pytest.mark.parametrize("scheme", list(Scheme))
def test_any_tag_sequence_reads_as_disjoint_spans(scheme):
    """Random sequences of every tag of the scheme: the spans read are always a valid sentence,
    and where nothing was repaired (IOB2, BIOES) writing them gives the same tags back."""
    rng = random.Random(15 + list(Scheme).index(scheme))
    prefixes = "BIES" if scheme is BIOES else "BI"
    alphabet = ["O"] + [f"{p}-{t}" for p in prefixes for t in "AB"]
    sequences = [[rng.choice(alphabet) for _ in range(rng.randint(1, 8))] for _ in range(3000)]
    text = "".join("".join(f"t {tag}\n" for tag in tags) + "\n" for tags in sequences)
    parsed = conll(text, scheme=scheme)
    repaired = {r.line for r in parsed.repairs}
    clean = 0
    for tags, sentence in zip(sequences, parsed.sentences, strict=True):
        assert list(sentence.spans) == tags_to_spans(tags, scheme)
        lines = range(sentence.line, sentence.line + len(tags))
        if scheme is not IOB1 and not repaired.intersection(lines):
            clean += 1
            assert spans_to_tags(len(tags), sentence.spans, scheme) == tags
    assert scheme is IOB1 or clean > 100
