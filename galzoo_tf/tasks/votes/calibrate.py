"""`galzoo calibrate`: how well the vote posteriors are calibrated, and recalibration of the dropout rate.

The test split is sampled once: trunk features of every (galaxy, pass) are kept, so the
MC dropout posterior at any test-time dropout rate costs only the dropout and output
layers. For each set of samples we report the coverage error (Walmsley et al. 2019, eq.
11-13) of the MC mixture posterior around its most likely k, and of single networks (each
pass's Binomial(N, rho_t) around its own most likely k, averaged over passes: the paper's
"without MC dropout"), the ROC and confusion of the majority answer on all galaxies and on the
most confident (Figs. 9-10), the RMSE of
k_hat / N against k / N with the binomial noise floor, and, on simulated records, both
against the true rho. Tuning evaluates candidate rates on the validation split, picks the
one with the smallest mean |coverage error| at the paper's four maximum errors and stores
it in galzoo.json, where `galzoo predict` finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from galzoo_tf import __version__
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import nan_to_null, write_json_atomic
from galzoo_tf.kaggle import KAGGLE_TREE, REFERENCE_RMSE, feature_keys, kaggle_columns, rmse
from galzoo_tf.schema import load_schema
from galzoo_tf.science.bias import TRUE_PROPERTIES, bias_report, image_properties, plot_bias, surprise
from galzoo_tf.science.expert import fit_expert, plot_expert, read_expert_labels
from galzoo_tf.tasks.base import Progress
from galzoo_tf.tasks.requests import REPORT, CalibrateRequest, CalibrationReport, ReportTable
from galzoo_tf.tasks.votes import figures as plots
from galzoo_tf.tasks.votes.coverage import PAPER_MAX_ERRORS, Coverage, coverage_table
from galzoo_tf.tasks.votes.heads import VoteHead
from galzoo_tf.tasks.votes.kaggle import kaggle_predictions, missing_questions
from galzoo_tf.tasks.votes.model import VoteModel, check_same_heads
from galzoo_tf.tasks.votes.posterior import Sampler, count_probabilities, summarise_counts
from galzoo_tf.training.model_dir import record_dropout_rate, record_section

FINE_GRID = tuple(np.round(np.linspace(0.01, 0.5, 50), 3))
SPREAD_MAX_ERRORS = tuple(np.round(np.arange(0.02, 0.201, 0.02), 2))  # the logit spread must hold at every one
SPREADS = tuple(np.round(np.geomspace(0.25, 4.0, 41), 4))  # candidate logit-spread scalings (1 included)
PAPER_TABLES = {  # Walmsley et al. 2019, Tables 1-2: coverage error without / with MC dropout
    "smooth": {"single": (0.496, 0.385, 0.261, 0.079), "mc": (0.165, 0.134, 0.094, 0.054)},
    "bar": {"single": (0.922, 0.855, 0.578, 0.226), "mc": (0.455, 0.424, 0.292, 0.118)},
}


def key(max_error: float) -> str:
    return f"{max_error:.2f}"


@dataclass
class SplitFeatures:
    """One split sampled by one or more models: trunk features per model, observed votes, truth if simulated."""

    heads: list[VoteHead]
    features: list[np.ndarray]  # per model: (galaxies * passes, width)
    indices: np.ndarray
    ids: np.ndarray
    counts: dict[str, np.ndarray]  # question -> (galaxies, answers): observed k of every answer
    totals: dict[str, np.ndarray]  # question -> (galaxies,): N
    truth: dict[str, np.ndarray]  # question -> (galaxies, answers): true rho (simulated records only)
    properties: dict[str, np.ndarray] = field(default_factory=dict)  # per galaxy, for the bias report
    kaggle: np.ndarray | None = None  # (galaxies, 37): the Kaggle release's weighted fractions, if recorded


def vote_keys(heads: Sequence[VoteHead], manifest: dict) -> tuple[list[str], list[str]]:
    """Record features calibration reads: every answer's count and the total, and true rho when simulated."""
    ints = [f"{h.question}/{a}/count" for h in heads for a in h.all_answers] + [h.total_key for h in heads]
    truth = [f"truth/rho/{h.question}/{a}" for h in heads for a in h.all_answers]
    simulated = all(k in manifest["float_features"] for k in truth)
    return ints, truth if simulated else []


def kaggle_keys(manifest: dict) -> list[str]:
    """The record features of the Kaggle release's 37 weighted fractions, if the records hold them (else none)."""
    keys = feature_keys(load_schema(KAGGLE_TREE))
    return keys if all(k in manifest["float_features"] for k in keys) else []


