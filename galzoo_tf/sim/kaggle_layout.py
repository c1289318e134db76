"""A project in the Kaggle Galaxy Zoo challenge's layout, drawn from the synthetic universe: no download needed.

Galaxies and their simulated volunteers come from the embedded source (``prepare synthetic``'s
universe, GZ2-like SDSS colour images); each image is rendered, resampled to the release's
424x424 and saved as ``<GalaxyID>.jpg``; ``training_solutions_rev1.csv`` holds the 37 columns
computed from the simulated votes by the release's rule (each question's vote fractions times
the weight of the answers leading to it; ``galzoo_tf.kaggle``). Simulated volunteers walk the
whole tree, so the columns fit it exactly; real GZ2 counts need not (a question can have fewer
votes than the answers leading to it).

Run ``python -m galzoo_tf.sim.kaggle_layout OUT --n 3000`` to write one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from rich.progress import track

from galzoo_tf.data.sources.synthetic import RENDER_COLUMNS, load_synthetic
from galzoo_tf.kaggle import ID_COLUMN, as_columns, from_counts, kaggle_columns
from galzoo_tf.sim.render import render_galaxy

SOLUTIONS_FILE = "training_solutions_rev1.csv"
IMAGES_FOLDER = "images_training_rev1"
RELEASE_SIDE = 424  # the challenge's JPEGs
SURVEY = "sdss"  # GZ2's images: SDSS gri colour
FIRST_ID, LAST_ID = 100008, 999967  # the range of the release's GalaxyIDs


@dataclass
class KaggleProject:
    """Paths of a written project and its solutions table."""

    solutions: Path
    images: Path
    frame: pd.DataFrame


def solutions_frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The solutions table of n simulated SDSS galaxies (ids ascending, as the release) and the galaxies to render."""
    catalogue = load_synthetic(n, seed=seed, survey=SURVEY)
    schema, table = catalogue.schema, catalogue.table
    counts = {q.name: table[[schema.count_key(a) for a in q.answers]].to_numpy() for q in schema.questions}
    weighted = as_columns(schema, from_counts(schema, counts))
    ids = np.sort(np.random.default_rng(seed).choice(np.arange(FIRST_ID, LAST_ID + 1), n, replace=False))
    frame = pd.DataFrame(np.round(weighted, 6), columns=kaggle_columns(schema))
    frame.insert(0, ID_COLUMN, ids)
    return frame, table[list(RENDER_COLUMNS)]


def write_kaggle_project(root: Path, n: int = 40, seed: int = 0, image_size: int = RELEASE_SIDE,
                         progress: bool = False) -> KaggleProject:
    """Write ``training_solutions_rev1.csv`` and ``images_training_rev1/<GalaxyID>.jpg`` under ``root``."""
    frame, galaxies = solutions_frame(n, seed)
    images = Path(root) / IMAGES_FOLDER
    images.mkdir(parents=True, exist_ok=True)
    rows = zip(frame[ID_COLUMN], galaxies.to_dict("records"), strict=True)
    for galaxy_id, galaxy in track(rows, total=n, description="rendering", disable=not progress):
        image = Image.fromarray(render_galaxy(galaxy, SURVEY)).resize((image_size, image_size),
                                                                      Image.Resampling.LANCZOS)
        image.save(images / f"{galaxy_id}.jpg", quality=90)
    solutions = Path(root) / SOLUTIONS_FILE
    frame.to_csv(solutions, index=False)
    return KaggleProject(solutions, images, frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the project into")
    parser.add_argument("--n", type=int, default=3000, help="number of galaxies")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the galaxies, votes and ids")
    parser.add_argument("--image-size", type=int, default=RELEASE_SIDE, help="side of the JPEGs in pixels")
    args = parser.parse_args()
    project = write_kaggle_project(args.out, args.n, args.seed, args.image_size, progress=True)
    print(f"wrote {args.n} galaxies: {project.solutions}, {project.images}/")


if __name__ == "__main__":
    main()
