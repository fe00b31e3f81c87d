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
    kind: str  # influence | baseline
    description: str
    task: TaskKind = TaskKind.text_classification  # the kind of project it ranks


ESTIMATORS: dict[str, EstimatorInfo] = {
    e.name: e
    for e in (
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
            "Cox influence on the gold dev records (Assay's default)",
            "influence",
            "Versatile influence of each record on the gold dev records' Cox partial "
            "likelihood (Deng et al., 2025): records whose removal would fit the dev set "
            "better first. Used when the project has gold dev records.",
            TaskKind.survival,
        ),
        EstimatorInfo(
            "cox_self",
            "Cox self-influence",
            "influence",
            "Versatile self-influence of each record on the Cox partial likelihood: the "
            "records the model finds hardest to fit first. Used without a gold dev set.",
            TaskKind.survival,
        ),
        EstimatorInfo(
            "vif_dev_harm+residual",
            "Judgment influence on the gold dev queries, with the grade residual (Assay's "
            "default)",
            "influence",
            "Fused ranks of each judgment's harm to the gold dev queries' listwise loss "
            "(Versatile Influence Function, Deng et al., 2025) and its grade residual (its "
            "grade against the grade its model rank expects). Used when the project has gold "
            "dev judgments.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "vif_self_influence+residual",
            "Judgment self-influence, with the grade residual",
            "influence",
            "Fused ranks of each judgment's VIF self-influence (how far the ranker bends to "
            "fit it) and its grade residual. Used without gold dev judgments.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "vif_dev_harm",
            "Judgment influence on the gold dev queries",
            "influence",
            "VIF's predicted change of the gold dev queries' listwise loss without the judgment.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "vif_self_influence",
            "Judgment self-influence",
            "influence",
            "VIF self-influence of each judgment on the listwise loss.",
            TaskKind.ranking,
        ),
        EstimatorInfo(
            "grade_residual",
            "Grade residual",
            "baseline",
            "The grade against the grade the model's order expects at its rank in the query.",
            TaskKind.ranking,
        ),
    )
}

# The registry's names as an enum, so the API's documents list them (clients get a type).
Estimator = StrEnum("Estimator", {name: name for name in ESTIMATORS})