def sample_split(samplers: list[Sampler], heads: list[VoteHead], data: Path, split: str, batch_size: int,
                 progress: Callable[[int, int], None] | None = None, properties: bool = False) -> SplitFeatures:
    """Run every model's trunk over a split once, keeping features and the votes (and truth) of each galaxy.

    With ``properties``, also each galaxy's size, brightness, axis ratio and S/N measured from its image
    (and their true values on simulated records), for the bias report.
    """
    probe = RecordSource(data, split)
    ints, floats = vote_keys(heads, probe.manifest)
    true_properties = [k for k in TRUE_PROPERTIES if k in probe.manifest["float_features"]] if properties else []
    fractions = kaggle_keys(probe.manifest)
    source = RecordSource(data, split, ints + floats + true_properties + fractions)
    features: list[list[np.ndarray]] = [[] for _ in samplers]
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ints + floats + true_properties + fractions}
    measured: list[dict[str, np.ndarray]] = []
    indices, ids, done = [], [], 0
    for batch in source.batches(batch_size):
        for store, sampler in zip(features, samplers, strict=True):
            store.append(sampler.features(batch.images, batch.indices).numpy())
        for name in columns:
            columns[name].append(batch.columns[name])
        if properties:
            measured.append(image_properties(batch.images))
        indices.append(batch.indices)
        ids.extend(batch.ids)
        done += batch.consumed
        if progress:
            progress(done, source.total)
    joined = {name: np.concatenate(parts) for name, parts in columns.items()}
    galaxy_properties = {name: np.concatenate([m[name] for m in measured]) for name in measured[0]} \
        if measured else {}
    galaxy_properties.update({TRUE_PROPERTIES[k]: joined[k].astype(np.float64) for k in true_properties})
    return SplitFeatures(heads, [np.concatenate(f) for f in features], np.concatenate(indices), np.asarray(ids),
                         {h.question: np.stack([joined[f"{h.question}/{a}/count"] for a in h.all_answers], 1)
                          for h in heads},
                         {h.question: joined[h.total_key] for h in heads},
                         {h.question: np.stack([joined[f"truth/rho/{h.question}/{a}"] for a in h.all_answers], 1)
                          for h in heads} if floats else {}, galaxy_properties,
                         np.stack([joined[k] for k in fractions], 1) if fractions else None)


def rho_samples(split: SplitFeatures, samplers: list[Sampler], rates: Sequence[float | None],
                chunk: int = 512, spreads: Sequence[float | None] | None = None) -> dict[str, np.ndarray]:
    """Per question, rho of every answer (galaxies, passes x models, answers) at the given test-time rates and
    logit spreads (None: each sampler's own)."""
    logits = []
    for sampler, features, rate, spread in zip(samplers, split.features, rates, spreads or [None] * len(samplers),
                                               strict=True):
        rows = chunk * sampler.passes
        logits.append(np.concatenate([
            sampler.logits_from_features(features[start * sampler.passes:start * sampler.passes + rows],
                                         split.indices[start:start + chunk], rate, spread).numpy()
            for start in range(0, len(split.indices), chunk)]))
    stacked = np.concatenate(logits, axis=1)
    return {h.question: h.rho(stacked).numpy() for h in split.heads}


@dataclass(frozen=True)
class Outcomes:
    """Rows to score, one per (galaxy asked the question, answer with its own output)."""

    rho: np.ndarray  # (rows, samples)
    observed: np.ndarray
    total_votes: np.ndarray
    ids: np.ndarray
    truth: np.ndarray | None


def outcomes(split: SplitFeatures, rho: dict[str, np.ndarray], min_votes: int = 1,
             only: str | None = None) -> Outcomes:
    """Pool the answers with an output (a two-answer question's first) of every question, N >= min_votes; or
    only the answer ``only`` (QUESTION/ANSWER)."""
    parts = []
    for head in split.heads:
        asked = split.totals[head.question] >= max(min_votes, 1)
        for index in range(head.size):
            if only is not None and only != f"{head.question}/{head.answers[index]}":
                continue
            truth = split.truth[head.question][asked, index] if split.truth else None
            parts.append((rho[head.question][asked, :, index], split.counts[head.question][asked, index],
                          split.totals[head.question][asked], split.ids[asked], truth))
    if not sum(len(p[1]) for p in parts):
        raise BadInputError("no galaxies", f"no galaxy of the split has at least {max(min_votes, 1)} votes")
    truth = np.concatenate([p[4] for p in parts]) if split.truth else None
    return Outcomes(*(np.concatenate([p[i] for p in parts]) for i in range(4)), truth)


