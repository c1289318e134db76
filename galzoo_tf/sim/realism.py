"""How real the simulated sky looks: image statistics measured the same way on simulated and real cutouts.

Every statistic is measured on the RGB cutout a volunteer or a model sees (floats 0-1, the
galaxy at the centre of the frame, as GZ2 and DECaLS cutouts are), so the two sides are
comparable whatever made them. Colours compare the blue and green channels (g and r in both
SDSS gri and DECaLS grz composites) in magnitudes of the stretched image's flux.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

STATISTICS = {
    "background_rms": "rms of the sky (1.4826 MAD of the frame's border, grey level 0-1)",
    "background_chroma": "rms of the sky's colour (1.4826 MAD of blue - red in the border): coloured noise",
    "sky_level": "median grey level of the frame's border",
    "galaxy_size": "half-light radius / frame width",
    "concentration": "5 log10(r80 / r20) of the light about the centre",
    "colour_centre": "-2.5 log10(blue / green) inside the half-light radius",
    "colour_outskirts": "-2.5 log10(blue / green) between 1 and 2 half-light radii",
    "colour_gradient": "colour_outskirts - colour_centre (negative: bluer outside)",
    "asymmetry": "sum |I - I rotated 180 deg| / 2 sum |I| inside 2 half-light radii",
}
BORDER = 1 / 8  # the border strip, as a fraction of the frame width, that measures the sky
APERTURE = 0.45  # the largest radius of the light profile, as a fraction of the frame width


def _radii(width: int) -> np.ndarray:
    """Each pixel's distance from the frame centre."""
    centre = (width - 1) / 2
    y, x = np.mgrid[:width, :width]
    return np.hypot(x - centre, y - centre)


def _border(image: np.ndarray) -> np.ndarray:
    """The pixels of the frame's border strip, where the sky is measured."""
    strip = max(1, int(round(image.shape[0] * BORDER)))
    mask = np.ones(image.shape[:2], bool)
    mask[strip:-strip, strip:-strip] = False
    return image[mask]


def _profile_radius(radii: np.ndarray, light: np.ndarray, fraction: float) -> float:
    """The radius enclosing ``fraction`` of the light inside the aperture (linear between pixels)."""
    order = np.argsort(radii, kind="stable")
    cumulative = np.maximum.accumulate(np.cumsum(light[order]))  # noise makes it dip; interp needs it rising
    if cumulative[-1] <= 0:
        return float("nan")
    return float(np.interp(fraction * cumulative[-1], cumulative, radii[order]))


def _sky(border: np.ndarray) -> np.ndarray:
    """The sky per channel: the mean of the border. Not the median nor a clipped mean: a stretch that floors
    the noise at 0 skews it, and the flux sums inside apertures see its mean. (Stars in the border raise it
    a little, which shrinks the measured profile.)"""
    return border.mean(axis=0)


def _colour(blue: float, green: float) -> float:
    """-2.5 log10(blue / green): larger is redder; NaN where either sum is not positive."""
    return float(-2.5 * np.log10(blue / green)) if blue > 0 and green > 0 else float("nan")


def measure(image: np.ndarray) -> dict[str, float]:
    """The statistics of one square RGB cutout (H, W, 3) of floats 0-1 or uint8."""
    pixels = image.astype(np.float64) / 255 if image.dtype == np.uint8 else image.astype(np.float64)
    if pixels.ndim != 3 or pixels.shape[0] != pixels.shape[1] or pixels.shape[2] != 3:
        raise ValueError(f"measure needs a square RGB image, not shape {pixels.shape}")
    width = pixels.shape[0]
    sky = _sky(_border(pixels))
    channels = pixels - sky
    grey_border = _border(pixels.mean(axis=-1))
    chroma_border = _border(pixels[..., 2] - pixels[..., 0])
    light = channels.mean(axis=-1)
    radii = _radii(width)
    inside = radii <= APERTURE * width
    r20, r50, r80 = (_profile_radius(radii[inside], light[inside], f) for f in (0.2, 0.5, 0.8))
    centre, outskirts = radii <= r50, (radii > r50) & (radii <= 2 * r50)
    colour_centre = _colour(channels[centre, 2].sum(), channels[centre, 1].sum())
    colour_outskirts = _colour(channels[outskirts, 2].sum(), channels[outskirts, 1].sum())
    core = radii <= (max(2 * r50, 3) if np.isfinite(r50) else -1)  # no profile: no core, asymmetry NaN
    rotated = np.rot90(light, 2)
    total = np.abs(light[core]).sum()
    return {
        "background_rms": float(1.4826 * np.median(np.abs(grey_border - np.median(grey_border)))),
        "background_chroma": float(1.4826 * np.median(np.abs(chroma_border - np.median(chroma_border)))),
        "sky_level": float(np.median(grey_border)),
        "galaxy_size": r50 / width,
        "concentration": float(5 * np.log10(r80 / r20)) if r20 > 0 else float("nan"),
        "colour_centre": colour_centre,
        "colour_outskirts": colour_outskirts,
        "colour_gradient": colour_outskirts - colour_centre,
        "asymmetry": float(np.abs(light - rotated)[core].sum() / (2 * total)) if total > 0 else float("nan"),
    }


