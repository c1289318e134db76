"""Rendering synthetic galaxies with GalSim: PSF-convolved components, sky and shot noise.

Each component (bulge, disk, spiral arms with star-forming knots, ring, bar, merger companion,
neighbours, field stars) is drawn once at unit flux; bands are linear mixtures with
per-component colours (red bulges, blue arms), so a three-band image costs one draw per
component, not per band. Edge-on disks may carry a dust lane that reddens what it dims.
SDSS and DECaLS cutouts are framed like GZ2's (pixel scale proportional to the galaxy's
Petrosian R90), noise is drawn on the native grid and resampled, and the bands become RGB
with each survey's own mapping: Lupton et al. (2004) asinh for SDSS gri, per-band asinh for
DECaLS grz. Every image also gets its own look (seeing, depth, sky level, colour balance,
stretch, JPEG quality). HSC images are single-band g at 0.168"/px, float32 nJy per pixel.

Workers call ``render_chunk``; each galaxy's look, knots and noise come from its own seed, so
the images do not depend on how galaxies are split between processes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import galsim
import numpy as np
from astropy.visualization import make_lupton_rgb
from PIL import Image
from scipy.signal import fftconvolve

from galzoo_tf.data.images import encode_png
from galzoo_tf.sim.population import BAR_AXIS_RATIO, BAR_LENGTH, BAR_SERSIC, BAR_SHARE, SURVEYS

# Colours of each kind of component, g - r and r - i (r - z is taken as 1.7 (r - i)): red old bulges
# and bars, bluer disks, blue star-forming arms, knots and rings (typical SDSS colours of each).
COLOURS = {
    "bulge": (0.78, 0.40), "disk": (0.55, 0.30), "arms": (0.30, 0.12), "bar": (0.70, 0.36),
    "ring": (0.40, 0.18), "companion": (0.65, 0.34), "neighbours": (0.60, 0.30), "stars": (0.45, 0.15),
}
R_Z_PER_R_I = 1.7
DUST_EXTINCTION = {"g": 1.0, "r": 0.72, "i": 0.55, "z": 0.40}  # A_band / A_g of a Milky-Way-like dust law


@dataclass(frozen=True)
class Camera:
    """Pixel grid, bands, seeing, noise and colour mapping of a simulated survey image."""

    size: int
    native_scale: float  # arcsec per detector pixel
    bands: tuple[str, ...]
    seeing: tuple[float, float]  # range of PSF FWHM in arcsec
    sky_sigma: tuple[float, ...]  # noise per native pixel, per band, in nanomaggies (image units for HSC)
    gain: float  # image flux units per detected photon, for shot noise
    colour_scales: tuple[float, ...] = ()  # per-band multipliers (or divisors, DECaLS) before the stretch


CAMERAS = {
    # SDSS gri: sky noise from dark-sky brightness (22.0, 20.9, 20.3 mag/arcsec^2) and about 760, 1130
    # and 830 photoelectrons per nanomaggy; colours balanced so the main sample's median galaxy
    # (g - r 0.65, r - i 0.33) is grey, then the Lupton asinh stretch.
    "sdss": Camera(256, 0.396, ("g", "r", "i"), (1.0, 1.9), (0.018, 0.025, 0.038), 0.0009, (1.82, 1.0, 0.74)),
    # DECaLS grz: 5-sigma depths near 24.7, 23.9 and 23.0; the colour mapping of the GZ DECaLS
    # subjects (per-band asinh of flux over g 0.008, r 0.014, z 0.019 nanomaggies, from -0.5 to 300).
    "decals": Camera(256, 0.262, ("g", "r", "z"), (0.9, 1.7), (0.0031, 0.0074, 0.018), 0.0008,
                     (0.008, 0.014, 0.019)),
    # HSC-Wide g band in nJy: 2.0 nJy of sky noise per 0.168" pixel (a 5-sigma point-source depth near
    # g = 26.5) and 0.115 nJy per photon
    "hsc": Camera(239, 0.168, ("g",), (0.7, 1.0), (2.0,), 0.115),
    # a second HSC-like setting for transfer learning: worse seeing and twice the sky noise
    "hsc-poor": Camera(239, 0.168, ("g",), (1.1, 1.5), (4.0,), 0.115),
}
RGB_SURVEYS = ("sdss", "decals")
SDSS_Q, SDSS_SKY_OFFSET = 20.0, 0.02  # asinh softening and the offset that keeps the sky off black
DECALS_RANGE = (-0.5, 300.0)  # scaled flux shown as black and as white


@dataclass(frozen=True)
class Look:
    """How one image departs from its survey's nominal rendering: domain randomisation, drawn per galaxy.

    Real cutouts vary in seeing, depth, sky subtraction, colour calibration and compression; a model
    trained across these learns the galaxy rather than one rendering.
    """

    seeing: float  # PSF FWHM, arcsec
    depth: float  # sky noise in units of the survey's nominal noise
    colour_balance: tuple[float, ...]  # per-band gain errors
    sky_offset: float  # residual sky level in units of the nominal offset
    stretch: float  # multiplies the asinh softening
    jpeg_quality: int  # 0 for no compression


def draw_look(camera: Camera, rng: np.random.Generator, survey: str) -> Look:
    """One galaxy's rendering conditions, from its own seeded generator."""
    seeing = float(rng.uniform(*camera.seeing))
    depth = float(np.exp(rng.uniform(np.log(0.7), np.log(1.5))))
    balance = tuple(float(b) for b in np.exp(rng.normal(0.0, 0.08, len(camera.bands))))
    sky_offset = float(rng.uniform(0.3, 2.0))
    stretch = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    jpeg = int(rng.integers(60, 96)) if survey in RGB_SURVEYS else 0
    return Look(seeing, depth, balance, sky_offset, stretch, jpeg)


