"""Last-layer TracIn over fine-tuning checkpoints, against autograd and a one-epoch rerun."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from tests.engine.conftest import LABELS
from workers.engine.estimators import ESTIMATORS, TEXT_ESTIMATORS, FineTunedTracIn
from workers.engine.finetune import fit_finetuned_classifier
from workers.engine.scoring import score_training_set

KW = {"max_length": 48, "batch_size": 8, "lr": 1e-4, "train_layers": 1, "seed": 2}
L2 = 1e-3


@pytest.fixture(scope="module")
def data(demo_frame) -> dict:
    rows = demo_frame.iloc[np.random.default_rng(11).permutation(len(demo_frame))[:60]]
    texts = np.asarray(rows.text.tolist(), dtype=object)
    y = rows.label.map(LABELS).to_numpy()
    return {"texts": texts[:40], "y": y[:40], "dev_texts": texts[40:], "dev_y": y[40:]}


@pytest.fixture(scope="module")
def est(data, encoder_path) -> FineTunedTracIn:
    return FineTunedTracIn.fit(
        data["texts"], data["y"], 2, l2=L2, epochs=2, encoder_path=encoder_path, device="cpu", **KW
    )


def _autograd_last_layer(checkpoint, texts, y) -> np.ndarray:
    """Per-example ∇ of the cross-entropy w.r.t. the head's weight and bias, by autograd."""
    head = checkpoint._top.head
    rows = []
    for text, label in zip(texts, y, strict=True):
        z, _ = checkpoint.head_inputs_and_logits([text])
        W = head.weight.detach().double().clone().requires_grad_(True)
        b = head.bias.detach().double().clone().requires_grad_(True)
        logits = z.double() @ W.T + b
        torch.nn.functional.cross_entropy(logits, torch.tensor([int(label)])).backward()
        rows.append(torch.cat([W.grad, b.grad[:, None]], dim=1).reshape(-1).numpy())
    return np.array(rows)


def test_gradients_are_the_scaled_autograd_head_gradients_at_every_checkpoint(est, data):
    texts, y = list(data["dev_texts"][:6]), data["dev_y"][:6]
    got = est.gradients(texts, y).numpy()
    scale = np.sqrt(est.model.config.lr / est.n)
    want = np.concatenate(
        [_autograd_last_layer(c, texts, y) for c in est.model.checkpoints], axis=1
    )
    assert len(est.model.checkpoints) == 2 and est.model.checkpoints[-1] is est.model
    np.testing.assert_allclose(got, scale * want, rtol=1e-5, atol=1e-9)


def test_first_checkpoint_is_the_one_epoch_model(est, data, encoder_path):
    """Seeded batches: the 2-epoch run's first epoch is exactly a 1-epoch run."""
    one = fit_finetuned_classifier(
        list(data["texts"]),
        data["y"],
        2,
        l2=L2,
        epochs=1,
        encoder_path=encoder_path,
        device="cpu",
        **KW,
    )
    texts = list(data["dev_texts"])
    np.testing.assert_allclose(
        est.model.checkpoints[0].predict_proba(texts), one.predict_proba(texts), atol=1e-6
    )
    assert not np.allclose(est.model.predict_proba(texts), one.predict_proba(texts), atol=1e-4)


def test_self_dev_and_matrix_agree(est, data):
    matrix = np.concatenate([b for _, b in est.influence(data["texts"], data["y"])])
    np.testing.assert_allclose(np.diag(matrix), est.self_influence(), rtol=1e-10)
    dev_matrix = np.concatenate([b for _, b in est.influence(data["dev_texts"], data["dev_y"])])
    np.testing.assert_allclose(
        est.dev_influence(data["dev_texts"], data["dev_y"]), dev_matrix.mean(0), rtol=1e-8
    )
    top = est.top_k(data["texts"], data["y"], 2, exclude_self=np.arange(est.n))
    masked = matrix.copy()
    np.fill_diagonal(masked, -np.inf)
    np.testing.assert_array_equal(top.supporters_idx[:, 0], masked.argmax(1))


def test_selectable_by_name_with_texts_and_finds_flipped_labels(demo_frame, encoder_path):
    assert "tracin_finetuned" in ESTIMATORS and "tracin_finetuned" in TEXT_ESTIMATORS
    rows = demo_frame.iloc[np.random.default_rng(4).permutation(len(demo_frame))[:160]]
    y_true = rows.label.map(LABELS).to_numpy()
    flipped = np.zeros(len(y_true), dtype=bool)
    flipped[np.random.default_rng(0).choice(len(y_true), 16, replace=False)] = True
    y = np.where(flipped, 1 - y_true, y_true)
    result = score_training_set(
        np.asarray(rows.text.tolist(), dtype=object),
        y,
        2,
        l2=L2,
        k=1,
        estimator="tracin_finetuned",
        seed=KW["seed"],
        options={**{k: v for k, v in KW.items() if k != "seed"}, "encoder_path": encoder_path},
        device="cpu",
    )
    assert result.estimator == "tracin_finetuned"
    assert roc_auc_score(flipped, result.suspicion) > 0.6  # chance is 0.5; measured 0.67