def _coverage_block(table: Sequence[Coverage]) -> dict:
    return {"coverage_error": {key(c.max_error): c.error for c in table},
            "expected_count": {key(c.max_error): c.expected for c in table},
            "actual_count": {key(c.max_error): c.actual for c in table}}


def single_network_coverage(rows: Outcomes, max_errors: Sequence[float]) -> list[Coverage]:
    """The paper's "without MC dropout": each of the T sampled networks (one dropout mask and augmentation)
    judged alone, Binomial(N, rho_t) around its own most likely k; expected and actual counts are the mean
    over the T networks (the grey lines of Walmsley et al. 2019, Fig. 7)."""
    tables = []
    for network in range(rows.rho.shape[1]):
        probabilities = count_probabilities(rows.rho[:, network:network + 1], rows.total_votes)
        tables.append(coverage_table(probabilities, probabilities.argmax(axis=1), rows.observed, rows.total_votes,
                                     max_errors))
    return [Coverage(error, float(np.mean([t[i].expected for t in tables])),
                     float(np.mean([t[i].actual for t in tables]))) for i, error in enumerate(max_errors)]


def truth_coverage(rows: Outcomes, max_errors: Sequence[float]) -> dict:
    """Coverage of the rho posterior (the samples) around mean rho, against the true rho of simulated galaxies."""
    centre = rows.rho.mean(axis=1)
    result: dict = {"mc": {}, "single": {}}
    for max_error in max_errors:
        actual = int((np.abs(rows.truth - centre) < max_error).sum())
        expected = {"mc": float((np.abs(rows.rho - centre[:, None]) < max_error).mean(axis=1).sum()),
                    "single": float(len(centre))}  # a point estimate expects to be right every time
        for name, value in expected.items():
            result[name][key(max_error)] = (value - actual) / actual if actual else float("nan")
    return result


@dataclass(frozen=True)
class Scored:
    """The MC posterior of k for every row and its prediction k_hat; one single network's posterior (the first
    pass) for the figures."""

    rows: Outcomes
    mc: np.ndarray
    single: np.ndarray
    predicted: np.ndarray

    @classmethod
    def of(cls, rows: Outcomes) -> Scored:
        mc = count_probabilities(rows.rho, rows.total_votes)
        single = count_probabilities(rows.rho[:, :1], rows.total_votes)
        return cls(rows, mc, single, summarise_counts(mc).mode)

    def coverage(self, max_errors: Sequence[float]) -> dict:
        mc = coverage_table(self.mc, self.predicted, self.rows.observed, self.rows.total_votes, max_errors)
        blocks = {"mc": _coverage_block(mc), "single": _coverage_block(single_network_coverage(self.rows,
                                                                                                max_errors))}
        return {name: {which: blocks[which][name] for which in blocks} for name in blocks["mc"]}


def evaluate(rows: Outcomes, max_errors: Sequence[float] = PAPER_MAX_ERRORS) -> dict:
    """Coverage (MC and single network), point metrics, and truth metrics on simulated data."""
    scored = Scored.of(rows)
    fraction, observed = scored.predicted / rows.total_votes, rows.observed / rows.total_votes
    rho = rows.rho.mean(axis=1) if rows.truth is None else rows.truth
    report = {**scored.coverage(max_errors), "galaxies": int(len(rows.observed))}
    report["rmse"] = {"fraction_vs_observed": float(np.sqrt(np.mean((fraction - observed) ** 2))),
                      "noise_floor": float(np.sqrt(np.mean(rho * (1 - rho) / rows.total_votes))),
                      "noise_floor_from": "true rho" if rows.truth is not None else "predicted mean rho"}
    if rows.truth is not None:
        report["rmse"]["fraction_vs_truth"] = float(np.sqrt(np.mean((fraction - rows.truth) ** 2)))
        report["rmse"]["rho_mean_vs_truth"] = float(np.sqrt(np.mean((rows.rho.mean(axis=1) - rows.truth) ** 2)))
        report["truth"] = {"coverage_error": truth_coverage(rows, max_errors)}
    return report


