"""`assay score --task sequence_tagging` as a user runs it: a fresh process, real CoNLL files
(tests/data/news_en_silver_ner_80.conll split 60 train / 20 dev), the default encoder."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import pytest

from tests.test_cli import run

DATA = Path(__file__).resolve().parent / "data" / "news_en_silver_ner_80.conll"
COLUMNS = [
    "sentence",
    "start",
    "end",
    "tokens",
    "label",
    "predicted",
    "suggested",
    "suspicion_rank",
    "estimator",
]
N_TRAIN = 60
# "The Associated Press" (sentence 31, tokens 5-8), ORG in the file, relabelled DATE in TRAIN
FLIPPED = (31, 5, 8)
FLIPPED_TO = "DATE"


def blocks() -> list[list[tuple[str, str]]]:
    """(token, tag) per line of each sentence of the data file (blank lines between)."""
    text = DATA.read_text(encoding="utf-8")
    return [
        [tuple(line.split()) for line in block.splitlines()]
        for block in text.split("\n\n")
        if block.strip()
    ]


def spans_of(tags: list[str]) -> list[tuple[int, int, str]]:
    """Spans of clean BIO tags (the file's are: every I- continues its B-)."""
    spans: list[tuple[int, int, str]] = []
    for j, tag in enumerate(tags):
        if tag.startswith("B-"):
            spans.append((j, j + 1, tag[2:]))
        elif tag.startswith("I-"):
            start, _, typ = spans[-1]
            assert typ == tag[2:] and spans[-1][1] == j
            spans[-1] = (start, j + 1, typ)
    return spans


def write_conll(path: Path, sentences: list[list[tuple[str, str]]], head: str = "") -> None:
    path.write_text(head + "".join("".join(f"{w} {t}\n" for w, t in s) + "\n" for s in sentences))


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """TRAIN (a -DOCSTART- line first, which is not a sentence) with one span's type flipped,
    the gold-like DEV, the CLI's rows and its wall time."""
    tmp = tmp_path_factory.mktemp("tagging")
    sentences = blocks()
    train = [list(s) for s in sentences[:N_TRAIN]]
    i, start, end = FLIPPED
    assert [w for w, _ in train[i][start:end]] == ["The", "Associated", "Press"]
    assert [t for _, t in train[i][start:end]] == ["B-ORG", "I-ORG", "I-ORG"]
    for j in range(start, end):
        train[i][j] = (train[i][j][0], f"{'B' if j == start else 'I'}-{FLIPPED_TO}")
    write_conll(tmp / "train.conll", train, head="-DOCSTART- -X- O O\n\n")
    write_conll(tmp / "dev.conll", sentences[N_TRAIN:])
    out = tmp / "spans.csv"
    began = time.perf_counter()
    result = run(
        [
            "score",
            str(tmp / "train.conll"),
            "--task",
            "sequence_tagging",
            "--dev",
            str(tmp / "dev.conll"),
            "--out",
            str(out),
        ],
        {"ASSAY_DATA_DIR": str(tmp / "data")},
    )
    seconds = time.perf_counter() - began
    assert result.returncode == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return train, reader.fieldnames, list(reader), seconds


def test_columns_and_ranks(scored):
    _, columns, rows, seconds = scored
    print(f"assay score --task sequence_tagging, 60 + 20 sentences: {seconds:.1f} s")
    assert columns == COLUMNS
    ranks = [int(r["suspicion_rank"]) for r in rows]
    assert ranks == list(range(1, len(rows) + 1))  # a permutation of 1..n, in rank order
    assert {r["estimator"] for r in rows} == {"segment_dev"}  # a dev set ranks by its loss


def test_one_row_per_labelled_span_plus_predicted_only_spans(scored):
    train, _, rows, _ = scored
    labelled = {(i, *span) for i, s in enumerate(train) for span in spans_of([t for _, t in s])}
    got = {(int(r["sentence"]), int(r["start"]), int(r["end"]), r["label"]) for r in rows}
    assert len(got) == len(rows)
    assert {g for g in got if g[3] != "O"} == labelled
    bounds = {g[:3] for g in labelled}
    extra = [r for r in rows if r["label"] == "O"]
    assert extra  # the head, fitted to 60 sentences, finds entities the silver tags lack
    for r in extra:  # spans only the model predicts: not a labelled span's boundaries
        assert (int(r["sentence"]), int(r["start"]), int(r["end"])) not in bounds
        assert r["predicted"] != "O"
    for r in rows:
        words = [w for w, _ in train[int(r["sentence"])]]
        assert r["tokens"] == " ".join(words[int(r["start"]) : int(r["end"])])
        assert r["suggested"]


def test_the_flipped_span_ranks_in_the_top_tenth(scored):
    """The bound: rank <= ceil(10% of the rows), where a random ranking would put it with
    probability 0.1. Why this flip: a name (ORG, three tokens) relabelled DATE is a label the
    head can only memorise, as it is unlike every DATE in TRAIN and DEV; a useful ranking must
    find that. It is not every flip: with 60 sentences the head also fits flips it has no
    evidence against (a lone "Trump" relabelled ORG or MONEY is predicted as relabelled), and
    those land anywhere (13 single flips tried: ranks 5 to 141 of 142)."""
    _, _, rows, _ = scored
    found = [r for r in rows if (int(r["sentence"]), int(r["start"]), int(r["end"])) == FLIPPED]
    assert len(found) == 1 and found[0]["label"] == FLIPPED_TO
    assert int(found[0]["suspicion_rank"]) <= math.ceil(0.1 * len(rows))


def bad_run(tmp_path: Path, train_text: str, dev_text: str | None = None, suffix: str = "conll"):
    (tmp_path / f"train.{suffix}").write_text(train_text)
    args = ["score", str(tmp_path / f"train.{suffix}"), "--task", "sequence_tagging"]
    if dev_text is not None:
        (tmp_path / "dev.conll").write_text(dev_text)
        args += ["--dev", str(tmp_path / "dev.conll")]
    out = tmp_path / "spans.csv"
    result = run([*args, "--out", str(out)], {"ASSAY_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert not out.exists()
    return result.stderr


GOOD = "Ann B-PERSON\nmet O\nBob B-PERSON\n\nIBM B-ORG\nhired O\nher O\n"


def test_dev_with_a_type_train_lacks_names_the_dev_line(tmp_path):
    err = bad_run(tmp_path, GOOD, dev_text="Paris B-GPE\nis O\n\nAnn B-PERSON\nin O\nRome B-LOC\n")
    assert "dev.conll, line 1, field 'tag'" in err and "'GPE'" in err


def test_a_line_without_a_tag_names_its_line(tmp_path):
    err = bad_run(tmp_path, GOOD + "\nlonely\n")
    assert "train.conll, line 9, field 'tag'" in err


def test_jsonl_is_read_as_jsonl(tmp_path):
    err = bad_run(tmp_path, '{"tokens": ["a"], "tags": ["B-X"]}\n{"tokens": []}\n', suffix="jsonl")
    assert (
        "train.jsonl, line 2, field 'tags'" in err or "train.jsonl, line 2, field 'tokens'" in err
    )
