"""VIF for the Cox model on rossi and gbsg2: fidelity, speed and detection of injected errors.

Fidelity and speed (one run, one split per data set: 70% training records, 30% gold dev):
every training record's predicted change of the dev loss (VIF as built: closed-form removal
gradients, Hessian and curvature factors, the leverage-corrected step, second order in the dev
loss) against refitting without it (brute force, Newton from zero), beside the paper's first
order, lifelines' dfbeta estimate (``CoxPHFitter.compute_residuals(..., "delta_beta")``, its
Efron fit on the same standardised covariates and penalty: predicted change = -grad f .
dfbeta_i, since lifelines' dfbeta is beta - beta_without_i) and two other refinements (the dev
loss evaluated at the first-order parameters; one Newton step with the Hessian without the
record, the dev loss evaluated there); wall time of VIF, of the paper's per-unit loop (one
autograd pass per left-out record, then the same steps) and of brute force.

Detection: 10% of the training records corrupted (half the event indicator swapped, half the
duration multiplied or divided by 4 within the observed range); the share of corrupted
records found in the top 5/10/20% of each suspicion ranking, mean over seeds. History of the
default: first chosen on seeds 0-4 (|deviance residual|), reported on seeds 100-109, where
self-influence fused with the deviance residual found more on both data sets; those seeds had
then been looked at, so the choice is now made on all 15 seen seeds (SELECTION_SEEDS: the best
mean at 10% inspected over both data sets) and reported on seeds 200-219 (REPORT_SEEDS), which
nobody looked at before.

    python -m bench.vif_survival   # writes bench/results/vif_survival*.md and vif_survival.png
    python -m bench.vif_survival --part detection   # only the two detection tables
    python -m bench.vif_survival --part fidelity    # only fidelity, speed and the PNG
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from scipy.stats import pearsonr, spearmanr

from bench.common import RESULTS, figure, machine, write_table
from workers.engine.covariates import fit_covariates
from workers.engine.cox import (
    DEFAULT_ESTIMATOR,
    SurvivalData,
    SurvivalEstimator,
    cox_loss,
    derivatives_for,
    fit_cox,
    residuals,
    suspicion_scores,
)
from workers.engine.vif import VIF, leave_one_out, removal_gradients_loop

DATA = RESULTS.parent.parent / "app" / "demo_data"
SETS = {"rossi": ("week", "arrest"), "gbsg2": ("time", "cens")}
PENALTY, DEV_SHARE, CORRUPT, FACTOR = 0.01, 0.3, 0.1, 4.0
SHARES = (0.05, 0.10, 0.20)
SELECTION_SEEDS = (*range(5), *range(100, 110))  # every seed seen so far
REPORT_SEEDS = tuple(range(200, 220))  # fresh: not looked at before the choice
BOTH = "mean of both"

Split = tuple[np.ndarray, np.ndarray, np.ndarray]  # covariates, durations, events


def split(name: str, seed: int) -> tuple[Split, Split]:
    """(train, dev) of a seeded permutation, covariates encoded on the training rows."""
    frame = pd.read_csv(DATA / f"{name}.csv")
    duration, event = SETS[name]
    columns = [c for c in frame.columns if c not in (duration, event)]
    order = np.random.default_rng(seed).permutation(len(frame))
    n_dev = int(DEV_SHARE * len(frame))
    train, dev = frame.iloc[order[n_dev:]], frame.iloc[order[:n_dev]]
    x, _, transform = fit_covariates(train, columns)

    def outcome(part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return part[duration].to_numpy(float), part[event].to_numpy(float)

    return (x, *outcome(train)), (transform.transform(dev), *outcome(dev))


def corrupt(t: np.ndarray, e: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Durations, events and the corrupted mask: half the picked records get the event
    indicator swapped, half a duration x4 or /4 (within the observed range)."""
    rng = np.random.default_rng(seed + 10_000)
    picked = rng.choice(len(t), round(CORRUPT * len(t)), replace=False)
    swap, shift = picked[: len(picked) // 2], picked[len(picked) // 2 :]
    t, e = t.copy(), e.copy()
    e[swap] = 1.0 - e[swap]
    # x4 or /4 at random, /4 where x4 would pass the longest follow-up (so that the clip to the
    # observed range never leaves a record, e.g. one censored at the study's end, unchanged)
    up = (rng.random(len(shift)) < 0.5) & (t[shift] * FACTOR <= t.max())
    t[shift] = np.clip(t[shift] * np.where(up, FACTOR, 1.0 / FACTOR), t.min(), t.max())
    mask = np.zeros(len(t), dtype=bool)
    mask[picked] = True
    return t, e, mask


def recall_at(suspicion: np.ndarray, mask: np.ndarray, share: float) -> float:
    top = np.argsort(-suspicion, kind="stable")[: round(share * len(mask))]
    return float(mask[top].sum() / mask.sum())


def dev_target(dev: Split, device: torch.device):
    data = SurvivalData.build(*dev, device=device)
    loss = cox_loss(data, 0.0)
    ones = torch.ones(data.n, dtype=torch.float64, device=device)
    return lambda theta: loss(theta, ones)


def dev_derivatives(dev: Split, device: torch.device):
    """theta -> (gradient, Hessian) of the dev loss, closed form (what score_survival uses)."""
    data = SurvivalData.build(*dev, device=device)
    derivatives = derivatives_for(data, 0.0, "breslow")
    ones = torch.ones(data.n, dtype=torch.float64, device=device)
    return lambda theta: derivatives(theta, ones)[1:]


def detection(seeds: Sequence[int]) -> dict[tuple[str, str], np.ndarray]:
    """(data set, estimator) -> recall at SHARES, mean over seeds; (BOTH, estimator): the mean
    of the data sets' means."""
    out: dict[tuple[str, str], list[list[float]]] = {}
    for name in SETS:
        for seed in seeds:
            (x, t, e), dev = split(name, seed)
            t, e, mask = corrupt(t, e, seed)
            data = SurvivalData.build(x, t, e)
            fit = fit_cox(data, penalty=PENALTY)
            vif = VIF.fit(fit.objective(), fit.theta)
            dev_grad, dev_hess = dev_derivatives(dev, data.x.device)(fit.theta)
            influence = data.unsort(torch.as_tensor(vif.influence(dev_grad, dev_hess)))
            self_inf = data.unsort(torch.as_tensor(vif.self_influence()))
            scores = suspicion_scores(influence, self_inf, residuals(fit))
            for estimator, suspicion in scores.items():
                recalls = [recall_at(suspicion, mask, s) for s in SHARES]
                out.setdefault((name, str(estimator)), []).append(recalls)
    result = {key: np.mean(v, axis=0) for key, v in out.items()}
    for estimator in {e for _, e in result}:
        result[BOTH, estimator] = np.mean([result[name, estimator] for name in SETS], axis=0)
    return result


def seed_spans(seeds: Sequence[int]) -> str:
    """'0-4, 100-109' for the seeds 0..4 and 100..109."""
    spans: list[list[int]] = []
    for seed in sorted(seeds):
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in spans)


