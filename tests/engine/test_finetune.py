"""The fine-tuned encoder + head: its frozen path, its objective, seeding and sample weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine.conftest import LABELS
from workers.engine.embeddings import embed_texts
from workers.engine.finetune import fit_finetuned_classifier
from workers.engine.head import fit_logistic_head

L2 = 1e-2
KW = {"max_length": 48, "batch_size": 8, "l2": L2, "device": "cpu"}


@pytest.fixture(scope="module")
def data(demo_frame) -> dict:
    rows = demo_frame.iloc[np.random.default_rng(3).permutation(len(demo_frame))[:48]]
    return {"texts": rows.text.tolist(), "y": rows.silver_label.map(LABELS).to_numpy()}


@pytest.fixture(scope="module")
def tuned(data, encoder_path):
    fractions: list[float] = []
    clf = fit_finetuned_classifier(
        data["texts"],
        data["y"],
        2,
        encoder_path=encoder_path,
        train_layers=1,
        epochs=2,
        lr=2e-4,
        seed=5,
        progress=fractions.append,
        **KW,
    )
    return clf, fractions


def test_head_only_without_epochs_is_the_linear_probe_on_sentence_embeddings(data, encoder_path):
    """The cached frozen path (embeddings, layers, pooling) against ``embed_texts`` (AutoModel
    forward with SDPA attention), and the head against ``fit_logistic_head``."""
    clf = fit_finetuned_classifier(
        data["texts"], data["y"], 2, encoder_path=encoder_path, train_layers=0, epochs=0, **KW
    )
    X = embed_texts(data["texts"], encoder_path, device="cpu", max_length=48)
    head = fit_logistic_head(X, data["y"], 2, l2=L2, device="cpu")
    np.testing.assert_allclose(clf.predict_proba(data["texts"]), head.predict_proba(X), atol=1e-4)
    assert list(clf.parameters()) == ["head.weight", "head.bias"]


def test_trains_only_the_top_layers_and_lowers_the_objective(data, tuned, encoder_path):
    clf, fractions = tuned
    names = list(clf.parameters())
    assert all(n.startswith(("layers.0.", "head.")) for n in names)
    layer_params = sum(v.numel() for k, v in clf.parameters().items() if k.startswith("layers."))
    assert layer_params == 1_774_464  # one MiniLM layer: attention 4·(384²+384), FFN, 2 norms
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 12

    probe = fit_finetuned_classifier(
        data["texts"], data["y"], 2, encoder_path=encoder_path, train_layers=1, epochs=0, **KW
    )
    texts, y = data["texts"], data["y"]
    assert clf.log_loss(texts, y).mean() < probe.log_loss(texts, y).mean() - 0.05
    changed = [k for k, v in clf.parameters().items() if not torch.equal(v, probe.parameters()[k])]
    assert set(changed) == set(names)
    np.testing.assert_allclose(
        clf.log_loss(texts, y),
        -np.log(clf.predict_proba(texts)[np.arange(len(y)), y]),
        rtol=1e-6,
    )


def test_same_seed_same_model_and_zero_weight_removes_the_item(data, tuned):
    clf, _ = tuned
    texts, y = data["texts"], data["y"]
    again = clf.retrained(texts, y)
    for k, v in clf.parameters().items():
        assert torch.equal(v, again.parameters()[k]), k

    w = np.ones(len(y))
    w[7] = 0.0
    flipped = y.copy()
    flipped[7] = 1 - flipped[7]
    a = clf.retrained(texts, y, sample_weight=w)
    b = clf.retrained(texts, flipped, sample_weight=w)
    np.testing.assert_array_equal(a.predict_proba(texts), b.predict_proba(texts))
    assert not np.array_equal(a.predict_proba(texts), clf.predict_proba(texts))


def test_all_layers_and_bad_layer_counts(data, encoder_path):
    clf = fit_finetuned_classifier(
        data["texts"][:8],
        data["y"][:8],
        2,
        encoder_path=encoder_path,
        train_layers="all",
        epochs=1,
        **KW,
    )
    assert {k.split(".")[1] for k in clf.parameters() if k.startswith("layers.")} == {
        str(i) for i in range(6)
    }
    with pytest.raises(ValueError, match="train_layers"):
        fit_finetuned_classifier(
            data["texts"][:8], data["y"][:8], 2, encoder_path=encoder_path, train_layers=7, **KW
        )
