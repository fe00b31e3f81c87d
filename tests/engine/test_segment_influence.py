"""The MEMM tagging head and segment influence: gradients, decoding, candidates, and influence
against brute-force retraining on real sentences (tests/data/news_en_silver_ner_80.conll).

Token vectors are deterministic random vectors per token string (hashing), so the exactness
checks need no encoder; one slow test repeats the retraining check on the default encoder's
contextual token vectors.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.engine.head import LogisticHead, regularised_objective
from workers.engine.segment_influence import SegmentInfluence, score_segments, segment_losses
from workers.engine.tagging import (
    MEMMHead,
    Segment,
    TaggedCorpus,
    bio_spans,
    candidate_segments,
    memm_features,
    span_types,
    tag_ids,
    tag_strings,
)
from workers.engine.tagging_baselines import (
    cleanlab_segment_scores,
    out_of_fold_marginals,
    random_segment_scores,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "news_en_silver_ner_80.conll"
L2 = 1e-3
N_TRAIN = 60  # the other 20 sentences are the dev set


def read_conll(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Words and tags of a two-column CoNLL file, sentences split at blank lines."""
    sentences: list[list[list[str]]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            sentences[-1].append(line.split())
        elif sentences[-1]:
            sentences.append([])
    sentences = [s for s in sentences if s]
    return [[w for w, _ in s] for s in sentences], [[t for _, t in s] for s in sentences]


def hashed_vectors(words: list[list[str]], dim: int) -> list[np.ndarray]:
    """The same random vector (scale 3) for every occurrence of a word: a stand-in encoder."""

    def vector(word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=dim) * 3 / np.sqrt(dim)

    return [np.stack([vector(w) for w in sent]) for sent in words]


@pytest.fixture(scope="module")
def one_thread():
    """Problems this small run faster on one thread; on a busy machine two threads wait on each
    other at every tiny matmul."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def news() -> tuple[list[list[str]], list[list[str]], list[str]]:
    words, tags = read_conll(DATA)
    return words, tags, sorted({t for sent in tags for t in sent})


def split(vectors: list[np.ndarray], ids: list[np.ndarray]) -> tuple[TaggedCorpus, TaggedCorpus]:
    return (
        TaggedCorpus(vectors[:N_TRAIN], ids[:N_TRAIN]),
        TaggedCorpus(vectors[N_TRAIN:], ids[N_TRAIN:]),
    )


@pytest.fixture(scope="module")
def scored(news, one_thread):
    """The head fitted on 60 sentences (32-dim hashed vectors), scored with the 20 dev ones."""
    words, tags, names = news
    train, dev = split(hashed_vectors(words, 32), tag_ids(tags, names))
    return train, dev, names, score_segments(train, names, l2=L2, dev=dev, device="cpu")


# ---- the head -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(news, one_thread):
    """15 sentences, 6-dim vectors: small enough for finite differences and autograd."""
    words, tags, names = news
    corpus = TaggedCorpus(hashed_vectors(words[:15], 6), tag_ids(tags[:15], names))
    return corpus, SegmentInfluence.fit(corpus, len(names), l2=L2, device="cpu")


def test_segment_gradients_match_finite_differences(small, news):
    corpus, inf = small
    segments = candidate_segments(news[1][:15], news[1][:15])[:6]
    segments.append(Segment(3, 0, len(corpus.tags[3]), "O"))  # a whole sentence too
    G = inf.gradients(segments)
    theta = inf.theta
    eps = 1e-5
    for k in np.random.default_rng(0).choice(theta.size, size=40, replace=False):
        losses = []
        for sign in (1.0, -1.0):
            moved = theta.copy().ravel()
            moved[k] += sign * eps
            head = MEMMHead(LogisticHead.from_theta(torch.tensor(moved.reshape(theta.shape))))
            losses.append(segment_losses(head, corpus, segments))
        np.testing.assert_allclose(G[:, k], (losses[0] - losses[1]) / (2 * eps), atol=1e-7)


def test_fitted_head_is_at_the_optimum(small):
    corpus, inf = small
    whole = [Segment(i, 0, len(t), "O") for i, t in enumerate(corpus.tags)]
    grad = inf.gradients(whole).sum(axis=0) / corpus.n_tokens + L2 * inf.theta.ravel()
    assert np.abs(grad).max() < 1e-7


def test_hessian_is_autograds_hessian_of_the_objective(small):
    corpus, inf = small
    T, D = inf.theta.shape
    X = torch.tensor(memm_features(corpus.X, corpus.previous(T), T))
    y = torch.tensor(corpus.y)
    w = torch.ones(len(y), dtype=torch.float64)
    exact = torch.autograd.functional.hessian(
        lambda t: regularised_objective(t.view(T, D), X, y, w, L2),
        torch.tensor(inf.theta.ravel()),
    )
    np.testing.assert_allclose(inf.hessian(), exact.numpy(), atol=1e-10)


def test_viterbi_and_marginals_match_brute_force_over_all_paths():
    rng = np.random.default_rng(3)
    T, d, n = 3, 2, 5
    head = MEMMHead(LogisticHead(rng.normal(size=(T, d + T + 1)) * 2, rng.normal(size=T)))
    X = rng.normal(size=(n, d))
    L = head.transition_log_probs(X)
    paths = np.array(list(itertools.product(range(T), repeat=n)))
    prev = np.concatenate([np.full((len(paths), 1), T), paths[:, :-1]], axis=1)
    logp = L[np.arange(n), prev, paths].sum(axis=1)
    np.testing.assert_array_equal(head.viterbi(X), paths[logp.argmax()])
    p = np.exp(logp)
    assert p.sum() == pytest.approx(1.0)
    brute = np.stack([np.bincount(paths[:, j], weights=p, minlength=T) for j in range(n)])
    np.testing.assert_allclose(head.marginals(X), brute, atol=1e-12)


# ---- candidate segments -------------------------------------------------------------------


def test_bio_spans_read_iob2_and_a_stray_inside_tag():
    tags = ["B-PER", "I-PER", "O", "I-ORG", "B-ORG", "I-LOC", "I-LOC"]
    assert bio_spans(tags) == [(0, 2, "PER"), (3, 4, "ORG"), (4, 5, "ORG"), (5, 7, "LOC")]
    with pytest.raises(ValueError, match="token 1"):
        bio_spans(["O", "PER"])


def test_candidates_add_predicted_spans_the_labels_lack():
    true = [["B-PER", "I-PER", "O", "O", "B-ORG"], ["O", "O"]]
    pred = [["B-ORG", "I-ORG", "O", "B-LOC", "I-LOC"], ["B-GPE", "O"]]
    found = candidate_segments(true, pred)
    assert found == [
        Segment(0, 0, 2, "PER"),  # predicted ORG with the same boundaries: no second candidate
        Segment(0, 3, 5, "O"),  # predicted LOC over a labelled O and a labelled ORG token
        Segment(0, 4, 5, "ORG"),
        Segment(1, 0, 1, "O"),  # a missed entity
    ]
    predicted, suggested = span_types(found, pred)
    assert predicted == ["ORG", "LOC", "O", "GPE"]
    assert suggested == ["ORG", "LOC", "LOC", "GPE"]


def test_scoring_finds_spans_only_the_model_predicts(scored):
    train, _, names, sc = scored
    labelled = tag_strings(train.tags, names)
    unlabelled = [i for i, s in enumerate(sc.segments) if s.label == "O"]
    assert unlabelled, "the fitted head predicts no span that the labels lack"
    for i in unlabelled:
        seg = sc.segments[i]
        assert sc.predicted[i] != "O" and sc.suggested[i] == sc.predicted[i]
        assert (seg.start, seg.end) not in {(s, e) for s, e, _ in bio_spans(labelled[seg.sentence])}
    assert len(sc.segments) - len(unlabelled) == sum(len(bio_spans(t)) for t in labelled)
    # dev influence ranks: harmful (most negative) first
    assert sc.estimator == "segment_dev"
    assert sc.dev_influence[sc.rank.argmin()] == sc.dev_influence.min()


# ---- influence against retraining ---------------------------------------------------------


def retraining_check(
    inf: SegmentInfluence, dev: TaggedCorpus, segments: list[Segment], n_removed: int
) -> tuple[float, float]:
    """Retrain without each of ``n_removed`` segments (half the most dev-influential, half at
    random) and compare the change of the dev loss and of several target segments' losses with
    their influence. Returns the Pearson correlations (dev, targets pooled) after checking that
    every sizeable prediction has the sign of the actual change."""
    dev_inf = inf.dev_influence(segments, dev)
    strongest = list(np.argsort(-np.abs(dev_inf))[: n_removed // 2])
    rest = [j for j in range(len(segments)) if j not in strongest]
    rng = np.random.default_rng(0)
    removed = strongest + list(rng.choice(rest, n_removed - len(strongest), replace=False))
    targets = segments[:: max(1, len(segments) // 10)]
    predicted = inf.influence_on(targets, [segments[j] for j in removed])
    base, base_dev = inf.segment_losses(targets), inf.head.token_losses(dev).sum()
    actual, actual_dev = [], []
    for j in removed:
        head = inf.retrain_without([segments[j]])
        actual.append(segment_losses(head, inf.train, targets) - base)
        actual_dev.append(head.token_losses(dev).sum() - base_dev)
    actual, actual_dev = np.array(actual).T, np.array(actual_dev)
    # a segment is never its target's evidence, nor one from the target's own sentence
    other = np.array([[segments[j].sentence != t.sentence for j in removed] for t in targets])
    for name, pred, act in (
        ("dev loss", dev_inf[removed], actual_dev),
        ("targets", predicted[other], actual[other]),
    ):
        sizeable = np.abs(pred) > 0.1 * np.abs(pred).max()
        assert np.all(np.sign(pred[sizeable]) == np.sign(act[sizeable])), name
    for t, row, act, keep in zip(targets, predicted, actual, other, strict=True):
        print(f"  target {t}: Pearson {np.corrcoef(row[keep], act[keep])[0, 1]:.3f}")
    r_dev = float(np.corrcoef(dev_inf[removed], actual_dev)[0, 1])
    r_targets = float(np.corrcoef(predicted[other], actual[other])[0, 1])
    print(f"Pearson with retraining: dev loss {r_dev:.3f}, target segments {r_targets:.3f}")
    return r_dev, r_targets


def test_segment_influence_matches_retraining(scored):
    _, dev, _, sc = scored
    r_dev, r_targets = retraining_check(sc.influence, dev, sc.segments, 20)
    assert r_dev >= 0.9
    assert r_targets >= 0.9


@pytest.mark.slow
def test_segment_influence_matches_retraining_on_encoder_token_vectors(news, encoder_path):
    from workers.engine.token_vectors import embed_tokens

    words, tags, names = news
    train, dev = split(embed_tokens(words, encoder_path, device="cpu"), tag_ids(tags, names))
    # encoder states are larger than the hashed vectors: this l2 fits dev best of 1e-3, 3e-3, 1e-2
    sc = score_segments(train, names, l2=1e-2, dev=dev, device="cpu")
    r_dev, r_targets = retraining_check(sc.influence, dev, sc.segments, 12)
    assert r_dev >= 0.9
    assert r_targets >= 0.9


def test_influence_queries_agree_with_each_other(scored):
    _, dev, _, sc = scored
    inf, segments = sc.influence, sc.segments
    whole_dev = [Segment(i, 0, len(t), "O") for i, t in enumerate(dev.tags)]
    matrix = inf.influence_on(whole_dev, segments, target_corpus=dev)
    np.testing.assert_allclose(matrix.sum(axis=0), sc.dev_influence, rtol=1e-9, atol=1e-12)
    own = inf.influence_on(segments, segments)
    np.testing.assert_allclose(np.diag(own), sc.self_influence, rtol=1e-9)
    assert np.all(sc.self_influence > 0)

    # ranked values (identical words in identical contexts tie, so indices may swap)
    top = inf.top_influencers(segments, segments, 5)
    for t, seg in enumerate(segments):
        others = np.array([s.sentence != seg.sentence for s in segments])
        values = np.sort(own[t, others])
        np.testing.assert_allclose(top.supporters_val[t], values[::-1][:5], rtol=1e-9)
        np.testing.assert_allclose(top.opposers_val[t], values[:5], rtol=1e-9)
        for idx, val in (
            (top.supporters_idx[t], top.supporters_val[t]),
            (top.opposers_idx[t], top.opposers_val[t]),
        ):
            assert all(segments[j].sentence != seg.sentence for j in idx)
            np.testing.assert_allclose(own[t, idx], val, rtol=1e-9)
    on_dev = inf.top_influencers(whole_dev, segments, 3, target_corpus=dev)
    np.testing.assert_allclose(on_dev.opposers_val, np.sort(matrix, axis=1)[:, :3], rtol=1e-9)


def test_device_argument_is_honoured(small):
    corpus, inf = small
    assert inf.device == torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    on_gpu = SegmentInfluence(inf.head, corpus, l2=L2, device="cuda")
    segments = [Segment(i, 0, len(t), "O") for i, t in enumerate(corpus.tags)]
    np.testing.assert_allclose(
        on_gpu.self_influence(segments), inf.self_influence(segments), rtol=1e-8
    )


# ---- baselines ----------------------------------------------------------------------------


def test_out_of_fold_marginals_never_see_their_own_sentence(scored, one_thread):
    train, _, names, sc = scored
    probs = out_of_fold_marginals(train, len(names), l2=L2, folds=3)
    for p, t in zip(probs, train.tags, strict=True):
        assert p.shape == (len(t), len(names))
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    flipped = [t.copy() for t in train.tags]
    flipped[0][:] = names.index("B-ORG")
    again = out_of_fold_marginals(TaggedCorpus(train.vectors, flipped), len(names), l2=L2, folds=3)
    np.testing.assert_allclose(again[0], probs[0], atol=1e-6)

    suspicion = cleanlab_segment_scores(train, sc.segments, probs)
    assert suspicion.shape == (len(sc.segments),)
    assert np.all((suspicion >= 0) & (suspicion <= 1))
    assert len(set(random_segment_scores(50, seed=1))) == 50
