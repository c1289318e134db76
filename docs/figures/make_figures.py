"""Regenerate the figures of docs/synthetic.md: montages of simulated and real galaxies, vote statistics.

    .venv/bin/python docs/figures/make_figures.py [--shared ../shared]

Needs the real data in ../shared/data (the DECaLS cutouts and the Stripe 82 vote table).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def as_jpeg(png: Path) -> None:
    """Keep docs light: montages are stored as JPEG (a fifth of the PNG's size)."""
    from PIL import Image

    with Image.open(png) as image:
        image.convert("RGB").save(png.with_suffix(".jpg"), quality=85)
    png.unlink()


def synthetic_montage() -> None:
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.synthetic import load_synthetic
    from galzoo_tf.plots import record_montage

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "synthetic"
        write_records(load_synthetic(120, seed=0), out, PrepareOptions(test_size=0.1), workers=2)
        as_jpeg(record_montage(out, HERE / "synthetic_montage.png", count=24))


def decals_montage(shared: Path) -> None:
    from PIL import Image

    from galzoo_tf.plots import montage

    root = shared / "data" / "decals_rings"
    catalogue = pd.read_csv(root / "catalogue.csv").sample(24, random_state=0)
    images, captions = [], []
    for row in catalogue.to_dict("records"):
        with Image.open(root / "images" / f"{row['iauname']}.png") as image:
            images.append(np.asarray(image.convert("RGB").resize((256, 256), Image.Resampling.LANCZOS)))
        featured = row["smooth-or-featured_featured-or-disk_fraction"]
        captions.append(f"{row['iauname'][:10]}\nring {row['ring']}, featured fraction {featured:.2f}")
    as_jpeg(montage(images, captions, HERE / "decals_montage.png",
                    title="real GZ DECaLS cutouts (shared/data/decals_rings)"))


def vote_statistics_figure(shared: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from galzoo_tf.data.sources.synthetic import load_synthetic
    from galzoo_tf.schema import load_schema
    from galzoo_tf.sim.statistics import FRACTIONS, real_vote_counts, vote_fraction, vote_statistics

    schema = load_schema("gz2")
    real = real_vote_counts(shared / "data" / "gz2_stripe82_counts" / "table5.csv.gz", schema)
    catalogue = load_synthetic(20000, seed=0)
    simulated = catalogue.table[catalogue.int_features]
    numbers = {"real (Stripe 82, Willett et al. 2013)": vote_statistics(real, schema),
               "simulated (galzoo prepare synthetic, n=20000, seed 0)": vote_statistics(simulated, schema)}
    (HERE / "vote_statistics.json").write_text(json.dumps(numbers, indent=1) + "\n")
    figure, axes = plt.subplots(1, 5, figsize=(20, 3.8))
    names = [q.name for q in schema.questions]
    x = np.arange(len(names))
    for offset, (label, stats) in zip((-0.2, 0.2), numbers.items(), strict=True):
        axes[0].bar(x + offset, [stats["median_votes_ratio"][q] for q in names], 0.4, label=label.split(" (")[0])
    axes[0].set_xticks(x, names, rotation=60, fontsize=7)
    axes[0].set_title("median N(question) / N(smooth)")
    axes[0].legend(fontsize=7)
    for axis, (question, answer, min_votes) in zip(axes[1:], FRACTIONS, strict=True):
        for votes, label in ((real, "real"), (simulated, "simulated")):
            fraction = vote_fraction(votes, schema, question, answer, min_votes)
            axis.hist(fraction, bins=np.linspace(0, 1, 21), density=True, histtype="step", lw=2,
                      label=f"{label} ({fraction.size:,})")
        axis.set_title(f"k/N {question}/{answer} (N >= {min_votes})")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(HERE / "vote_statistics.png", dpi=70)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared", help="the shared/ folder")
    args = parser.parse_args()
    synthetic_montage()
    decals_montage(args.shared)
    vote_statistics_figure(args.shared)


if __name__ == "__main__":
    main()
