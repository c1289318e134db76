"""Realism report: image statistics of the simulated sky beside real cutouts, measured the same way.

    python bench/realism.py --synthetic data/demo/synthetic --real ../shared/data/decals_rings/images

Background rms, colour noise and sky level, galaxy size relative to the frame, concentration, blue-green
colour of the centre and the outskirts, and asymmetry (galzoo_tf.sim.realism) of --n
images from each side, both resampled to --size px with the same Lanczos filter (real DECaLS 424 px
cutouts are averaged down, which lowers their pixel noise); per statistic the median, the 16th-84th
percentiles and the KS distance of the simulations to the real images; and the colour
gradient of bright rendered ellipticals and disks with and without noise (how much of
it is colour). Writes realism.json,
realism.png (histograms) and realism-montage.png (simulated and real side by side) in --out.
Any folder of real RGB cutouts works as --real; docs/synthetic.md shows the DECaLS run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from itertools import islice
from pathlib import Path

import numpy as np

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "decals_rings" / "images"


def synthetic_images(records: Path, count: int, size: int) -> tuple[list[np.ndarray], dict]:
    """The first ``count`` simulated cutouts of the test split (uint8 RGB), resampled to ``size``."""
    from PIL import Image

    from galzoo_tf.data.inputs import RecordSource

    source = RecordSource(records, split="test")
    images = [image for batch in islice(source.batches(64), -(-count // 64)) for image in batch.images][:count]
    resized = [np.asarray(Image.fromarray(i).resize((size, size), Image.Resampling.LANCZOS)) for i in images]
    return resized, source.describe()


def real_images(folder: Path, count: int, size: int, seed: int) -> tuple[list[np.ndarray], dict]:
    """``count`` real cutouts drawn with the seed from every image in the folder, resampled to ``size``."""
    from galzoo_tf.data.images import load_image
    from galzoo_tf.data.inputs import FolderSource
    from galzoo_tf.data.layout import ImageSpec

    source = FolderSource(folder, ImageSpec((size, size, 3)))
    chosen = np.random.default_rng(seed).permutation(len(source.files))[:count]
    return [load_image(source.files[i], size) for i in sorted(chosen)], source.describe()


def rendered_colour_gradients(count: int = 6) -> dict[str, list[float]]:
    """Colour gradients of bright (r = 14, R_e 5") ellipticals and face-on disks with a 40 % bulge, rendered
    with the SDSS noise and without it: how much of the measured gradient is colour and how much noise."""
    from dataclasses import replace

    from galzoo_tf.sim import render
    from galzoo_tf.sim.realism import bright_twins, measure

    kinds = bright_twins(count)
    camera, result = render.CAMERAS["sdss"], {}
    noiseless = replace(camera, sky_sigma=tuple(1e-6 for _ in camera.sky_sigma), gain=0.0)
    try:
        for label, setting in (("with noise", camera), ("without noise", noiseless)):
            render.CAMERAS["sdss"] = setting
            for kind, table in kinds.items():
                result[f"{kind}, {label}"] = [round(measure(render.render_galaxy(g, "sdss"))["colour_gradient"], 3)
                                              for g in table.to_dict("records")]
    finally:
        render.CAMERAS["sdss"] = camera
    return result


def summary(side: str, row: dict) -> str:
    """One side's median [16th, 84th percentile] (and KS distance), or n/a where nothing was measured."""
    if not row:
        return f"{side} n/a"
    distance = f" KS {row['ks_to_real']:.2f}" if "ks_to_real" in row else ""
    return f"{side} {row['median']:+.4f} [{row['p16']:+.4f}, {row['p84']:+.4f}]{distance}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=Path, default=Path("data/demo/synthetic"), help="prepared records")
    parser.add_argument("--real", type=Path, default=SHARED_REAL, help="a folder of real RGB cutouts")
    parser.add_argument("--n", type=int, default=400, help="images per side")
    parser.add_argument("--size", type=int, default=256, help="both sides are resampled to this size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("data/bench/realism"))
    args = parser.parse_args()
    if not args.real.is_dir():
        raise SystemExit(f"{args.real}: no folder of real images (the DECaLS rings come with ../shared)")
    from galzoo_tf import __version__
    from galzoo_tf.plots import montage
    from galzoo_tf.sim.realism import compare, figure, image_statistics

    simulated, simulated_input = synthetic_images(args.synthetic, args.n, args.size)
    real, real_input = real_images(args.real, args.n, args.size, args.seed)
    sides = {"real": image_statistics(real), "simulated": image_statistics(simulated)}
    report = {"command": "python " + " ".join(sys.argv), "seed": args.seed, "galzoo_version": __version__,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "size": args.size,
              "inputs": {"simulated": simulated_input, "real": real_input}, "statistics": compare(sides),
              "rendered_colour_gradients": rendered_colour_gradients()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "realism.json").write_text(json.dumps(report, indent=1))
    figure(sides, args.out / "realism.png")
    pairs = [image for pair in zip(simulated[:12], real[:12], strict=False) for image in pair]
    montage(pairs, ["simulated", "real"] * (len(pairs) // 2), args.out / "realism-montage.png", columns=6,
            title="simulated (left of each pair) and real (right)")
    for statistic, row in report["statistics"].items():
        print(f"{statistic:17s} " + "  ".join(summary(side, row[side]) for side in ("real", "simulated")))
    for case, gradients in report["rendered_colour_gradients"].items():
        print(f"colour gradient, {case}: {gradients}")


if __name__ == "__main__":
    main()
