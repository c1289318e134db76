"""The embedded default source: a simulated universe of galaxies with simulated GZ2 volunteers.

Galaxies are drawn (``sim.population``), their true answer probabilities rho derived
(``sim.perception``), volunteers walk the tree (``sim.volunteers``), and images are
rendered with GalSim in the writer's worker processes (``sim.render``). Every record
carries the truth: physical parameters and rho of every answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galzoo_tf.data.layout import ImageSpec
from galzoo_tf.data.sources.table import Catalogue
from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import Schema, load_schema
from galzoo_tf.sim.perception import answer_probabilities, visibility
from galzoo_tf.sim.population import POPULATIONS, SURVEYS, draw_population
from galzoo_tf.sim.render import CAMERAS, RGB_SURVEYS, render_chunk
from galzoo_tf.sim.volunteers import simulate_votes, volunteer_numbers

# What the renderer reads of each galaxy (passed to the worker processes).
RENDER_COLUMNS = (
    "kind", "magnitude", "bulge_sersic", "disk_sersic", "bulge_radius", "disk_radius", "bulge_axis_ratio",
    "disk_axis_ratio", "position_angle", "bar_strength", "bar_angle", "arms", "pitch", "arm_strength",
    "arm_phase", "inclination", "bulge_to_total", "companion_ratio", "companion_offset", "companion_angle",
    "neighbours", "field_stars", "noise_seed", "r_e_arcsec", "ring_strength", "ring_radius", "dust_depth",
    "knot_share", "colour_offset", "bulge_twist", "survey",
)


def truth_columns(galaxies: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ``truth/...`` float features stored in every record (flux at the survey's zero point: nJy for HSC)."""
    zero_point = galaxies["survey"].map(lambda name: SURVEYS[name].zero_point)
    return {
        "truth/bulge_to_total": galaxies["bulge_to_total"],
        "truth/r_e_arcsec": galaxies["r_e_arcsec"],
        "truth/flux": 10 ** (-0.4 * (galaxies["magnitude"] - zero_point)),
        "truth/magnitude": galaxies["magnitude"],
        "truth/axis_ratio": galaxies["axis_ratio"],
        "truth/bar_strength": galaxies["bar_strength"],
        "truth/arms": galaxies["arms"].astype(float),
        "truth/pitch_deg": galaxies["pitch"],
        "truth/inclination_deg": galaxies["inclination"],
        "truth/ring_strength": galaxies["ring_strength"],
        "truth/dust_depth": galaxies["dust_depth"],
        "truth/merger": (galaxies["kind"] == "merger").astype(float),
        "truth/star": (galaxies["kind"] == "star").astype(float),
        "truth/artifact": (galaxies["kind"] == "artifact").astype(float),
        "truth/visibility": visibility(galaxies),
    }


def survey_mix(survey: str) -> list[str]:
    """The surveys of ``--survey`` ('sdss', or a mix such as 'sdss+decals'), checked to share one image shape."""
    surveys = survey.split("+")
    unknown = [name for name in surveys if name not in SURVEYS]
    if unknown or len(set(surveys)) < len(surveys):
        raise BadInputError("bad option", f"--survey must be one of {', '.join(SURVEYS)} or a mix of different "
                                          f"ones joined by '+', not {survey!r}")
    if len({image_spec(name) for name in surveys}) > 1:
        raise BadInputError("bad option", f"--survey {survey}: a mix needs surveys with the same image shape "
                                          f"({', '.join(RGB_SURVEYS)} share theirs)")
    return surveys


def image_spec(survey: str) -> ImageSpec:
    """How the records store a survey's images: colour uint8 cutouts, or float32 single-band frames."""
    camera = CAMERAS[survey]
    return (ImageSpec((camera.size, camera.size, 3), "uint8", "raw") if survey in RGB_SURVEYS
            else ImageSpec((camera.size, camera.size, 1), "float32", "raw"))


def draw_surveys(n: int, surveys: list[str], rng: np.random.Generator, population: str | None = None) -> pd.DataFrame:
    """n galaxies, each seen by one of ``surveys`` drawn with equal odds and drawn from that survey's sample
    (``population``, or each survey's own).

    A single survey draws exactly as before the mix existed, so its seeds keep their galaxies.
    """
    if len(surveys) == 1:
        return draw_population(n, rng, surveys[0], population).assign(survey=surveys[0])
    chosen = rng.choice(surveys, size=n)
    parts = [draw_population(int((chosen == name).sum()), rng, name, population).assign(survey=name).set_index(
        np.flatnonzero(chosen == name)) for name in surveys]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def check_population(population: str | None) -> None:
    """A clear error for an unknown ``--population``."""
    if population is not None and population not in POPULATIONS:
        raise BadInputError("bad option", f"--population must be one of {', '.join(POPULATIONS)}, "
                                          f"not {population!r}")


def load_synthetic(n: int, *, seed: int = 0, survey: str = "sdss", overdispersion: float = 0.0,
                   schema: Schema | None = None, population: str | None = None) -> Catalogue:
    """Draw n galaxies (of ``population``, default the survey's) and their votes; the writer's workers render."""
    surveys = survey_mix(survey)
    check_population(population)
    schema = schema or load_schema("gz2")
    rng = np.random.default_rng(seed)
    galaxies = draw_surveys(n, surveys, rng, population)
    rho = answer_probabilities(galaxies, schema)
    counts = simulate_votes(schema, rho, volunteer_numbers(n, rng), rng, overdispersion)
    totals = {schema.total_key(q): sum(counts[schema.count_key(a)] for a in q.answers) for q in schema.questions}
    rho_columns = {f"truth/rho/{a.key}": rho[q.name][:, i] for q in schema.questions
                   for i, a in enumerate(q.answers)}
    floats = {**truth_columns(galaxies), **rho_columns}
    ints = {**counts, **totals}
    table = pd.concat([pd.DataFrame({"id": [f"synthetic-{seed}-{i:07d}" for i in range(n)]}),
                       galaxies[list(RENDER_COLUMNS)], pd.DataFrame(ints), pd.DataFrame(floats)], axis=1)
    spec = image_spec(surveys[0])
    return Catalogue("synthetic", schema, table, list(ints), list(floats),
                     inputs={"simulation": {"survey": survey, "n": n, "seed": seed, "overdispersion": overdispersion,
                                             "population": population or SURVEYS[surveys[0]].population}},
                     cuts=[("simulated galaxies", n)], loader=render_chunk, item_columns=RENDER_COLUMNS,
                     image_spec=spec)