def best_at_10(result: dict[tuple[str, str], np.ndarray]) -> str:
    """The estimator with the highest mean share found at 10% inspected over both data sets."""
    return max((e for d, e in result if d == BOTH), key=lambda e: result[BOTH, e][1])


def versus_baselines(result: dict[tuple[str, str], np.ndarray]) -> str:
    """The default's share found at 10% beside the two residual baselines', per data set."""
    baselines = (SurvivalEstimator.DEVIANCE, SurvivalEstimator.MARTINGALE)
    return "; ".join(
        f"{name} {result[name, DEFAULT_ESTIMATOR][1]:.3f} vs "
        + " / ".join(f"{result[name, b][1]:.3f}" for b in baselines)
        for name in (*SETS, BOTH)
    )


def detection_table(name: str, seeds: Sequence[int], title: str, history: str) -> dict:
    result = detection(seeds)
    order = {d: i for i, d in enumerate((*sorted(SETS), BOTH))}
    rows = [
        [data_set, estimator + (" (default)" if estimator == DEFAULT_ESTIMATOR else ""), *r]
        for (data_set, estimator), r in sorted(
            result.items(), key=lambda kv: (order[kv[0][0]], -kv[1][1], kv[0][1])
        )
    ]
    rows += [[data_set, "random", *SHARES] for data_set in order]
    write_table(
        name,
        title,
        ["data set", "ranking", *(f"found at {s:.0%}" for s in SHARES)],
        rows,
        f"Share of the corrupted training records (10%: half with the event indicator swapped, "
        f"half with the duration x{FACTOR:g} or /{FACTOR:g} within the observed range) among "
        f"the top 5/10/20% of each ranking; 70/30 train/dev splits, {len(seeds)} seeds "
        f"({seed_spans(seeds)}), mean; {BOTH}: the mean of the two data sets' means. "
        f"Best at 10% over both data sets here: `{best_at_10(result)}`. At 10%, the default "
        f"against `deviance_residual` / `martingale_residual`: {versus_baselines(result)}. "
        f"{history} "
        f"Penalty {PENALTY}, Breslow ties; random finds the share inspected. {machine()}. "
        "Reproduce: `python -m bench.vif_survival --part detection`.",
    )
    return result