def seeing_psf(fwhm: float) -> galsim.GSObject:
    """Double Gaussian PSF (core plus a wider halo), the form SDSS's photometric pipeline fits.

    Analytic in Fourier space, so convolutions are several times faster than with a Moffat.
    """
    core = galsim.Gaussian(fwhm=fwhm)
    return galsim.Add([core.withFlux(0.9), galsim.Gaussian(fwhm=2.0 * fwhm).withFlux(0.1)])


def band_weights(component: str, bands: tuple[str, ...], colour_offset: float = 0.0) -> np.ndarray:
    """Flux in each band per unit r flux for a component's colour, shifted by the galaxy's colour scatter."""
    g_r, r_i = COLOURS[component]
    g_r, r_i = g_r + colour_offset, r_i + colour_offset / 2
    colour = {"g": -g_r, "r": 0.0, "i": r_i, "z": R_Z_PER_R_I * r_i}  # m_r - m_band
    return np.array([10 ** (0.4 * colour[band]) for band in bands])


def frame_scale(galaxy: dict, camera: Camera, survey: str) -> float:
    """Arcsec per pixel: GZ2 cutouts span 0.02 Petrosian R90 per pixel at 424 px (R90 about 2.3 R_e)."""
    if survey not in RGB_SURVEYS:  # HSC-like cutouts: a fixed angular frame
        return camera.native_scale
    r90 = 2.3 * max(galaxy["r_e_arcsec"], 1.0)
    return float(np.clip(0.02 * r90 * 424 / camera.size, 0.04, 2.0))


