"""The rankings a project can use, by name. The web process lists them without importing the
engine (and torch); a test keeps this list and the engine's registry the same."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.kinds import TaskKind


@dataclass(frozen=True)
class EstimatorInfo:
    name: str
    title: str
    kind: str  # influence | baseline | policy (serves one of the others, chosen per run)
    description: str
    task: TaskKind = TaskKind.text_classification  # the kind of project it ranks


ESTIMATORS: dict[str, EstimatorInfo] = {
    e.name: e
    for e in (
        EstimatorInfo(
            "noise_check",
            "Influence on gold dev or cleanlab, by a noise check (Assay's default)",
            "policy",
            "Checks whether the silver labels' errors follow a pattern (refitting without "
            "influence's top 10% helps the held-out gold dev loss clearly more than refitting "
            "without cleanlab's) or look random; serves exact influence on the gold dev set "
            "for the first (weighted into the expected gain of re-annotating each item by a "
            "head trained on the gold rows), tuned cleanlab for the second, and cleanlab "
            "without a gold dev "
            "set; with ASSAY_FINETUNE on (by default on a GPU), cleanlab on the encoder "
            "fine-tuned in folds instead. The project page says which, and why.",
        ),
        EstimatorInfo(
            "exact_head",
            "Exact influence (head)",
            "influence",
            "Inverse Hessian of the convex head on frozen embeddings: exact, fast.",
        ),
        EstimatorInfo(
            "tracin",
            "TracIn",
            "influence",
            "Gradient dot products summed over training checkpoints.",
        ),
        EstimatorInfo(
            "turnover_dropout",
            "Turn-over dropout",
            "influence",
            "Each item trains its own dropout sub-network; influence without "
            "gradients or Hessians afterwards.",
        ),
        EstimatorInfo(
            "ihvp",
            "Fine-tuned encoder, inverse-HVP influence",
            "influence",
            "Fine-tunes the encoder's top layers with the head; exact Gauss-Newton "
            "inverse over them. Slow on CPU; about a thousand items per run.",
        ),
        EstimatorInfo(
            "tracin_finetuned",
            "Fine-tuned encoder, TracIn",
            "influence",
            "Fine-tunes the whole encoder with the head and sums last-layer gradient "
            "products over its epochs. The best detector of random label errors measured; "
            "minutes per thousand items on a CPU.",
        ),
        EstimatorInfo("loss", "Training loss", "baseline", "Items the model fits worst first."),
        EstimatorInfo(
            "margin",
            "Margin",
            "baseline",
            "Items whose label the model most prefers another class over.",
        ),
        EstimatorInfo(
            "cleanlab",
            "cleanlab",
            "baseline",
            "Label quality from cross-validated probabilities (confident learning).",
        ),
        EstimatorInfo(
            "segment_dev",
            "Segment influence on the gold dev set (Assay's default)",
            "influence",
            "Spans whose string the gold dev set or the other training spans type otherwise "
            "first; then the fused ranks of the span's loss and the summed influence on the "
            "dev loss (Jain et al., 2022) of every span with its string and type, so an error "
            "made everywhere shows. Used when the project has gold dev sentences.",
            TaskKind.sequence_tagging,
        ),
        EstimatorInfo(
            "segment_self",
            "Segment self-influence",
            "influence",
            "Exact self-influence of each span's labels on the tagging head: the spans the "
            "model finds hardest to fit first. Used without a gold dev set.",
            TaskKind.sequence_tagging,
        ),
        EstimatorInfo(
            "cox_dev",
            "Cox self-influence fused with the deviance residual, with influence on the gold "
            "dev records (Assay's default)",
            "influence",
            "Orders the records by the reciprocal-rank fusion of their VIF self-influence on "
            "the Cox partial likelihood (how far the fit bends to each; Versatile Influence "
            "Function, Deng et al., 2025) and their |deviance residual| (how badly the model "
            "fits them): the best mean over rossi and gbsg2 at 10% inspected "
            "(bench.vif_survival). Each record's influence is the predicted change of the gold "
            "dev records' partial likelihood loss without it. Used when the project has gold "
            "dev records.",
            TaskKind.survival,
        ),
        EstimatorInfo(
            "cox_self",
            "Cox self-influence, fused with the deviance residual",
            "influence",
            "The same order as the default: reciprocal-rank fusion of the records' VIF "
            "self-influence on the Cox partial likelihood and their |deviance residual|; no "
            "dev influence. Used without a gold dev set.",
            TaskKind.survival,
        ),
        EstimatorInfo(
            "grade_gap|pointwise_residual",
            "Grade gap, ties by the pointwise residual (Assay's default)",
            "baseline",
            "Judgments whose grade is furthest from the grade the ranker's order expects at "
            "their place in the query first; within one gap, those a ridge regression of the "
            "grade on the features misses most. The best measured at 10% inspected on the "
            "MSLR sample with flipped grades (bench.vif_ranking_detection).",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "vif_dev_harm",
            "Judgment influence on the gold dev queries",
            "influence",
            "VIF's predicted change of the gold dev queries' listwise loss without the judgment "
            "(Versatile Influence Function, Deng et al., 2025): the most harmful first.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "vif_self_influence",
            "Judgment self-influence",
            "influence",
            "VIF self-influence of each judgment on the listwise loss: the judgments the "
            "ranker bends furthest to fit first.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "vif_dev_harm+gap",
            "Dev influence fused with the grade gap",
            "influence",
            "Reciprocal-rank fusion of the harm to the gold dev queries and the grade gap.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "grade_gap|vif_dev_harm",
            "Grade gap, ties by dev influence",
            "influence",
            "Tiers by grade gap; within one, the most harmful to the gold dev queries first.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "grade_gap|vif_self_influence",
            "Grade gap, ties by self-influence",
            "influence",
            "Tiers by grade gap; within one, the highest VIF self-influence first.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "grade_gap",
            "Grade gap",
            "baseline",
            "The grade against the grade the ranker's order expects at its rank in the query.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "pointwise_residual",
            "Pointwise residual",
            "baseline",
            "The grade against a ridge regression's prediction of it from the features.",
            TaskKind.ranking,
        ),
    )
}

# The registry's names as an enum, so the API's documents list them (clients get a type).
Estimator = StrEnum("Estimator", {name: name for name in ESTIMATORS})
