"""How simulated volunteers perceive a galaxy: the true typical answer probabilities rho.

For each perception (GZ2's eleven questions, and the GZ DECaLS and Euclid questions GZ2 does
not ask: three bar strengths, five bulge sizes, merging, clumps, problem, artifact kind), a
galaxy's truth gives what a volunteer would answer if the galaxy were perfectly visible
(``p_seen``). A tree's question names its perception (``perception``, default its own name)
and each answer which of the perception's answers it is (``perceived``, default its name), so
the simulated volunteers answer any shipped tree. Small, faint galaxies are harder to read, so
volunteers fall back on a ``blind`` answer distribution: featured galaxies look smooth
and bars and arms go unnoticed, as with GZ2's redshift bias. Features in the disk plane
(bar, arms) also fade as the disk tilts towards edge-on. Then

    rho = visibility * p_seen + (1 - visibility) * blind,

so rho follows the truth smoothly (not a hard threshold) and is less extreme for small,
faint galaxies. The constants were tuned so that vote statistics resemble real GZ2
(docs/synthetic.md compares them with the Stripe 82 table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galzoo_tf.schema import Question, Schema, SchemaError, load_schema
from galzoo_tf.sim.population import NOT_GALAXIES

PERCEPTIONS_TREE = "gz2"  # GZ2's questions are perceptions, their answers named as in its tree
OTHER_ANSWERS = {  # the answers of the perceptions GZ2 does not ask
    "bar_strength": ("strong", "weak", "no"),
    "bulge_size": ("dominant", "large", "moderate", "small", "none"),
    "merging": ("none", "minor-disturbance", "major-disturbance", "merger"),
    "clumps": ("yes", "no"),
    "problem": ("star", "artifact", "zoom"),
    "artifact_kind": ("satellite", "scattered", "diffraction", "ray", "saturation", "other", "ghost"),
}
BLIND = {  # answers given to a galaxy too small or faint to read, in each perception's answer order
    "smooth": [0.82, 0.14, 0.04], "edgeon": [0.08, 0.92], "bar": [0.15, 0.85], "spiral": [0.50, 0.50],
    "bulge": [0.15, 0.45, 0.30, 0.10], "odd": [0.15, 0.85], "rounded": [0.35, 0.50, 0.15],
    "odd_feature": [0.15, 0.08, 0.15, 0.20, 0.30, 0.07, 0.05], "bulge_shape": [0.45, 0.15, 0.40],
    "arms_winding": [0.30, 0.40, 0.30], "arms_number": [0.05, 0.20, 0.08, 0.04, 0.03, 0.60],
    "bar_strength": [0.04, 0.11, 0.85], "bulge_size": [0.10, 0.20, 0.30, 0.25, 0.15],
    "merging": [0.75, 0.15, 0.07, 0.03], "clumps": [0.20, 0.80], "problem": [0.30, 0.40, 0.30],
    "artifact_kind": [0.25, 0.15, 0.15, 0.05, 0.15, 0.20, 0.05],
}
FACE_ON_QUESTIONS = ("bar", "spiral", "arms_winding", "arms_number", "bar_strength", "clumps")
# Questions asked before any feature was seen; the others reach only volunteers who saw features,
# who read the galaxy better than its size and brightness alone suggest (visibility ** FOLLOW_UP).
FIRST_LOOK_QUESTIONS = ("smooth", "odd", "rounded", "merging", "problem", "artifact_kind")
FOLLOW_UP = 0.35


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def soft_bins(value: np.ndarray, centres: list[float], width: float) -> np.ndarray:
    """Probabilities of ordered answers from a value: Gaussian weights around each answer's centre."""
    weights = np.exp(-((value[:, None] - np.asarray(centres)[None]) ** 2) / (2 * width**2)) + 1e-3
    return weights / weights.sum(axis=1, keepdims=True)


