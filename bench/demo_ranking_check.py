"""Does influence ranking find VADER's wrong labels in the bundled Rotten Tomatoes demo?

Splits the bundled file the way the demo does (seeded permutation): a small gold training set,
an extension set carrying the VADER silver labels, a gold dev set, and the rest as test. The head
is trained on gold-train + silver-extension, and only extension items are ranked by the
engine's suspicion (-dev_influence). Gold labels of the extension are used only to measure.

Acceptance: the share of wrong silver labels among the top-100 extension items must be at least
twice the share in the whole extension. Exit status 1 when it is not.

    python bench/demo_ranking_check.py [--gold 1000 --ext 8000 --dev 1000 --l2 1e-3 --seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from workers.engine import cached_embeddings, default_encoder_path, score_training_set

DATA = Path(__file__).resolve().parents[1] / "app" / "demo_data" / "rotten_tomatoes_silver.csv.gz"
LABELS = {"rotten": 0, "fresh": 1}


def top_share(scores: np.ndarray, wrong: np.ndarray, top: int) -> float:
    """Share of wrong labels among the ``top`` highest scores (ties broken by position)."""
    order = np.argsort(-scores, kind="stable")[:top]
    return float(wrong[order].mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", type=int, default=1000, help="gold-labelled training rows")
    ap.add_argument("--ext", type=int, default=8000, help="silver-labelled extension rows")
    ap.add_argument("--dev", type=int, default=1000, help="gold dev rows")
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--device", default=None)
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "assay-bench-embeddings",
    )
    args = ap.parse_args()

    frame = pd.read_csv(DATA, keep_default_na=False)
    gold = frame.label.map(LABELS).to_numpy()
    silver = frame.silver_label.map(LABELS).to_numpy()

    t0 = time.perf_counter()
    emb = cached_embeddings(
        frame.text.tolist(), default_encoder_path(), args.cache_dir, device=args.device
    )
    t_embed = time.perf_counter() - t0

    perm = np.random.default_rng(args.seed).permutation(len(frame))
    cuts = np.cumsum([args.gold, args.ext, args.dev])
    g_idx, e_idx, d_idx, t_idx = np.split(perm, cuts)
    X = emb[np.concatenate([g_idx, e_idx])]
    y = np.concatenate([gold[g_idx], silver[e_idx]])

    t0 = time.perf_counter()
    res = score_training_set(
        X, y, 2, X_dev=emb[d_idx], y_dev=gold[d_idx], l2=args.l2, k=3, device=args.device
    )
    t_score = time.perf_counter() - t0

    ext = slice(args.gold, args.gold + args.ext)
    wrong = silver[e_idx] != gold[e_idx]
    base = float(wrong.mean())
    chosen = top_share(res.suspicion[ext], wrong, args.top)
    test_acc = float((res.head.predict_proba(emb[t_idx]).argmax(1) == gold[t_idx]).mean())

    print(
        f"split: gold-train={len(g_idx)} extension={len(e_idx)} dev={len(d_idx)} "
        f"test={len(t_idx)} seed={args.seed} l2={args.l2:g}"
    )
    print(f"timing: embed {len(frame)} texts {t_embed:.1f}s (cached runs skip the encoder)")
    print(f"        score {len(y)} items incl. top-3 evidence {t_score:.1f}s")
    print(f"head test accuracy (gold): {test_acc:.3f}")
    print(f"wrong-silver share, whole extension:           {base:.3f}")
    print(
        f"wrong-silver share, top-{args.top} by -dev_influence: {chosen:.3f}  "
        f"({chosen / base:.2f}x)"
    )
    print("for comparison (not the demo's ranking):")
    for name, scores in (("self_influence", res.self_influence), ("training loss", res.loss)):
        print(f"  top-{args.top} by {name}: {top_share(scores[ext], wrong, args.top):.3f}")
    ok = chosen >= 2 * base
    print("PASS" if ok else "FAIL", f"(need >= {2 * base:.3f})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
