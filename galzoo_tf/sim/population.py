"""The synthetic galaxy populations: physical parameters drawn per galaxy, vectorised with numpy.

Two populations. ``gampen`` is Ghosh et al. (2022)'s Table 1, the HSC default: pure Sérsic
bulges and disks spanning the parameter space uniformly, for learning L_B/L_T, R_e and flux.
``magnitude-limited`` is the GZ2-like sky, the SDSS and DECaLS default: Euclidean number
counts (N(<m) ~ 10^(0.6 m)) make faint galaxies common, and sizes shrink with magnitude, so
small faint galaxies dominate as in GZ2. Kinds: ellipticals, bulge+disk galaxies (L_B/L_T
uniform in 0-1, GaMPEN §2) with optional bar, m = 1..6 logarithmic spiral arms with
star-forming knots, rings and dust lanes, rare mergers and rare stars/artifacts.
Every number that the renderer or the perception model needs is a column here, and the
columns starting with ``truth/`` go into the records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import gammainc, gammaincinv

KINDS = ("elliptical", "disk", "merger", "star", "artifact")
KIND_WEIGHTS = (0.40, 0.54, 0.035, 0.015, 0.01)
NOT_GALAXIES = ("star", "artifact")  # a bright star, or a satellite trail: GZ2's 'star or artifact'

BAR_SHARE = 0.5  # a bar of strength 1 holds this share of the disk light (taken from the disk)
BAR_LENGTH = 0.8  # bar half-light radius in units of the disk's
BAR_SERSIC, BAR_AXIS_RATIO = 0.5, 0.2
RING_FRACTION = 0.2  # of disks within 70 degrees of face-on: a rough share of inner and outer rings
SERSIC_STEP = 0.1  # Sérsic indices on a grid, so GalSim's per-index tables are reused across galaxies
AB_NJY = 31.4  # AB magnitude of 1 nJy: flux = 10 ** (-0.4 * (m - 31.4)) nJy
POPULATIONS = ("gampen", "magnitude-limited")

# Ghosh et al. (2022) Table 1: 75 % bulge + disk, the rest single components split evenly between
# disks (n 0.8-1.2) and bulges (n 3.5-5); every parameter uniform over its range.
GAMPEN_DOUBLE_FRACTION = 0.75
GAMPEN_FLUX_NJY = (1e3, 5e6)
GAMPEN_RADIUS = (0.1, 5.0)  # R_e (arcsec) of disks and single components
GAMPEN_BULGE_RADIUS = (0.1, 3.0)  # R_e (arcsec) of the bulge of a two-component galaxy
GAMPEN_AXIS_RATIO = (0.25, 1.0)
GAMPEN_BULGE_TWIST = 15.0  # degrees: the bulge's position angle differs from the disk's by up to this
DISK_THICKNESS = 0.12  # intrinsic axis ratio of an edge-on disk


@dataclass(frozen=True)
class Survey:
    """Magnitude range, band and framing of a simulated survey."""

    name: str
    bright: float  # magnitude range of the main galaxy
    faint: float
    zero_point: float  # flux = 10 ** (-0.4 * (m - zero_point)) in image units
    size_offset: float  # log10 R_e (arcsec) of a galaxy at magnitude `faint`
    min_size: float  # smallest R_e (arcsec) the sample admits
    population: str = "magnitude-limited"  # the default population of the survey (POPULATIONS)


SURVEYS = {
    # SDSS r band, GZ2's main sample: r < 17 and Petrosian R90 > 3" (R_e above ~1.3"); nanomaggies
    "sdss": Survey("sdss", 13.5, 17.0, 22.5, 0.33, 1.3),
    # HSC-Wide g band in nJy (AB zero point 31.4), GaMPEN's population; its magnitude-limited option is
    # GaMPEN's low-redshift sample roughly (17 < g < 21)
    "hsc": Survey("hsc", 17.0, 21.0, AB_NJY, 0.05, 0.3, "gampen"),
    # DECaLS r band, GZ DECaLS's sample (r < 19, larger galaxies than GZ2's faint end); nanomaggies
    "decals": Survey("decals", 14.0, 18.5, 22.5, 0.2, 1.5),
    "hsc-poor": Survey("hsc-poor", 17.0, 21.0, AB_NJY, 0.05, 0.3, "gampen"),  # the same galaxies, a worse camera
}


def magnitudes(n: int, survey: Survey, rng: np.random.Generator) -> np.ndarray:
    """Magnitudes from Euclidean counts dN/dm ~ 10^(0.6 m) between the survey's limits (inverse CDF)."""
    lo, hi = 10 ** (0.6 * survey.bright), 10 ** (0.6 * survey.faint)
    return np.log10(lo + rng.uniform(size=n) * (hi - lo)) / 0.6