def visibility(galaxies: pd.DataFrame) -> np.ndarray:
    """0-1: how well volunteers can read a galaxy, from its size and brightness."""
    size = sigmoid((np.log10(np.maximum(galaxies["r_e_arcsec"], 0.05)) - np.log10(2.0)) / 0.12)
    bright = sigmoid((16.6 - galaxies["magnitude"]) / 0.45)
    return np.sqrt(size * bright).to_numpy()


def _two(p_yes: np.ndarray) -> np.ndarray:
    p_yes = np.clip(p_yes, 0.01, 0.99)
    return np.stack([p_yes, 1 - p_yes], axis=1)


def seen_probabilities(g: pd.DataFrame) -> dict[str, np.ndarray]:
    """Answer probabilities of a perfectly visible galaxy, per question (answers in schema order)."""
    n = len(g)
    kind = g["kind"].to_numpy()
    bt, inclination = g["bulge_to_total"].to_numpy(), g["inclination"].to_numpy()
    arms, arm_strength = g["arms"].to_numpy(), g["arm_strength"].to_numpy()
    bar = g["bar_strength"].to_numpy()
    edge_on = sigmoid((inclination - 74) / 3) * (kind == "disk")
    featured = np.clip(0.2 + 0.5 * (1 - bt) + 0.35 * arm_strength + 0.3 * bar + 0.3 * edge_on, 0.02, 0.97)
    not_galaxy = np.isin(kind, NOT_GALAXIES)
    featured = np.select([kind == "elliptical", kind == "merger", not_galaxy], [0.04, 0.65, 0.05], featured)
    artifact = np.where(not_galaxy, 0.9, 0.03)
    smooth = np.clip(1 - featured - artifact, 0.01, 1)
    odd_feature = np.tile([0.20, 0.10, 0.12, 0.18, 0.30, 0.06, 0.04], (n, 1))
    odd_feature[kind == "merger"] = [0.02, 0.02, 0.30, 0.10, 0.04, 0.50, 0.02]
    dust = g["dust_depth"].to_numpy()
    odd_feature[(edge_on > 0.5) & (dust > 0)] = [0.08, 0.03, 0.06, 0.08, 0.25, 0.05, 0.45]
    odd_feature[(edge_on > 0.5) & (dust == 0)] = [0.12, 0.05, 0.08, 0.12, 0.55, 0.05, 0.03]
    ring = g["ring_strength"].to_numpy()[:, None]  # a ring volunteers see pulls the answer towards 'ring'
    odd_feature = (1 - ring) * odd_feature + ring * np.array([0.85, 0.04, 0.02, 0.02, 0.05, 0.01, 0.01])
    pitch_bins = soft_bins(g["pitch"].to_numpy(), [12, 21, 30], 4.5)
    pitch_bins[arms == 0] = 1 / 3
    arm_counts = np.full((n, 6), 0.02)
    arm_counts[np.arange(n), np.clip(arms, 1, 5) - 1] += 0.7
    arm_counts[:, 5] += 0.1
    arm_counts[arms == 0] = [0.03, 0.1, 0.03, 0.02, 0.02, 0.8]
    bulge_shape = np.where((bt < 0.1)[:, None], [0.15, 0.05, 0.80], [0.75, 0.15, 0.10])
    seen_bar = np.where(bar > 0, sigmoid((bar - 0.25) / 0.08), 0.03)
    gz2 = {
        "smooth": np.stack([smooth, featured, artifact], axis=1),
        "edgeon": _two(np.where(kind == "disk", edge_on, 0.03)),
        "bar": _two(seen_bar),
        "spiral": _two(np.where(arms > 0, sigmoid((arm_strength - 0.2) / 0.07), 0.15)),
        "bulge": soft_bins(bt, [0.0, 0.25, 0.55, 0.85], 0.12),
        "odd": _two(np.select([kind == "merger", not_galaxy], [0.9, 0.3],
                              np.clip(0.09 + 0.03 * g["neighbours"] + 0.8 * g["ring_strength"]
                                      + 0.4 * g["dust_depth"] * (edge_on > 0.5), 0, 0.95))),
        "rounded": soft_bins(g["axis_ratio"].to_numpy(), [0.92, 0.62, 0.3], 0.12),
        "odd_feature": odd_feature,
        "bulge_shape": bulge_shape,
        "arms_winding": pitch_bins,
        "arms_number": arm_counts / arm_counts.sum(axis=1, keepdims=True),
    }
    return {**gz2, **other_seen(g, seen_bar)}