def detection_tables() -> None:
    """Choose on the seen seeds, report on the fresh ones."""
    history = (
        "History: the default was first chosen on seeds 0-4 (`deviance_residual`) and "
        "reported on seeds 100-109; once those had been seen it was revised to the best at 10% "
        f"over both data sets on all {len(SELECTION_SEEDS)} seen seeds "
        f"({seed_spans(SELECTION_SEEDS)}): `{DEFAULT_ESTIMATOR}`, reported on seeds "
        f"{seed_spans(REPORT_SEEDS)}, which nobody looked at before the choice."
    )
    chosen = best_at_10(
        detection_table(
            "vif_survival_selection",
            SELECTION_SEEDS,
            "Survival: detection on the selection seeds (every seed seen; used to choose the "
            "default)",
            history,
        )
    )
    if chosen != DEFAULT_ESTIMATOR:
        print(f"warning: the best on the selection seeds is {chosen}, not {DEFAULT_ESTIMATOR}")
    detection_table(
        "vif_survival_detection",
        REPORT_SEEDS,
        "Survival: detection of injected errors (fresh report seeds)",
        history,
    )


def best_of(fn, repeats: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def lifelines_prediction(train: Split, grad_f: np.ndarray) -> np.ndarray:
    """-grad f . dfbeta_i from lifelines' fit on the same covariates (already standardised
    with ddof=1, so lifelines' own standardisation leaves them as they are) and penalty."""
    from lifelines import CoxPHFitter

    x, t, e = train
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])]).assign(T=t, E=e)
    cph = CoxPHFitter(penalizer=PENALTY).fit(frame, "T", "E")
    dfbeta = cph.compute_residuals(frame, "delta_beta").sort_index().to_numpy()
    return -dfbeta @ grad_f


def fidelity_and_speed(name: str) -> tuple[list, list, tuple[np.ndarray, np.ndarray]]:
    train, dev = split(name, 0)
    data = SurvivalData.build(*train)
    fit = fit_cox(data, penalty=PENALTY)
    objective = fit.objective()
    first_order = replace(objective, removal_curvature=None)  # the paper's estimate
    target = dev_target(dev, data.x.device)
    derivatives = dev_derivatives(dev, data.x.device)

    def built() -> np.ndarray:
        return VIF.fit(objective, fit.theta).influence(*derivatives(fit.theta))

    def loop() -> np.ndarray:
        vif = VIF.fit(objective, fit.theta)
        looped = replace(vif, D=removal_gradients_loop(objective, fit.theta))
        return looped.influence(*derivatives(fit.theta))

    def paper_first_order() -> np.ndarray:
        return VIF.fit(first_order, fit.theta).influence(derivatives(fit.theta)[0])

    built()  # warm-up
    t_vif, predicted = best_of(built, 50)
    ones = torch.ones(data.n, dtype=torch.float64, device=data.x.device)
    evaluate = derivatives_for(data, PENALTY, "breslow")
    t_eval, _ = best_of(lambda: evaluate(fit.theta, ones), 50)  # one Newton step's derivatives
    t_first, _ = best_of(paper_first_order, 50)
    t_loop, looped = best_of(loop, 3)
    base = float(target(fit.theta))

    def refit(w: torch.Tensor) -> torch.Tensor:
        return fit_cox(data, penalty=PENALTY, weights=w).theta

    start = time.perf_counter()
    refits = leave_one_out(refit, data.n, range(data.n))
    actual = np.array([float(target(theta)) - base for theta in refits])
    t_brute = time.perf_counter() - start
    grad_f = torch.func.grad(target)(fit.theta).cpu().numpy()
    vif = VIF.fit(objective, fit.theta)
    start = time.perf_counter()
    one_step = vif.target_changes(target, vif.one_step_parameter_changes())
    t_one_step = time.perf_counter() - start
    truth = data.unsort(torch.as_tensor(actual))
    ours = data.unsort(torch.as_tensor(predicted))
    paper = VIF.fit(first_order, fit.theta)
    estimates = {
        "VIF as built (leverage-corrected, second order in the dev loss)": ours,
        "VIF, first order (the paper)": data.unsort(
            torch.as_tensor(paper.influence(derivatives(fit.theta)[0]))
        ),
        "VIF, first-order parameters, dev loss evaluated there": data.unsort(
            torch.as_tensor(paper.target_changes(target))
        ),
        "one Newton step without the record, dev loss evaluated there": data.unsort(
            torch.as_tensor(one_step)
        ),
        "lifelines dfbeta (its Efron fit)": lifelines_prediction(train, grad_f),  # input order
    }
    fidelity_rows = [
        [name, data.n, label, pearsonr(e, truth)[0], spearmanr(e, truth)[0]]
        for label, e in estimates.items()
    ]
    speed_rows = [
        [
            name,
            data.n,
            t_vif * 1e3,
            t_loop * 1e3,
            t_brute * 1e3,
            t_loop / t_vif,
            t_brute / t_vif,
            f"{np.abs(predicted - looped).max():.1e}",
            t_first * 1e3,
            t_brute / t_first,
            t_one_step * 1e3,
            t_eval * 1e3,
            t_vif / t_eval,
            t_brute / data.n / t_eval,
        ]
    ]
    return fidelity_rows, speed_rows, (ours, truth)