def sersic_b(n: np.ndarray | float) -> np.ndarray:
    """b_n with P(2n, b_n) = 1/2, so that R_e encloses half the light."""
    return gammaincinv(2 * np.asarray(n, dtype=float), 0.5)


def enclosed_fraction(radius: float, n: float, r_e: float) -> float:
    """Fraction of a circular Sérsic profile's light inside ``radius``."""
    return float(gammainc(2 * n, sersic_b(n) * (radius / r_e) ** (1 / n)))


def combined_half_light_radius(fractions: list[float], indices: list[float], radii: list[float]) -> float:
    """Half-light radius of a sum of concentric circular Sérsic components (no PSF), by root finding."""
    def excess(radius: float) -> float:
        return sum(f * enclosed_fraction(radius, n, r) for f, n, r in zip(fractions, indices, radii, strict=True)) - 0.5

    return float(brentq(excess, 1e-4 * min(radii), 100 * max(radii)))


def _grid(values: np.ndarray) -> np.ndarray:
    return np.round(values / SERSIC_STEP) * SERSIC_STEP


def draw_population(n: int, rng: np.random.Generator, survey: str = "sdss",
                    population: str | None = None) -> pd.DataFrame:
    """One row per galaxy of ``population`` (default: the survey's) with its kind, structure and photometry."""
    spec = SURVEYS[survey]
    if (population or spec.population) == "gampen":
        return draw_gampen_population(n, rng)
    return draw_magnitude_limited(n, rng, spec)