def mc_coverage_errors(rows: Outcomes, max_errors: Sequence[float] = PAPER_MAX_ERRORS) -> dict[str, float]:
    """The MC posterior's coverage error alone: what tuning compares, without the single networks' T passes."""
    scored = Scored.of(rows)
    table = coverage_table(scored.mc, scored.predicted, rows.observed, rows.total_votes, max_errors)
    return _coverage_block(table)["coverage_error"]


def calibration_score(report: dict) -> float:
    """What tuning minimises: mean |MC coverage error| over the paper's four maximum errors."""
    score = float(np.mean([abs(report["coverage_error"]["mc"][key(e)]) for e in PAPER_MAX_ERRORS]))
    return score if np.isfinite(score) else float("inf")  # no galaxy inside a window: never the best


def tune_dropout(split: SplitFeatures, samplers: list[Sampler], rates: Sequence[float], min_votes: int) -> dict:
    """Evaluate candidate test-time dropout rates of the first model on a split; the best and every score."""
    scores = {}
    for rate in rates:
        if not 0 <= rate < 1:
            raise BadInputError("bad option", f"--tune-dropout rates must be in [0, 1), not {rate}")
        chosen = [rate] + [None] * (len(samplers) - 1)
        errors = mc_coverage_errors(outcomes(split, rho_samples(split, samplers, chosen,
                                                                spreads=[1.0] * len(samplers)), min_votes))
        scores[f"{rate:g}"] = {"score": calibration_score({"coverage_error": {"mc": errors}}), "coverage_error": errors}
    best = min(scores, key=lambda r: scores[r]["score"])
    spread = fit_spread(split, samplers[0], float(best), min_votes)
    return {"dropout_rate": float(best), "scores": scores, "logit_spread": spread["logit_spread"], "spread": spread,
            "criterion": "the rate with the smallest mean |MC coverage error| at max errors 0.02, 0.05, 0.10, "
                         "0.20; then the logit spread with the smallest largest |MC coverage error| at max errors "
                         "0.02-0.20"}


def fit_spread(split: SplitFeatures, sampler: Sampler, rate: float, min_votes: int) -> dict:
    """The scaling of each galaxy's logit samples about their mean that makes the MC posterior's coverage
    right at every maximum error 0.02-0.20 (the largest |coverage error| is minimised over ``SPREADS``).

    Dropout's rate moves the spread of rho with the features it drops; this moves it directly, so
    it can narrow or widen the posterior where no rate does."""
    worst = {}
    for spread in SPREADS:
        errors = np.array(list(mc_coverage_errors(outcomes(split, rho_samples(split, [sampler], [rate],
                                                                                 spreads=[spread]), min_votes),
                                                  SPREAD_MAX_ERRORS).values()))
        worst[spread] = float(np.abs(errors).max()) if np.isfinite(errors).all() else float("inf")
    best = min(worst, key=lambda s: (worst[s], abs(np.log(s))))  # ties: the smallest change
    return {"logit_spread": float(best), "largest_coverage_error": worst[best], "at_spread_1": worst[1.0]}


def store_choice(model: VoteModel, tuning: dict, data: Path, split: str, passes: int, tta: bool, seed: int) -> None:
    """Write the tuned rate and logit spread into galzoo.json, with what they were tuned on."""
    record_dropout_rate(model.path, tuning["dropout_rate"], data, split, tuning["criterion"],
                        {"logit_spread": tuning["logit_spread"]}, passes=passes, tta=tta, seed=seed)


@dataclass(frozen=True)
class CalibrateOptions:
    """What calibrate samples and how; the seed keys every augmentation and dropout mask."""

    split: str = "test"
    passes: int = 30
    tta: bool = True
    seed: int = 0
    batch_size: int = 32
    tune_dropout: tuple[float, ...] = ()
    tune_split: str = "val"
    panels: int = 8  # galaxies in the posterior figure
    bias: bool = False  # fit the bias report
    expert_labels: Path | None = None  # CSV of an expert's binary labels (id + expert_column)
    expert_column: str | None = None
    expert_answer: str | None = None  # QUESTION/ANSWER the expert label is about (default: the first output)