@dataclass(frozen=True)
class Frame:
    """The pixel grid and PSF one galaxy is drawn on."""

    psf: galsim.GSObject
    size: int
    scale: float  # arcsec per pixel

    def draw(self, profile: galsim.GSObject, convolve: bool = True) -> np.ndarray:
        """Image of a profile (PSF-convolved unless it is a point source already) on this grid."""
        profile = galsim.Convolve(profile, self.psf) if convolve else profile
        return profile.drawImage(nx=self.size, ny=self.size, scale=self.scale).array

    def convolve(self, image: np.ndarray) -> np.ndarray:
        """An image sampled without PSF (arms, drawn in numpy), convolved with the PSF by FFT."""
        return fftconvolve(image, self.psf.drawImage(nx=63, ny=63, scale=self.scale).array, mode="same")

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """x, y of the pixel centres in arcsec from the frame centre."""
        axis = (np.arange(self.size) - (self.size - 1) / 2) * self.scale
        return np.meshgrid(axis, axis)


def sky_axes(galaxy: dict, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's offset (arcsec) along the galaxy's major axis and across it, on the sky."""
    x, y = frame.coordinates()
    angle = np.radians(galaxy["position_angle"])
    return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)


def disk_plane(galaxy: dict, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Radius (arcsec) and azimuth of each pixel in the plane of the inclined disk."""
    u, across = sky_axes(galaxy, frame)
    v = across / max(galaxy["disk_axis_ratio"], 0.05)
    return np.hypot(u, v) + 1e-6, np.arctan2(v, u)


def _unit(light: np.ndarray) -> np.ndarray:
    light = np.clip(light, 0, None)
    return light / max(float(light.sum()), 1e-30)


def spiral_disk(galaxy: dict, frame: Frame, rng: np.random.Generator) -> tuple[float, np.ndarray, np.ndarray]:
    """An exponential disk split into its smooth part and logarithmic arms with star-forming knots.

    Returns the arms' share of the disk light and both parts at unit flux, sampled at pixel centres.
    """
    radius, theta = disk_plane(galaxy, frame)
    scale_length = galaxy["disk_radius"] / 1.678
    wound = np.log(radius / scale_length) / np.tan(np.radians(galaxy["pitch"]))
    phase = galaxy["arms"] * (theta - wound) - np.radians(galaxy["arm_phase"])
    growth = 1 - np.exp(-radius / (0.6 * scale_length))  # arms start outside the bulge
    ridge = growth * ((1 + np.cos(phase)) / 2) ** 2  # narrower than a plain cosine
    exponential = np.exp(-radius / scale_length)
    strength = galaxy["arm_strength"]
    smooth = exponential * (1 - 0.8 * strength * growth)
    ridges = exponential * 3 * strength * ridge
    arm_share = float(ridges.sum()) / float((smooth + ridges).sum())
    arms = (1 - galaxy["knot_share"]) * _unit(ridges) + galaxy["knot_share"] * arm_knots(galaxy, frame, rng)
    return arm_share, _unit(smooth), _unit(arms)


def arm_knots(galaxy: dict, frame: Frame, rng: np.random.Generator) -> np.ndarray:
    """Unit-flux clumps of star formation on the arms' ridges, placed as the disk's light falls off."""
    x, _ = frame.coordinates()
    scale_length = galaxy["disk_radius"] / 1.678
    count = 4 + int(rng.poisson(12 * galaxy["arm_strength"]))
    radius = scale_length * np.clip(rng.gamma(2.0, 1.0, count), 0.5, 3.5)
    wound = np.log(radius / scale_length) / np.tan(np.radians(galaxy["pitch"]))
    arm = rng.integers(0, galaxy["arms"], count)
    theta = wound + (2 * np.pi * arm + np.radians(galaxy["arm_phase"])) / galaxy["arms"] \
        + rng.normal(0, 0.08, count)
    angle = np.radians(galaxy["position_angle"])
    u, v = radius * np.cos(theta), radius * np.sin(theta) * max(galaxy["disk_axis_ratio"], 0.05)
    centres = np.stack([u * np.cos(angle) - v * np.sin(angle), u * np.sin(angle) + v * np.cos(angle)], axis=1)
    width = np.maximum(0.12 * scale_length, frame.scale) * rng.uniform(0.6, 1.4, count)
    flux = rng.exponential(1.0, count)
    axis = x[0]  # Gaussians are separable: two 1-D profiles per knot instead of a full frame of exponentials
    knots = sum(f / w**2 * np.outer(np.exp(-0.5 * ((axis - cy) / w) ** 2), np.exp(-0.5 * ((axis - cx) / w) ** 2))
                for f, (cx, cy), w in zip(flux, centres, width, strict=True))
    return _unit(knots)


def ring(galaxy: dict, frame: Frame) -> np.ndarray:
    """Unit-flux ring in the disk plane (an inner ring near the bar's end or an outer ring), sampled."""
    radius, _ = disk_plane(galaxy, frame)
    centre = galaxy["ring_radius"] * galaxy["disk_radius"]
    return _unit(np.exp(-0.5 * ((radius - centre) / (0.12 * centre)) ** 2))


def dust_transmission(galaxy: dict, frame: Frame, band: str) -> np.ndarray:
    """Fraction of light passing a dust lane along an edge-on disk's major axis (1 everywhere without one)."""
    along, across = sky_axes(galaxy, frame)
    height = max(0.06 * galaxy["disk_radius"], frame.scale)
    lane = np.exp(-0.5 * (across / height) ** 2) * np.exp(-0.5 * (along / (1.5 * galaxy["disk_radius"])) ** 2)
    optical_depth = galaxy["dust_depth"] * DUST_EXTINCTION[band] * lane
    return 1 - frame.convolve(1 - np.exp(-2.0 * optical_depth))


def satellite_trail(galaxy: dict, frame: Frame, rng: np.random.Generator) -> np.ndarray:
    """Unit-flux straight streak across the frame, as wide as the PSF (drawn directly: it fills the frame)."""
    x, y = frame.coordinates()
    angle = np.radians(galaxy["position_angle"])
    distance = x * np.sin(angle) - y * np.cos(angle) - rng.uniform(-0.2, 0.2) * frame.size * frame.scale
    sigma = frame.psf.calculateFWHM() / 2.355
    trail = np.exp(-0.5 * (distance / sigma) ** 2)
    return trail / trail.sum()


def _sersic(n: float, radius: float, axis_ratio: float, angle: float) -> galsim.GSObject:
    profile = galsim.Sersic(n=float(n), half_light_radius=float(max(radius, 1e-3)))
    return profile.shear(q=float(np.clip(axis_ratio, 0.05, 1.0)), beta=float(angle) * galsim.degrees)


def disk_components(galaxy: dict, frame: Frame, rng: np.random.Generator) -> dict[str, tuple[float, np.ndarray]]:
    """The disk (with spiral arms and knots when it has them), its ring and its bar."""
    bt = galaxy["bulge_to_total"]
    bar_share = (1 - bt) * BAR_SHARE * galaxy["bar_strength"]
    ring_share = (1 - bt - bar_share) * 0.3 * galaxy["ring_strength"]
    disk_share = 1 - bt - bar_share - ring_share
    out = {}
    if galaxy["arms"] > 0:
        arm_share, smooth, arms = spiral_disk(galaxy, frame, rng)
        out["disk"] = (disk_share * (1 - arm_share), frame.convolve(smooth))
        out["arms"] = (disk_share * arm_share, frame.convolve(arms))
    else:
        disk = _sersic(galaxy["disk_sersic"], galaxy["disk_radius"], galaxy["disk_axis_ratio"],
                       galaxy["position_angle"])
        out["disk"] = (disk_share, frame.draw(disk))
    if ring_share > 0:
        out["ring"] = (ring_share, frame.convolve(ring(galaxy, frame)))
    if bar_share > 0:
        bar = _sersic(BAR_SERSIC, BAR_LENGTH * galaxy["disk_radius"], BAR_AXIS_RATIO, galaxy["bar_angle"])
        bar = bar.shear(q=float(max(galaxy["disk_axis_ratio"], 0.2)),
                        beta=galaxy["position_angle"] * galsim.degrees)  # seen through the inclined disk
        out["bar"] = (bar_share, frame.draw(bar))
    return out


def merger_companion(galaxy: dict, frame: Frame) -> tuple[float, np.ndarray]:
    """A tidally stretched companion overlapping the main galaxy."""
    angle = np.radians(galaxy["companion_angle"])
    offset = galaxy["companion_offset"] * max(galaxy["r_e_arcsec"], 0.5)
    companion = _sersic(2.5, galaxy["bulge_radius"] * np.sqrt(galaxy["companion_ratio"]), 0.7,
                        galaxy["companion_angle"]).shear(g1=0.25, g2=0.0)
    return galaxy["companion_ratio"], frame.draw(companion.shift(offset * np.cos(angle), offset * np.sin(angle)))


def field_objects(galaxy: dict, frame: Frame, rng: np.random.Generator) -> dict[str, tuple[float, np.ndarray]]:
    """Unrelated neighbour galaxies and stars anywhere in the frame, fluxes relative to the main galaxy."""
    half_width = frame.size * frame.scale / 2
    out = {}
    if galaxy["neighbours"]:
        neighbours = [galsim.Exponential(half_light_radius=float(rng.uniform(0.4, 1.5)))
                      .withFlux(float(10 ** (-0.4 * rng.uniform(0.5, 3.5))))
                      .shift(*rng.uniform(-half_width, half_width, 2)) for _ in range(galaxy["neighbours"])]
        out["neighbours"] = (1.0, frame.draw(galsim.Add(neighbours)))
    if galaxy["field_stars"]:
        stars = [frame.psf.withFlux(float(10 ** (-0.4 * rng.uniform(-0.5, 3.0))))
                 .shift(*rng.uniform(-half_width, half_width, 2)) for _ in range(galaxy["field_stars"])]
        out["stars"] = (1.0, frame.draw(galsim.Add(stars), convolve=False))
    return out


def components(galaxy: dict, frame: Frame, rng: np.random.Generator) -> dict[str, tuple[float, np.ndarray]]:
    """(r-band flux share, unit-flux PSF-convolved image) of every component in the frame."""
    kind = galaxy["kind"]
    if kind == "star":
        return {"stars": (1.0, frame.draw(frame.psf, convolve=False))}
    if kind == "artifact":
        return {"stars": (1.0, satellite_trail(galaxy, frame, rng))}
    bulge = _sersic(galaxy["bulge_sersic"], galaxy["bulge_radius"], galaxy["bulge_axis_ratio"],
                    galaxy["position_angle"] + galaxy["bulge_twist"])
    out = {"bulge": (galaxy["bulge_to_total"], frame.draw(bulge))}
    if kind == "disk":
        out.update(disk_components(galaxy, frame, rng))
    if kind == "merger":
        out["companion"] = merger_companion(galaxy, frame)
    out.update(field_objects(galaxy, frame, rng))
    return out


def _resample(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a float image (noise drawn on the native grid, shown on the cutout grid)."""
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image.astype(np.float32)).resize((size, size), Image.Resampling.BILINEAR))


def noisy_bands(galaxy: dict, survey: str, look: Look, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Band images (bands, size, size) in flux per arcsec^2, with sky and shot noise; and the pixel scale."""
    camera, spec = CAMERAS[survey], SURVEYS[survey]
    scale = frame_scale(galaxy, camera, survey)
    frame = Frame(seeing_psf(look.seeing), camera.size, scale)
    flux = 10 ** (-0.4 * (galaxy["magnitude"] - spec.zero_point))
    parts = components(galaxy, frame, rng)
    native = max(8, round(camera.size * scale / camera.native_scale))
    out = np.empty((len(camera.bands), camera.size, camera.size), dtype=np.float32)
    for index, band in enumerate(camera.bands):
        light = sum(share * flux * band_weights(name, camera.bands, galaxy["colour_offset"])[index] * image
                    for name, (share, image) in parts.items()) / scale**2
        if galaxy["dust_depth"] > 0:
            light = light * dust_transmission(galaxy, frame, band)
        native_light = np.clip(_resample(light, native), 0, None)
        variance = (look.depth * camera.sky_sigma[index] / camera.native_scale**2) ** 2 \
            + native_light * camera.gain / camera.native_scale**2
        noise = rng.normal(size=(native, native)) * np.sqrt(variance)
        out[index] = light + _resample(noise, camera.size)
    return out, scale


def to_rgb(bands: np.ndarray, scales: tuple[float, ...], offset: float = SDSS_SKY_OFFSET,
           q: float = SDSS_Q) -> np.ndarray:
    """g, r, i in nanomaggies per pixel to uint8 RGB (i->R, r->G, g->B) with Lupton et al.'s asinh stretch.

    Each band is scaled for colour balance and offset so the sky sits just above black, then
    make_lupton_rgb maps the mean intensity I to asinh(q I) / sqrt(q), keeping colours.
    """
    g, r, i = (band * scale + offset for band, scale in zip(bands, scales, strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides by zero where pixels are 0, then masks
        return make_lupton_rgb(i, r, g, minimum=0.0, stretch=1 / np.sqrt(q), Q=np.sqrt(q))


def decals_rgb(bands: np.ndarray, divisors: tuple[float, ...], shown: tuple[float, float] = DECALS_RANGE,
               softening: float = 1.0) -> np.ndarray:
    """g, r, z in nanomaggies per pixel to uint8 RGB (z->R, r->G, g->B) as the GZ DECaLS subjects were made.

    Each band on its own: asinh of flux over its divisor, shown linearly from asinh(low) to asinh(high).
    """
    low, high = (np.arcsinh(softening * value) for value in shown)
    scaled = [np.arcsinh(softening * band / divisor) for band, divisor in zip(bands, divisors, strict=True)]
    rgb = (np.stack(scaled[::-1], axis=-1) - low) / (high - low)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def compress(image: np.ndarray, quality: int) -> np.ndarray:
    """The image after a JPEG round trip, as survey cutouts are served (quality 0: unchanged)."""
    if not quality:
        return image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def display(bands: np.ndarray, survey: str, look: Look) -> np.ndarray:
    """A survey's colour image of its bands (nanomaggies per native pixel) under one galaxy's look."""
    camera = CAMERAS[survey]
    if survey == "sdss":
        scales = tuple(s * b for s, b in zip(camera.colour_scales, look.colour_balance, strict=True))
        rgb = to_rgb(bands, scales, SDSS_SKY_OFFSET * look.sky_offset, SDSS_Q * look.stretch)
    else:
        offset = -DECALS_RANGE[0] * (look.sky_offset - 1)  # a residual sky, in units of the divisors
        divisors = tuple(d / b for d, b in zip(camera.colour_scales, look.colour_balance, strict=True))
        rgb = decals_rgb(bands + offset * np.array(divisors)[:, None, None], divisors, softening=look.stretch)
    return compress(rgb, look.jpeg_quality)


def render_galaxy(galaxy: dict, survey: str) -> np.ndarray:
    """The stored image of one galaxy: uint8 RGB for SDSS and DECaLS, float32 flux per pixel (H, W, 1) for HSC."""
    rng = np.random.default_rng(int(galaxy["noise_seed"]))
    look = draw_look(CAMERAS[survey], rng, survey)
    bands, scale = noisy_bands(galaxy, survey, look, rng)
    if survey in RGB_SURVEYS:
        return display(bands * CAMERAS[survey].native_scale**2, survey, look)
    return (bands[0] * scale**2)[..., None].astype(np.float32)


def render_chunk(items: list[dict], shape: tuple[int, ...], encoding: str) -> list[bytes]:
    """Worker task: render each galaxy (``item["survey"]`` says how) and encode it as the records store it."""
    images = (render_galaxy(galaxy, galaxy["survey"]) for galaxy in items)
    return [encode_png(image) if encoding == "png" else image.tobytes() for image in images]