def draw_magnitude_limited(n: int, rng: np.random.Generator, spec: Survey) -> pd.DataFrame:
    """The GZ2-like sky: Euclidean counts, sizes tied to magnitude, bars, arms, rings, mergers, stars."""
    kind = rng.choice(KINDS, size=n, p=KIND_WEIGHTS)
    is_disk = kind == "disk"
    magnitude = magnitudes(n, spec, rng)
    # bright galaxies are larger: ~0.2 dex per magnitude, 0.2 dex scatter (R_e of 1-10 arcsec in SDSS)
    log_size = spec.size_offset + 0.2 * (spec.faint - magnitude) + rng.normal(0, 0.2, n)
    log_size = np.maximum(log_size, np.log10(spec.min_size) + np.abs(rng.normal(0, 0.05, n)))
    bulge_to_total = np.where(is_disk, rng.uniform(0, 1, n), 1.0)
    not_galaxy = np.isin(kind, NOT_GALAXIES)
    bulge_to_total = np.where(not_galaxy, 0.0, bulge_to_total)
    disk_radius = 10 ** log_size * np.where(is_disk, 1.0, 0.0)
    bulge_radius = 10 ** log_size * np.where(is_disk, rng.uniform(0.2, 0.5, n), 1.0)
    inclination = np.degrees(np.arccos(rng.uniform(0, 1, n)))  # isotropic orientations
    disk_axis_ratio = np.sqrt(np.cos(np.radians(inclination)) ** 2 * (1 - DISK_THICKNESS**2) + DISK_THICKNESS**2)
    bulge_axis_ratio = np.where(is_disk, rng.uniform(0.75, 1.0, n), rng.uniform(0.3, 1.0, n))
    face_on_enough = inclination < 70
    barred = is_disk & face_on_enough & (rng.uniform(size=n) < 0.55) & (bulge_to_total < 0.8)
    spiral = is_disk & (rng.uniform(size=n) < 0.85) & (bulge_to_total < 0.85)
    arms = np.where(spiral, rng.choice([1, 2, 3, 4, 5, 6], size=n, p=[0.06, 0.5, 0.2, 0.12, 0.07, 0.05]), 0)
    frame = pd.DataFrame({
        "kind": kind,
        "magnitude": magnitude,
        "bulge_sersic": _grid(rng.uniform(3.5, 5.0, n)),
        "disk_sersic": _grid(rng.uniform(0.8, 1.2, n)),
        "bulge_radius": bulge_radius,
        "disk_radius": disk_radius,
        "bulge_axis_ratio": bulge_axis_ratio,
        "disk_axis_ratio": disk_axis_ratio,
        "position_angle": rng.uniform(0, 180, n),
        "bulge_twist": np.zeros(n),
        "bar_strength": np.where(barred, rng.uniform(0.15, 1.0, n), 0.0),
        "bar_angle": rng.uniform(0, 180, n),
        "arms": arms,
        "pitch": np.where(spiral, rng.uniform(8, 35, n), 0.0),
        "arm_strength": np.where(spiral, rng.uniform(0.25, 0.9, n), 0.0),
        "arm_phase": rng.uniform(0, 360, n),
        "inclination": np.where(is_disk, inclination, 0.0),
        "bulge_to_total": bulge_to_total,
        # merger: a companion of similar brightness overlapping the main galaxy
        "companion_ratio": np.where(kind == "merger", rng.uniform(0.3, 1.0, n), 0.0),
        "companion_offset": rng.uniform(0.8, 2.0, n),
        "companion_angle": rng.uniform(0, 360, n),
        "neighbours": rng.poisson(0.7, n),
        "field_stars": rng.poisson(0.6, n),
        "noise_seed": rng.integers(0, 2**31 - 1, n),
    })
    frame = frame.assign(**structure_details(frame, rng))
    frame["axis_ratio"] = np.where(is_disk, frame["disk_axis_ratio"], frame["bulge_axis_ratio"])
    r_e = np.array([half_light_radius(row) for row in frame.itertuples()])
    # the sample's size limit applies to the whole galaxy: grow the ones below it, keeping their shape
    target = np.where(not_galaxy, 0.0, np.maximum(r_e, spec.min_size * (1 + np.abs(rng.normal(0, 0.1, n)))))
    grow = np.divide(target, r_e, out=np.ones(n), where=r_e > 0)
    frame["bulge_radius"] *= grow
    frame["disk_radius"] *= grow
    frame["r_e_arcsec"] = target
    return frame