def fidelity_and_speed_tables() -> None:
    torch.set_num_threads(1)  # small-tensor timings on a shared machine: no thread hand-offs
    fidelity_rows, speed_rows, points = [], [], {}
    for name in SETS:
        f, s, points[name] = fidelity_and_speed(name)
        fidelity_rows += f
        speed_rows += s
    device = "cuda" if torch.cuda.is_available() else "cpu"
    write_table(
        "vif_survival",
        "Survival: VIF against leave-one-out retraining, and its speed",
        ["data set", "records", "estimate", "Pearson", "Spearman"],
        fidelity_rows,
        f"Every training record's predicted change of the gold dev loss (mean negative partial "
        f"log-likelihood of the 30% dev records) against refitting without it; penalty "
        f"{PENALTY}, split seed 0. lifelines' dfbeta is computed on its own (Efron) fit of the "
        f"same data. {machine()}. Reproduce: `python -m bench.vif_survival`.",
    )
    write_table(
        "vif_survival_speed",
        "Survival: wall time of VIF, the per-unit loop and brute force, one run",
        [
            "data set",
            "records",
            "VIF as built (ms)",
            "per-unit loop (ms)",
            "brute force (ms)",
            "loop / VIF",
            "brute / VIF",
            "max |VIF - loop|",
            "first order (ms)",
            "brute / first order",
            "one Newton step (ms)",
            "one derivative evaluation (ms)",
            "VIF / evaluation",
            "refit / evaluation",
        ],
        speed_rows,
        f"All three give every training record's dev-loss influence from the same fitted model "
        f"on {device}: VIF as built (closed-form Breslow removal gradients, Hessian, curvature "
        f"factors and dev-loss gradient and Hessian, the Hessian inverted once from its "
        f"Cholesky factor, one product, the leverage correction; best of 50), the paper's "
        f"loop (one autograd gradient per left-out record, "
        f"then the same steps; best of 3), brute force (one Newton refit from zero per record). "
        f"First order: VIF without the leverage correction and second-order target (the paper's "
        f"estimate; best of 50). The last column: the one-Newton-step refinement of the fidelity "
        f"table (a Hessian per record by torch.func). At these sizes every method's time is "
        f"mostly torch's per-operation overhead (a refit from zero is about a millisecond), so the "
        f"ratios grow with the number of records. The last three columns measure the floor: "
        f"one evaluation of the training objective's closed-form gradient and Hessian (what "
        f"each Newton step computes), and VIF and a brute-force refit (mean over the records) "
        f"in units of it. brute / VIF is records x (refit / evaluation) / (VIF / evaluation), "
        f"so 1000x needs VIF / evaluation <= records x (refit / evaluation) / 1000. "
        f"One torch thread. {machine()}. "
        "Reproduce: `python -m bench.vif_survival`.",
    )
    with figure(
        "vif_survival",
        "VIF vs leave-one-out: change of the dev loss per training record",
        xlabel="refit without the record",
        ylabel="VIF prediction",
    ) as ax:
        for name, (ours, truth) in points.items():
            ax.scatter(truth, ours, s=6, alpha=0.6, label=name)
        lo = min(min(p[1].min(), p[0].min()) for p in points.values())
        hi = max(max(p[1].max(), p[0].max()) for p in points.values())
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, label="y = x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "detection", "fidelity"), default="all")
    part = parser.parse_args().part
    if part != "detection":
        fidelity_and_speed_tables()
    if part != "fidelity":
        detection_tables()


if __name__ == "__main__":
    main()