def other_seen(g: pd.DataFrame, seen_bar: np.ndarray) -> dict[str, np.ndarray]:
    """The perceptions GZ DECaLS and Euclid add: bar strength, five bulge sizes, merging, clumps, problems."""
    n, kind, bar = len(g), g["kind"].to_numpy(), g["bar_strength"].to_numpy()
    strong = sigmoid((bar - 0.5) / 0.1)
    merging = np.tile([0.85, 0.10, 0.04, 0.01], (n, 1))
    merging[g["neighbours"].to_numpy() > 1] = [0.60, 0.28, 0.09, 0.03]
    merging[kind == "merger"] = [0.03, 0.12, 0.35, 0.50]
    problem = np.tile([0.20, 0.20, 0.60], (n, 1))  # a galaxy called a problem: most likely a bad zoom
    problem[kind == "star"], problem[kind == "artifact"] = [0.90, 0.05, 0.05], [0.05, 0.90, 0.05]
    clumpy = sigmoid((g["knot_share"].to_numpy() - 0.25) / 0.06)
    return {
        "bar_strength": np.stack([seen_bar * strong, seen_bar * (1 - strong), 1 - seen_bar], axis=1),
        "bulge_size": soft_bins(g["bulge_to_total"].to_numpy(), [0.85, 0.6, 0.4, 0.2, 0.0], 0.1),
        "merging": merging,
        "clumps": _two(np.where(g["arms"].to_numpy() > 0, clumpy, 0.05)),
        "problem": problem,
        "artifact_kind": np.tile(BLIND["artifact_kind"], (n, 1)),
    }


def perceived_answers(name: str) -> tuple[str, ...]:
    """The answers of the perception ``name``, in the order its probabilities come."""
    if name in OTHER_ANSWERS:
        return OTHER_ANSWERS[name]
    return load_schema(PERCEPTIONS_TREE).question(name).answer_names


def perceived_order(question: Question) -> tuple[str, list[int]]:
    """The question's perception and, for each of its answers, where that answer sits in the perception; a tree
    the simulation cannot answer is a clear error naming the question."""
    name = question.perception or question.name
    known = perceived_answers(name) if name in BLIND else ()
    wanted = [answer.perceived or answer.name for answer in question.answers]
    if sorted(wanted) != sorted(known):
        raise SchemaError(f"simulated volunteers cannot answer {question.name!r}: its answers {wanted} are not those "
                          f"of a simulated perception ({name!r}: {list(known)}); set 'perception' and 'perceived' "
                          f"in the tree (GZ2's questions, or {', '.join(OTHER_ANSWERS)})")
    return name, [known.index(answer) for answer in wanted]


def perceived_orders(schema: Schema) -> dict[str, tuple[str, list[int]]]:
    """``perceived_order`` of every question: a tree the simulation cannot answer is refused before any work."""
    return {question.name: perceived_order(question) for question in schema.questions}


def answer_probabilities(galaxies: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """rho per question of ``schema``, shape (galaxies, answers), mixing what is seen with the blind guess."""
    orders = perceived_orders(schema)
    seen = seen_probabilities(galaxies)
    vis = visibility(galaxies)
    tilt = sigmoid((70 - galaxies["inclination"].to_numpy()) / 6)
    rho = {}
    for question in schema.questions:
        name, order = orders[question.name]
        v = vis if name in FIRST_LOOK_QUESTIONS else vis**FOLLOW_UP
        v = (v * tilt if name in FACE_ON_QUESTIONS else v)[:, None]
        mixed = v * seen[name][:, order] + (1 - v) * np.asarray(BLIND[name])[None, order]
        rho[question.name] = mixed / mixed.sum(axis=1, keepdims=True)
    return rho