def draw_gampen_population(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Ghosh et al. (2022) Table 1: isolated Sérsic bulges and disks, fluxes in nJy, no bars, arms or neighbours.

    Two-component galaxies draw L_B/L_T uniform in 0-1 and the total flux uniform, then split it (§2);
    single components are pure disks (L_B/L_T = 0) or pure bulges (1). R_e is the whole galaxy's.
    """
    double = rng.uniform(size=n) < GAMPEN_DOUBLE_FRACTION
    single_disk = ~double & (rng.uniform(size=n) < 0.5)
    has_disk = double | single_disk
    bulge_to_total = np.where(double, rng.uniform(0, 1, n), np.where(single_disk, 0.0, 1.0))
    flux = rng.uniform(*GAMPEN_FLUX_NJY, n)
    disk_axis_ratio = rng.uniform(*GAMPEN_AXIS_RATIO, n)
    cos_inclination = np.sqrt(np.clip((disk_axis_ratio**2 - DISK_THICKNESS**2) / (1 - DISK_THICKNESS**2), 0, 1))
    zeros = np.zeros(n)
    frame = pd.DataFrame({
        "kind": np.where(has_disk, "disk", "elliptical"),
        "magnitude": AB_NJY - 2.5 * np.log10(flux),
        "bulge_sersic": _grid(rng.uniform(3.5, 5.0, n)),
        "disk_sersic": _grid(rng.uniform(0.8, 1.2, n)),
        "bulge_radius": np.where(double, rng.uniform(*GAMPEN_BULGE_RADIUS, n), rng.uniform(*GAMPEN_RADIUS, n)),
        "disk_radius": np.where(has_disk, rng.uniform(*GAMPEN_RADIUS, n), 0.0),
        "bulge_axis_ratio": rng.uniform(*GAMPEN_AXIS_RATIO, n),
        "disk_axis_ratio": disk_axis_ratio,
        "position_angle": rng.uniform(-90, 90, n),
        "bulge_twist": np.where(double, rng.uniform(-GAMPEN_BULGE_TWIST, GAMPEN_BULGE_TWIST, n), 0.0),
        "bar_strength": zeros, "bar_angle": zeros, "arms": np.zeros(n, dtype=int), "pitch": zeros,
        "arm_strength": zeros, "arm_phase": zeros,
        "inclination": np.where(has_disk, np.degrees(np.arccos(cos_inclination)), 0.0),
        "bulge_to_total": bulge_to_total,
        "companion_ratio": zeros, "companion_offset": np.ones(n), "companion_angle": zeros,
        "neighbours": np.zeros(n, dtype=int), "field_stars": np.zeros(n, dtype=int),
        "noise_seed": rng.integers(0, 2**31 - 1, n),
        "ring_strength": zeros, "ring_radius": np.ones(n), "dust_depth": zeros, "knot_share": zeros,
        "colour_offset": zeros,
    })
    frame["axis_ratio"] = np.where(has_disk, frame["disk_axis_ratio"], frame["bulge_axis_ratio"])
    frame["r_e_arcsec"] = [half_light_radius(row) for row in frame.itertuples()]
    return frame


def structure_details(frame: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rings, dust lanes, star-forming knots and colour scatter (drawn after the rest, so earlier draws stand).

    About a fifth of disks seen within 70 degrees of face-on carry an inner or outer ring; most edge-on
    disks show a dust lane; spiral arms put part of their light in knots; every galaxy's colour scatters.
    """
    n = len(frame)
    disk = (frame["kind"] == "disk").to_numpy()
    inclination = frame["inclination"].to_numpy()
    ringed = disk & (inclination < 70) & (rng.uniform(size=n) < RING_FRACTION)
    dusty = disk & (inclination > 75) & (rng.uniform(size=n) < 0.7)
    return {
        "ring_strength": np.where(ringed, rng.uniform(0.3, 1.0, n), 0.0),
        "ring_radius": rng.uniform(0.8, 2.2, n),  # in disk scale radii (R_e of the disk)
        "dust_depth": np.where(dusty, rng.uniform(0.3, 0.9, n), 0.0),
        "knot_share": np.where(frame["arms"].to_numpy() > 0, rng.uniform(0.1, 0.4, n), 0.0),
        "colour_offset": rng.normal(0.0, 0.06, n),  # magnitudes added to g - r (and half to r - i)
    }


def half_light_radius(row) -> float:
    """R_e of the whole galaxy without PSF (circularised), from its bulge, disk and bar components."""
    if row.kind in NOT_GALAXIES:
        return 0.0
    if row.kind != "disk":
        return float(row.bulge_radius)
    disk = 1 - row.bulge_to_total
    bar = disk * BAR_SHARE * row.bar_strength
    fractions = [row.bulge_to_total, disk - bar, bar]
    indices = [row.bulge_sersic, row.disk_sersic, 0.5]
    radii = [row.bulge_radius, row.disk_radius, max(BAR_LENGTH * row.disk_radius, 1e-3)]
    kept = [(f, n, r) for f, n, r in zip(fractions, indices, radii, strict=True) if f > 1e-6]
    return combined_half_light_radius(*map(list, zip(*kept, strict=True)))