def figures(out: Path, name: str, rows: Outcomes, split: SplitFeatures, rho: dict[str, np.ndarray],
            options: CalibrateOptions) -> list[Path]:
    """The paper's figures for one set of samples: Figs. 4-5, 7, 8, 9-10."""
    scored, suffix = Scored.of(rows), "" if name == "model" else f"-{name}"
    grid = scored.coverage(FINE_GRID)
    label = f"{'+'.join(h.question for h in split.heads)} ({name}, {options.split} split)"
    written = [plots.plot_coverage(out / f"coverage{suffix}.png", np.array(FINE_GRID),
                                   {"MC dropout": np.array(list(grid["expected_count"]["mc"].values())),
                                    "single network": np.array(list(grid["expected_count"]["single"].values()))},
                                   np.array(list(grid["actual_count"]["mc"].values())), f"coverage: {label}")]
    chosen = np.random.default_rng(options.seed).choice(len(rows.ids), min(options.panels, len(rows.ids)),
                                                        replace=False)
    written.append(plots.plot_count_posteriors(
        out / f"posteriors{suffix}.png", scored.mc[chosen], scored.single[chosen], rows.observed[chosen],
        rows.total_votes[chosen], [str(i) for i in rows.ids[chosen]], f"posteriors of k: {label}"))
    written.append(plots.plot_distributions(
        out / f"distributions{suffix}.png", scored.predicted / rows.total_votes, rows.observed / rows.total_votes,
        scored.predicted, rows.observed, f"predicted vs observed: {label}"))
    for head in split.heads:
        scores, majority = majority_outcomes(split, rho, head)
        answers = list(head.all_answers)
        for subset, kept in (("", slice(None)), ("-confident", most_confident(scores))):
            what = f"majority answer, {head.question}{', most confident' if subset else ''}: {label}"
            written.append(plots.plot_roc(out / f"roc-{head.question}{subset}{suffix}.png", scores[kept],
                                          majority[kept], answers, what))
            written.append(plots.plot_confusion(out / f"confusion-{head.question}{subset}{suffix}.png",
                                                scores[kept].argmax(axis=1), majority[kept], answers, what))
    return written


CONFIDENT_FRACTION = 0.1  # Walmsley et al. (2019, Fig. 10): the most confident ~8 % of each class


def majority_outcomes(split: SplitFeatures, rho: dict[str, np.ndarray], head: VoteHead) -> tuple[np.ndarray, ...]:
    """Predicted mean rho of every answer (galaxies asked the question, answers) and the volunteers' majority."""
    asked = split.totals[head.question] >= 1
    return rho[head.question][asked].mean(axis=1), split.counts[head.question][asked].argmax(axis=1)


def most_confident(scores: np.ndarray, fraction: float = CONFIDENT_FRACTION) -> np.ndarray:
    """Mask of the galaxies whose predicted answer has the highest rho among those predicted that answer: the top
    ``fraction`` of each predicted class, so a rare class keeps its share (the paper's high-confidence subsets)."""
    predicted, top = scores.argmax(axis=1), scores.max(axis=1)
    keep = np.zeros(len(scores), bool)
    for answer in np.unique(predicted):
        members = np.flatnonzero(predicted == answer)
        chosen = members[np.argsort(-top[members], kind="stable")[:max(1, round(fraction * len(members)))]]
        keep[chosen] = True
    return keep


def majority_metrics(split: SplitFeatures, rho: dict[str, np.ndarray]) -> dict:
    """Accuracy of the predicted answer at the volunteers' majority, and its ROC AUC, on all galaxies asked
    each question and on the most confident (Walmsley et al. 2019, Figs. 9-10)."""
    result = {}
    for head in split.heads:
        scores, majority = majority_outcomes(split, rho, head)
        result[head.question] = {}
        for name, kept in (("all", np.ones(len(scores), bool)), ("most_confident", most_confident(scores))):
            hits = scores[kept].argmax(axis=1) == majority[kept]
            result[head.question][name] = {"galaxies": int(kept.sum()), "accuracy": float(hits.mean()),
                                           "roc_auc": plots.majority_auc(scores[kept], majority[kept],
                                                                         list(head.all_answers))}
    return result


def _assess(out: Path, name: str, split: SplitFeatures, samplers: list[Sampler], rates: list[float | None],
            min_votes: int, options: CalibrateOptions, spreads: list[float | None] | None = None) -> dict:
    """Evaluate one set of samples of the split and draw its figures."""
    view = replace(split, features=split.features[:len(samplers)])
    rho = rho_samples(view, samplers, rates, spreads=spreads)
    rows = outcomes(view, rho, min_votes)
    report = evaluate(rows)
    outputs = [f"{h.question}/{a}" for h in view.heads for a in h.answers
               if (view.totals[h.question] >= max(min_votes, 1)).any()]
    if len(outputs) > 1:  # pooled answers above; each alone here (Table 1 is smooth's first answer)
        report["by_answer"] = {name: {field: value for field, value in evaluate(
            outcomes(view, rho, min_votes, name)).items() if field in ("coverage_error", "galaxies", "rmse")}
            for name in outputs}
    report["majority"] = majority_metrics(view, rho)
    if view.kaggle is not None and not missing_questions(view.heads, load_schema(KAGGLE_TREE)):
        report["kaggle_rmse"] = rmse(kaggle_predictions(load_schema(KAGGLE_TREE), rho), view.kaggle)
    report["figures"] = [p.name for p in figures(out, name, rows, view, rho, options)]
    return report