def bright_twins(count: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """``count`` bright (r = 14, R_e 5"), isolated face-on disks with a 40 % bulge and no arms or bar, and
    as many ellipticals: galaxies whose colour gradient the renderer must show (bulges redder than disks)."""
    from galzoo_tf.sim.population import draw_population

    galaxies = draw_population(max(3000, 10 * count), np.random.default_rng(seed))
    disks = galaxies[galaxies["kind"] == "disk"].head(count)
    grow = 5.0 / disks["r_e_arcsec"]  # R_e 5": both components grown, as draw_population grows small galaxies
    bright = dict(magnitude=14.0, r_e_arcsec=5.0, neighbours=0, field_stars=0, colour_offset=0.0, survey="sdss")
    plain = dict(bar_strength=0.0, arms=0, ring_strength=0.0, dust_depth=0.0, knot_share=0.0)
    return {"disk, 40 % bulge": disks.assign(bulge_to_total=0.4, disk_axis_ratio=1.0, inclination=0.0,
                                             bulge_radius=disks["bulge_radius"] * grow,
                                             disk_radius=disks["disk_radius"] * grow, **plain, **bright),
            "elliptical": disks.assign(kind="elliptical", bulge_to_total=1.0, bulge_radius=5.0, **plain, **bright)}


def image_statistics(images: Iterable[np.ndarray]) -> pd.DataFrame:
    """One row of ``STATISTICS`` per image."""
    return pd.DataFrame([measure(image) for image in images], columns=list(STATISTICS))


def compare(sides: Mapping[str, pd.DataFrame]) -> dict:
    """Per statistic and side: median and 16th-84th percentiles; and the two-sample KS distance of each side
    to the first (0: the same distribution, 1: no overlap)."""
    from scipy.stats import ks_2samp

    names = list(sides)
    reference = sides[names[0]]
    report: dict = {}
    for statistic, meaning in STATISTICS.items():
        row: dict = {"meaning": meaning}
        for name, table in sides.items():
            values = table[statistic].dropna().to_numpy()
            row[name] = {"median": float(np.median(values)), "p16": float(np.percentile(values, 16)),
                         "p84": float(np.percentile(values, 84)), "n": int(len(values))} if len(values) else {}
            known = reference[statistic].dropna()
            if name != names[0] and len(values) and len(known):
                row[name]["ks_to_" + names[0]] = float(ks_2samp(values, known).statistic)
        report[statistic] = row
    return report


def figure(sides: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """Histograms of every statistic, one colour per side, on shared bins."""
    from galzoo_tf.plots import figure_grid

    columns = 4
    rows = -(-len(STATISTICS) // columns)
    with figure_grid(path, "image statistics, measured the same way on each side", rows, columns,
                     (3.6, 2.8)) as axes:
        for axis, statistic in zip(axes.flat, STATISTICS, strict=False):
            values = {name: table[statistic].dropna().to_numpy() for name, table in sides.items()}
            pooled = np.concatenate(list(values.values()))
            low, high = np.percentile(pooled, [1, 99]) if len(pooled) else (0.0, 1.0)
            bins = np.linspace(low, high, 30) if high > low else np.linspace(low - 0.5, low + 0.5, 3)
            for name, side in values.items():
                axis.hist(side, bins=bins, histtype="step", density=True, label=f"{name} ({len(side)})")
            axis.set_xlabel(statistic, fontsize=8)
            axis.tick_params(labelsize=7)
        axes.flat[0].legend(fontsize=7)
        for axis in list(axes.flat)[len(STATISTICS):]:
            axis.axis("off")
    return path
