"""InfFeed: label adjustment by hand, dev-only selection, triage invariants, and a real run."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import spearmanr
from sklearn.metrics import f1_score

from bench.triage_sim import (
    cleanlab_ranker,
    influence_ranker,
    loss_ranker,
    random_ranker,
    triage_rounds,
)
from tests.engine.synthetic import linear_sampler
from workers.engine.embeddings import cached_embeddings
from workers.engine.estimators import ExactHeadInfluence, TopK
from workers.engine.head import fit_logistic_head
from workers.engine.inffeed import (
    DEFAULT_K_GRID,
    AdjustConfig,
    adjust_labels,
    feasible_k_grid,
    macro_f1,
    proponents,
    prune_by_ranker,
    select_adjustment,
    suggest_labels,
)
from workers.engine.suggestions import inffeed_suggestions

from .conftest import LABELS

L2 = 1e-2


def test_adjust_labels_by_hand():
    y_train = np.array([0, 1, 2, 1, 2])
    probs = np.array(
        [
            [0.50, 0.30, 0.20],  # unsure, predicted 0; proponents labelled 1, 1, 0
            [0.90, 0.05, 0.05],  # confident: never adjusted
            [0.20, 0.45, 0.35],  # unsure, predicted 1; proponents labelled 0, 2, 2
            [0.40, 0.35, 0.25],  # unsure, predicted 0; proponents labelled 0, 1 -> tie
            [0.30, 0.50, 0.20],  # unsure, predicted 1; only one proponent is positive
        ]
    )
    idx = np.array([[1, 3, 0], [1, 3, 0], [0, 2, 4], [0, 1, 2], [0, 3, 1]])
    val = np.array(
        [
            [0.5, 0.4, 0.3],
            [0.5, 0.4, 0.3],
            [0.9, 0.2, 0.1],
            [0.5, 0.5, 0.0],
            [0.3, -0.1, -0.2],
        ]
    )

    def run(k, weighting, threshold):
        return adjust_labels(
            probs, idx, val, y_train, k=k, weighting=weighting, threshold=threshold
        )

    # uniform k=3: votes {1: 2, 0: 1} -> 1; kept; {0: 1, 2: 2} -> 2; {0: 1, 1: 1} tie keeps 0
    # (the third entry has zero influence: no proponent); one positive proponent labelled 0.
    np.testing.assert_array_equal(run(3, "uniform", 0.6), [1, 0, 2, 0, 0])
    # influence weights: {1: .9, 0: .3} -> 1; {0: .9, 2: .3} -> 0; tie .5/.5 keeps 0; -> 0.
    np.testing.assert_array_equal(run(3, "influence", 0.6), [1, 0, 0, 0, 0])
    # k=1 uses only the strongest proponent.
    np.testing.assert_array_equal(run(1, "uniform", 0.6), [1, 0, 0, 0, 0])
    # The threshold gates by confidence: below 0.46 are only rows 2 (0.45) and 3 (0.40).
    np.testing.assert_array_equal(run(3, "uniform", 0.46), [0, 0, 2, 0, 1])
    np.testing.assert_array_equal(run(3, "uniform", 0.0), probs.argmax(axis=1))
    with pytest.raises(ValueError):
        run(3, "majority", 0.6)


def _topk(idx: np.ndarray, val: np.ndarray) -> TopK:
    return TopK(idx, val, idx[:, ::-1], -val)


def test_select_adjustment_uses_it_only_when_it_helps_on_dev():
    rng = np.random.default_rng(0)
    m = 200
    y_dev = rng.integers(0, 2, size=m)
    # A weak model: right with probability 0.6 and always unsure.
    pred = np.where(rng.random(m) < 0.6, y_dev, 1 - y_dev)
    probs = np.where(pred[:, None] == np.arange(2), 0.58, 0.42)
    idx = np.tile(np.arange(5), (m, 1))
    val = np.tile(np.linspace(1.0, 0.2, 5), (m, 1))

    # Training item 0 is labelled 0, item 1 is labelled 1. Proponents that carry each dev item's
    # gold label fix every prediction once the threshold passes the confidence 0.58.
    y_train = np.array([0, 1])
    oracle = np.repeat(y_dev[:, None], 5, axis=1)
    sel = select_adjustment(probs, _topk(oracle, val), y_train, y_dev, k_grid=(1, 3, 5))
    assert sel.dev_f1_before == pytest.approx(macro_f1(y_dev, pred))
    assert sel.dev_f1_after == pytest.approx(1.0)
    assert sel.config.threshold > 0.58
    assert (sel.config.k, sel.config.weighting) == (1, "uniform")  # ties go to the simplest

    # Proponents that always vote for the wrong class: any adjustment hurts, so it is off.
    sel = select_adjustment(probs, _topk(1 - oracle, val), y_train, y_dev, k_grid=(1, 3, 5))
    assert sel.config.threshold == 0.0
    assert sel.dev_f1_after == sel.dev_f1_before

    # Whatever the proponents, the chosen config is never worse than no adjustment, and its
    # recorded F1 is what adjust_labels gives.
    y_rand = rng.integers(0, 2, size=5)
    sel = select_adjustment(probs, _topk(idx, val), y_rand, y_dev, k_grid=(1, 3, 5))
    assert sel.dev_f1_after >= sel.dev_f1_before
    assert all(f <= sel.dev_f1_after for _, f in sel.results)
    c = sel.config
    chosen = adjust_labels(
        probs, idx, val, y_rand, k=c.k, weighting=c.weighting, threshold=c.threshold
    )
    assert macro_f1(y_dev, chosen) == pytest.approx(sel.dev_f1_after)
    with pytest.raises(ValueError):
        select_adjustment(probs, _topk(idx, val), y_rand, y_dev, k_grid=(0, 3))


def test_k_grid_is_clipped_to_the_training_items():
    """20 training items and the grid's 25: k stops at 20 (every proponent votes), the job of a
    small project goes on (it failed with 'influencers_dev has 20 proponents, k_grid needs 25')."""
    assert feasible_k_grid((1, 3, 5, 10, 25), 20) == (1, 3, 5, 10, 20)
    assert feasible_k_grid((25, 10, 50), 7) == (7,)
    assert feasible_k_grid(DEFAULT_K_GRID, 1000) == DEFAULT_K_GRID  # large data: unchanged
    rng = np.random.default_rng(1)
    n, m = 20, 6
    X, Xd = rng.normal(size=(n, 4)), rng.normal(size=(m, 4))
    y, yd = np.arange(n) % 2, np.arange(m) % 2
    est = ExactHeadInfluence.fit(X, y, 2, l2=L2)
    top = proponents(est, Xd, 25)
    assert top.supporters_idx.shape == (m, n)
    sel = select_adjustment(est.model.predict_proba(Xd), top, y, yd, k_grid=(1, 3, 5, 10, 25))
    assert {c.k for c, _ in sel.results} == {1, 3, 5, 10, 20}
    # k = 20 is what the unclipped k = 25 would have meant: the vote of all 20 proponents
    for cfg, f in sel.results[1:]:
        labels = adjust_labels(
            est.model.predict_proba(Xd),
            top.supporters_idx,
            top.supporters_val,
            y,
            k=cfg.k,
            weighting=cfg.weighting,
            threshold=cfg.threshold,
        )
        assert macro_f1(yd, labels) == pytest.approx(f)
    # the served suggestions take the chosen k, training items without their own vote
    report = inffeed_suggestions(est, X, y, Xd, yd, Xd, yd)
    assert report.config.k <= n and report.train.influencer_idx.shape[1] <= n - 1


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(3)
    n, d, C = 150, 4, 3
    W = rng.normal(size=(C, d)) * 1.5
    X = rng.normal(size=(n, d))
    y = np.array([rng.choice(C, p=p) for p in softmax(X @ W.T, axis=1)])
    Xt = rng.normal(size=(40, d))
    return X, y, Xt, C


def test_suggest_labels_evidence_matches_direct_influence(synthetic):
    """Proponents come from influence at the predicted label, recomputed here with numpy."""
    X, y, Xt, C = synthetic
    est = ExactHeadInfluence.fit(X, y, C, l2=L2)
    head = est.model
    Z = np.hstack([X, np.ones((len(X), 1))])
    Zt = np.hstack([Xt, np.ones((len(Xt), 1))])
    P, Pt = head.predict_proba(X), head.predict_proba(Xt)
    pred = Pt.argmax(axis=1)
    H = sum(np.kron(np.diag(p) - np.outer(p, p), np.outer(z, z)) for p, z in zip(P, Z, strict=True))
    H = H / len(X) + L2 * np.eye(C * Z.shape[1])
    G = np.stack([np.kron(p - np.eye(C)[c], z) for p, z, c in zip(P, Z, y, strict=True)])
    Gt = np.stack([np.kron(p - np.eye(C)[c], z) for p, z, c in zip(Pt, Zt, pred, strict=True)])
    infl = Gt @ np.linalg.solve(H, G.T) / len(X)

    k = 4
    top = proponents(est, Xt, k)
    expected = np.argsort(-infl, axis=1)[:, :k]
    np.testing.assert_array_equal(top.supporters_idx, expected)
    np.testing.assert_allclose(top.supporters_val, np.take_along_axis(infl, expected, 1), rtol=1e-6)

    cfg = AdjustConfig(k=k, weighting="influence", threshold=0.9)
    s = suggest_labels(est, Xt, y, cfg)
    np.testing.assert_array_equal(s.predicted, pred)
    np.testing.assert_allclose(s.confidence, Pt.max(axis=1))
    np.testing.assert_array_equal(s.influencer_idx, expected)
    manual = adjust_labels(
        Pt, expected, s.influencer_val, y, k=k, weighting=cfg.weighting, threshold=cfg.threshold
    )
    np.testing.assert_array_equal(s.label, manual)
    np.testing.assert_array_equal(s.adjusted, s.label != pred)
    assert not s.adjusted[Pt.max(axis=1) >= cfg.threshold].any()


@pytest.fixture(scope="module")
def noisy_extension():
    """60 gold items plus a 240-item extension with 30% flipped labels; gold dev of 100."""
    rng = np.random.default_rng(5)
    draw = linear_sampler(rng, 6, 0.3)
    X, y_gold = draw(300)
    Xd, yd = draw(100)
    ext = np.arange(300) >= 60
    flip = ext & (rng.random(300) < 0.3)
    return X, np.where(flip, 1 - y_gold, y_gold), y_gold, ext, Xd, yd


def test_triage_rounds_reannotates_exactly_the_budget_once(noisy_extension):
    X, y_silver, y_gold, ext, Xd, yd = noisy_extension
    seen: list[np.ndarray] = []

    def adversarial(X_, y_, reviewed):
        """Prefers gold-train items and already reviewed ones, which must never be picked."""
        seen.append(reviewed.copy())
        return np.where(ext, 0.0, 10.0) + 5.0 * reviewed + np.linspace(0, 1, len(y_))

    steps = triage_rounds(
        X,
        y_silver,
        y_gold,
        ext,
        Xd,
        yd,
        ranker=adversarial,
        budget_fraction=0.1,
        rounds=3,
        l2=L2,
    )
    budget = round(0.1 * ext.sum())
    chosen = np.concatenate([s.chosen for s in steps])
    assert [s.n_reannotated for s in steps] == list(np.cumsum([len(s.chosen) for s in steps]))
    assert len(chosen) == budget == steps[-1].n_reannotated
    assert len(np.unique(chosen)) == budget
    assert ext[chosen].all()
    # The ranker saw what had been reviewed before each round.
    assert [int(r.sum()) for r in seen] == [0, *[s.n_reannotated for s in steps[:-1]]]
    labels = steps[-1].labels
    np.testing.assert_array_equal(labels[chosen], y_gold[chosen])
    rest = np.setdiff1d(np.arange(len(labels)), chosen)
    np.testing.assert_array_equal(labels[rest], y_silver[rest])
    head = fit_logistic_head(X, labels, 2, l2=L2)
    assert steps[-1].dev_f1 == pytest.approx(macro_f1(yd, head.predict_proba(Xd).argmax(1)))


def test_prune_by_ranker_drops_top_candidates_chosen_on_dev(noisy_extension):
    X, y_silver, _, ext, Xd, yd = noisy_extension
    suspicion = np.random.default_rng(0).random(len(y_silver))
    res = prune_by_ranker(
        X,
        y_silver,
        ext,
        Xd,
        yd,
        ranker=lambda *_: suspicion,
        l2=L2,
        n_classes=2,
        fractions=(0.1, 0.5),
    )
    assert set(res.dev_f1) == {0.0, 0.1, 0.5}
    assert res.dev_f1[res.fraction] == max(res.dev_f1.values())
    cand = np.nonzero(ext)[0]
    expected = cand[np.argsort(-suspicion[cand])][: round(res.fraction * len(cand))]
    np.testing.assert_array_equal(np.sort(res.dropped), np.sort(expected))
    np.testing.assert_array_equal(res.weights == 0, np.isin(np.arange(len(ext)), expected))
    head = fit_logistic_head(X[res.weights > 0], y_silver[res.weights > 0], 2, l2=L2)
    f = f1_score(yd, head.predict_proba(Xd).argmax(1), average="macro")
    assert res.dev_f1[res.fraction] == pytest.approx(f)


@pytest.fixture(scope="module")
def real_extension(demo_frame, encoder_path, tmp_path_factory):
    """200 gold train + 1500 VADER-silver extension + 300 gold dev + 500 gold test snippets."""
    perm = np.random.default_rng(0).permutation(len(demo_frame))[:2500]
    rows = demo_frame.iloc[perm]
    emb = cached_embeddings(rows.text.tolist(), encoder_path, tmp_path_factory.mktemp("emb"))
    gold = rows.label.map(LABELS).to_numpy()
    silver = rows.silver_label.map(LABELS).to_numpy()
    ext = np.arange(1700) >= 200
    return {
        "X": emb[:1700],
        "y_silver": np.where(ext, silver[:1700], gold[:1700]),
        "y_gold": gold[:1700],
        "ext": ext,
        "X_dev": emb[1700:2000],
        "y_dev": gold[1700:2000],
        "X_test": emb[2000:],
        "y_test": gold[2000:],
    }


REAL_L2 = 1e-3


def test_real_extension_triage_and_adjustment(real_extension):
    r = real_extension
    X, ys, yg, ext, Xd, yd, Xt, yt = (
        r[k] for k in ("X", "y_silver", "y_gold", "ext", "X_dev", "y_dev", "X_test", "y_test")
    )

    def test_f1(labels):
        head = fit_logistic_head(X, labels, 2, l2=REAL_L2)
        return macro_f1(yt, head.predict_proba(Xt).argmax(1)), head

    silver_test, silver_head = test_f1(ys)
    silver_dev = macro_f1(yd, silver_head.predict_proba(Xd).argmax(1))
    gold_test, _ = test_f1(yg)
    rankers = {
        "influence": influence_ranker(Xd, yd, 2, l2=REAL_L2, gold_rows=~ext),
        "loss": loss_ranker(2, l2=REAL_L2),
        "cleanlab": cleanlab_ranker(2, l2_grid=(1e-2, 1e-3)),
        "random": random_ranker(0),
    }
    print(f"\nnoise in extension {(ys != yg)[ext].mean():.3f}")
    print(f"all-silver dev={silver_dev:.4f} test={silver_test:.4f}  all-gold test={gold_test:.4f}")
    out = {}
    for name, ranker in rankers.items():
        step = triage_rounds(
            X, ys, yg, ext, Xd, yd, ranker=ranker, budget_fraction=0.05, rounds=1, l2=REAL_L2
        )[-1]
        wrong = (ys != yg)[step.chosen].mean()
        out[name] = (step.dev_f1, test_f1(step.labels)[0])
        print(
            f"5% by {name:9s}: wrong among chosen={wrong:.2f} dev={out[name][0]:.4f} "
            f"test={out[name][1]:.4f}"
        )
    # What holds on this data: influence on the gold dev loss picks items whose correction
    # raises dev F1 over the all-silver model, and more than random re-annotation does.
    assert out["influence"][0] >= silver_dev
    assert out["influence"][0] >= out["random"][0]

    # Objective 1 on the all-silver model: chosen on dev only, then applied to test.
    est = ExactHeadInfluence(silver_head, X, ys, l2=REAL_L2)
    sel = select_adjustment(silver_head.predict_proba(Xd), proponents(est, Xd, 50), ys, yd)
    sug = suggest_labels(est, Xt, ys, sel.config)
    print(
        f"InfFeed adjustment {sel.config}: dev {sel.dev_f1_before:.4f} -> "
        f"{sel.dev_f1_after:.4f}; test {macro_f1(yt, sug.predicted):.4f} -> "
        f"{macro_f1(yt, sug.label):.4f} ({sug.adjusted.sum()} of {len(yt)} changed)"
    )
    assert sel.dev_f1_after >= sel.dev_f1_before
    assert macro_f1(yt, sug.predicted) == pytest.approx(silver_test)


def test_influence_ranker_targets_dev_gold_and_reviewed_rows(noisy_extension):
    """Gold rows from the start and rows reviewed since are targets beside dev, the same
    targets ``score_training_set`` takes in the product."""
    X, y, _, ext, Xd, yd = noisy_extension
    reviewed = np.zeros(len(y), dtype=bool)
    reviewed[np.nonzero(ext)[0][:10]] = True
    gold = ~ext | reviewed
    ranked = influence_ranker(Xd, yd, 2, l2=L2, gold_rows=~ext)(X, y, reviewed)
    est = ExactHeadInfluence.fit(X, y, 2, l2=L2)
    targets = np.concatenate([Xd, X[gold]]), np.concatenate([yd, y[gold]])
    np.testing.assert_allclose(ranked, -est.dev_influence(*targets), rtol=1e-8, atol=1e-15)
    dev_only = influence_ranker(Xd, yd, 2, l2=L2)(X, y, np.zeros(len(y), dtype=bool))
    assert not np.allclose(ranked, dev_only)


def test_binary_dev_influence_is_expected_gain_of_relabelling(noisy_extension):
    """-dev influence / p(other) predicts the dev-loss drop of flipping the label (checked by
    retraining with each label flipped), which is what influence_ranker relies on."""
    X, y, _, ext, Xd, yd = noisy_extension
    est = ExactHeadInfluence.fit(X, y, 2, l2=L2)
    head = est.model
    gain = influence_ranker(Xd, yd, 2, l2=L2)(X, y, np.zeros(len(y), bool))
    np.testing.assert_allclose(gain, -est.dev_influence(Xd, yd))
    p_other = 1 - head.predict_proba(X)[np.arange(len(y)), y]
    items = np.nonzero(ext)[0][:40]
    base = head.log_loss(Xd, yd).mean()
    actual = []
    for j in items:
        flipped = y.copy()
        flipped[j] = 1 - y[j]
        h = fit_logistic_head(X, flipped, 2, l2=L2, init=head)
        actual.append(base - h.log_loss(Xd, yd).mean())
    predicted = gain[items] / p_other[items]
    rho = spearmanr(predicted, actual)[0]
    print(f"\nspearman(predicted, actual relabel gain) = {rho:.4f}")
    assert rho > 0.95
    clear = np.abs(predicted) >= np.median(np.abs(predicted))
    np.testing.assert_array_equal(np.sign(predicted[clear]), np.sign(np.array(actual)[clear]))