def calibrate(model: VoteModel, data: Path, out: Path, options: CalibrateOptions,
              ensemble: Sequence[VoteModel] = (), progress: Callable[[int, int], None] | None = None) -> dict:
    """Write ``out/calibration.json`` and the figures; tune the dropout rate and assess ensembles when asked."""
    members, out = [model, *ensemble], Path(out)
    check_same_heads(members)
    out.mkdir(parents=True, exist_ok=True)
    min_votes, heads = model.sidecar["config"].get("min_votes", 1), model.heads
    samplers = [m.sampler(options.passes, options.tta, options.seed) for m in members]
    split = sample_split(samplers, heads, data, options.split, options.batch_size, progress, options.bias)
    report = {"galzoo_version": __version__, "seed": options.seed, "split": options.split,
              "passes": options.passes, "tta": options.tta, "min_votes": min_votes,
              "model": {"path": str(model.path.resolve()), "sha256": model.checksum(),
                        "dropout_rate": samplers[0].rate},
              "data": {"path": str(Path(data).resolve()), "fingerprint": RecordSource(data).manifest["fingerprint"]},
              **_assess(out, "model", split, samplers[:1], [None], min_votes, options)}
    if split.kaggle is not None:
        report["kaggle"] = kaggle_baselines(data, split, options.split)
    if options.tune_dropout:
        tuning_split = sample_split(samplers[:1], heads, data, options.tune_split, options.batch_size, progress)
        tuning = tune_dropout(tuning_split, samplers[:1], options.tune_dropout, min_votes)
        store_choice(model, tuning, data, options.tune_split, options.passes, options.tta, options.seed)
        report["recalibrated"] = {"method": f"test-time dropout rate and logit spread tuned on the "
                                            f"{options.tune_split} split",
                                  "dropout_rate": tuning["dropout_rate"], "logit_spread": tuning["logit_spread"],
                                  "tuning": tuning,
                                  **_assess(out, "recalibrated", split, samplers[:1], [tuning["dropout_rate"]],
                                            min_votes, options, [tuning["logit_spread"]])}
    tuned = report.get("recalibrated", {})
    if ensemble:
        rates = [tuned.get("dropout_rate")] + [None] * len(ensemble)
        report["ensemble"] = {"models": [{"path": str(m.path.resolve()), "sha256": m.checksum()} for m in members],
                              **_assess(out, "ensemble", split, samplers, rates, min_votes, options,
                                        [tuned.get("logit_spread")] + [None] * len(ensemble))}
    if options.bias or options.expert_labels is not None:  # both read the final (tuned) posterior
        rho = rho_samples(split, samplers[:1], [tuned.get("dropout_rate")], spreads=[tuned.get("logit_spread")])
        if options.bias:
            report["bias"] = assess_bias(out, split, rho, min_votes, options.seed)
        if options.expert_labels is not None:
            report["expert"] = rescale_to_expert(out, model, split, rho, options)
    write_json_atomic(out / REPORT, nan_to_null(report))  # undefined errors: null
    return report


def kaggle_baselines(data: Path, split: SplitFeatures, split_name: str) -> dict:
    """What a Kaggle RMSE is read against: predicting the training split's mean of every column (the lab report's
    mean-label baseline) on this split, and the published numbers; or why the model gets no RMSE."""
    schema = load_schema(KAGGLE_TREE)
    train = RecordSource(data, "train", feature_keys(schema)).columns()
    mean_label = np.stack([train[k] for k in feature_keys(schema)], 1).mean(axis=0)
    baseline = rmse(np.broadcast_to(mean_label, split.kaggle.shape), split.kaggle)
    result = {"galaxies": len(split.kaggle), "mean_label_baseline": baseline,
              "mean_label": dict(zip(kaggle_columns(schema), mean_label.round(6).tolist(), strict=True)),
              "published": REFERENCE_RMSE}
    missing = missing_questions(split.heads, schema)
    if missing:
        result["note"] = (f"the model does not predict {', '.join(missing)}: the 37-answer RMSE needs a model of every "
                          "question (galzoo train --question all)")
    elif split_name == "train":
        result["note"] = "scored on the training split, the baseline's own galaxies: in-sample numbers"
    return result


def assess_bias(out: Path, split: SplitFeatures, rho: dict[str, np.ndarray], min_votes: int, seed: int) -> dict:
    """Fit the additive model of per-galaxy surprise on galaxy properties and morphology; write bias.png."""
    rows = outcomes(split, rho, min_votes)
    position = {galaxy: i for i, galaxy in enumerate(split.ids)}
    galaxy = np.array([position[i] for i in rows.ids])
    properties = {name: values[galaxy] for name, values in split.properties.items()}
    properties["observed_fraction"] = rows.observed / rows.total_votes
    if rows.truth is not None:
        properties["true_rho"] = rows.truth
    result, fitted = bias_report(properties, surprise(Scored.of(rows).mc, rows.observed), seed)
    result["figure"] = plot_bias(out / "bias.png", result, fitted, "what makes the model surprised by the "
                                                                    "votes (additive model)").name
    return result


def rescale_to_expert(out: Path, model: VoteModel, split: SplitFeatures, rho: dict[str, np.ndarray],
                      options: CalibrateOptions) -> dict:
    """Fit predicted vote fraction -> expert label on part of the labelled galaxies, judge it, store it."""
    head, answer = expert_output(model, options.expert_answer)
    labels = read_expert_labels(options.expert_labels, options.expert_column)
    fraction = rho[head.question][:, :, head.all_answers.index(answer)].mean(axis=1)
    labelled = np.array([galaxy in labels.index for galaxy in split.ids])
    if not labelled.any():
        raise BadInputError("no overlap", f"{options.expert_labels}: none of its ids is in the {options.split} "
                                          "split; label galaxies of that split")
    mapping, result = fit_expert(fraction[labelled], labels.loc[split.ids[labelled]].to_numpy(),
                                 options.expert_column, head.question, answer, options.seed)
    record_section(model.path, "expert", {mapping.column: mapping.to_json()}, merge=True)  # one per expert column
    result["figure"] = plot_expert(out / f"expert-{options.expert_column}.png", result,
                                   f"expert label {options.expert_column!r} from the {head.question}/{answer} "
                                   "vote fraction").name
    return result


def expert_output(model: VoteModel, chosen: str | None) -> tuple[VoteHead, str]:
    """The head and answer named QUESTION/ANSWER (default: the model's first output)."""
    if chosen is None:
        return model.heads[0], model.heads[0].all_answers[0]
    question, _, answer = chosen.partition("/")
    for head in model.heads:
        if head.question == question and answer in head.all_answers:
            return head, answer
    outputs = [f"{h.question}/{a}" for h in model.heads for a in h.all_answers]
    raise BadInputError("bad option", f"--expert-answer {chosen}: the model predicts {', '.join(outputs)}")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}%"


def paper_questions(question: str) -> list[str]:
    """The paper's table for the model's question, or both (smooth and bar) for any other question."""
    return [question] if question in PAPER_TABLES else list(PAPER_TABLES)


def coverage_rows(result: dict, question: str) -> list[list[str]]:
    """One row per maximum error: ours (single, MC, recalibrated, ensemble) beside the paper's Tables 1-2."""
    rows = []
    for index, max_error in enumerate(PAPER_MAX_ERRORS):
        ours = [_percent(result["coverage_error"][kind][key(max_error)]) for kind in ("single", "mc")]
        extra = [_percent(result[name]["coverage_error"]["mc"][key(max_error)])
                 for name in ("recalibrated", "ensemble") if name in result]
        paper = [_percent(PAPER_TABLES[q][kind][index]) for q in paper_questions(question)
                 for kind in ("single", "mc")]
        rows.append([key(max_error), *ours, *extra, *paper])
    return rows


def coverage_columns(result: dict, question: str) -> list[str]:
    extra = [f"tuned MC (rate {result['recalibrated']['dropout_rate']:g}, spread "
             f"{result['recalibrated'].get('logit_spread', 1):g})"] if "recalibrated" in result else []
    extra += ["ensemble MC"] if "ensemble" in result else []
    paper = [f"paper {q} {kind}" for q in paper_questions(question) for kind in ("single", "MC")]
    return ["max error", "ours single", "ours MC", *extra, *paper]


def rmse_rows(result: dict) -> list[list[str]]:
    rmse = result["rmse"]
    rows = [["RMSE of most likely k/N vs observed k/N", f"{rmse['fraction_vs_observed']:.4f}"],
            [f"binomial noise floor (from {rmse['noise_floor_from']})", f"{rmse['noise_floor']:.4f}"]]
    if "fraction_vs_truth" in rmse:
        rows += [["RMSE of most likely k/N vs true rho", f"{rmse['fraction_vs_truth']:.4f}"],
                 ["RMSE of mean rho vs true rho", f"{rmse['rho_mean_vs_truth']:.4f}"]]
    return rows


def kaggle_table(result: dict) -> ReportTable:
    """The 37-answer RMSE of ours beside the mean-label baseline on this split and the published numbers."""
    kaggle = result["kaggle"]
    ours = [[f"ours{'' if name == 'model' else ' ' + name}", f"{part['kaggle_rmse']:.4f}"]
            for name, part in (("model", result), ("recalibrated", result.get("recalibrated", {})),
                               ("ensemble", result.get("ensemble", {}))) if "kaggle_rmse" in part]
    rows = [*ours, ["mean-label baseline (training-split mean of each column)", f"{kaggle['mean_label_baseline']:.4f}"],
            *[[f"published: {name}", f"{value:.4f}"] for name, value in kaggle["published"].items()]]
    return ReportTable(f"Kaggle 37-answer RMSE on the {result['split']} split ({kaggle['galaxies']:,} galaxies; the "
                       "published numbers are on the real release's own test sets)"
                       + (f"; {kaggle['note']}" if "note" in kaggle else ""), ["", "RMSE"], rows)


def bias_table(bias: dict) -> ReportTable:
    rows = [[name, f"{bias['importance'][name]['mean']:+.3f} +- {bias['importance'][name]['std']:.3f}"]
            for name in bias["ranking"]]
    return ReportTable(f"bias report: what raises the surprise -ln p(k|N) (held-out R^2 {bias['r2_held_out']:.2f}, "
                       f"{bias['galaxies']:,} galaxies; shapes in {bias['figure']})",
                       ["property", "permutation importance"], rows)


def expert_table(expert: dict) -> ReportTable:
    rows = [[name.replace("_", " "), f"{v['expected']:.1f}", f"{v['actual']} +- {v['poisson_error']:.1f}",
             "yes" if v["within_poisson_error"] else "no"] for name, v in expert["positives"].items()]
    return ReportTable(f"expert label {expert['column']!r} on {expert['held_out']} held-out galaxies (fitted on "
                       f"{expert['train']}; ROC AUC {expert['roc_auc']:.3f}; {expert['figure']})",
                       ["probabilities", "expected positives", "actual", "within Poisson error"], rows)


def report_tables(result: dict, question: str, passes: int) -> list[ReportTable]:
    """What `galzoo calibrate` shows of a vote model's report: coverage beside the paper, point metrics, extras."""
    tables = [ReportTable(f"coverage error on the {result['split']} split ({result['galaxies']:,} galaxies, "
                          f"T = {passes}): + overconfident, - underconfident", coverage_columns(result, question),
                          coverage_rows(result, question)),
              ReportTable("point metrics" + (" (recalibrated)" if "recalibrated" in result else ""), ["", ""],
                          rmse_rows(result.get("recalibrated", result)))]
    tables += [kaggle_table(result)] if "kaggle" in result else []
    tables += [bias_table(result["bias"])] if "bias" in result else []
    tables += [expert_table(result["expert"])] if "expert" in result else []
    return tables


def calibration_report(model: VoteModel, data: Path, out: Path, request: CalibrateRequest, default_passes: int,
                       ensemble: Sequence[VoteModel] = (), progress: Progress = None) -> CalibrationReport:
    """Coverage error, point metrics and the paper's figures of a vote model (and its recalibration)."""
    passes = request.passes or default_passes
    options = CalibrateOptions(split=request.split, passes=passes, tta=request.tta, seed=request.seed,
                               batch_size=request.batch_size, tune_dropout=request.tune_dropout,
                               tune_split=request.tune_split, bias=request.bias, expert_labels=request.expert_labels,
                               expert_column=request.expert_column, expert_answer=request.expert_answer)
    result = calibrate(model, data, out, options, ensemble, progress)
    return CalibrationReport(result, report_tables(result, model.sidecar["question"], passes),
                             f"report: {out / 'calibration.json'}; figures: {', '.join(result['figures'][:3])}, "
                             f"... in {out}")
