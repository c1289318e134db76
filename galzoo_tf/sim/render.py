"""Rendering synthetic galaxies with GalSim: PSF-convolved components, sky and shot noise.

Each component (bulge, disk with spiral arms, bar, merger companion, neighbours, field
stars) is drawn once at unit flux; bands are linear mixtures with per-component colours,
so a three-band SDSS image costs one draw per component, not per band. SDSS cutouts are
framed like GZ2's (pixel scale proportional to the galaxy's Petrosian R90), noise is drawn
on the native 0.396"/px grid and resampled, and the g, r, i images become RGB with the
Lupton et al. (2004) asinh stretch. HSC images are single-band g at 0.168"/px, float32.

Workers call ``render_chunk``; each galaxy's noise comes from its own seed, so the images
do not depend on how galaxies are split between processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np
from astropy.visualization import make_lupton_rgb
from PIL import Image
from scipy.signal import fftconvolve

from galzoo_tf.data.images import encode_png
from galzoo_tf.sim.population import BAR_AXIS_RATIO, BAR_LENGTH, BAR_SERSIC, BAR_SHARE, SURVEYS

# Flux in each band per unit r-band flux: colours g-r and r-i of each kind of component.
COLOURS = {
    "bulge": (0.45, 0.20), "disk": (0.30, 0.10), "arms": (0.15, 0.05), "bar": (0.42, 0.18),
    "companion": (0.40, 0.18), "neighbours": (0.40, 0.15), "stars": (0.30, 0.10),
}


@dataclass(frozen=True)
class Camera:
    """Pixel grid, seeing and noise of a simulated survey image."""

    size: int
    native_scale: float  # arcsec per detector pixel
    seeing: tuple[float, float]  # range of PSF FWHM in arcsec
    sky_sigma: tuple[float, ...]  # noise per native pixel, per band, in image flux units
    gain: float  # image flux units per detected photon, for shot noise


CAMERAS = {
    "sdss": Camera(256, 0.396, (1.1, 1.7), (0.05, 0.035, 0.06), 0.006),
    "hsc": Camera(239, 0.168, (0.7, 1.0), (0.035,), 0.002),
    # a second HSC-like setting for transfer learning: worse seeing and twice the sky noise
    "hsc-poor": Camera(239, 0.168, (1.1, 1.5), (0.07,), 0.002),
}


def seeing_psf(fwhm: float) -> galsim.GSObject:
    """Double Gaussian PSF (core plus a wider halo), the form SDSS's photometric pipeline fits.

    Analytic in Fourier space, so convolutions are several times faster than with a Moffat.
    """
    core = galsim.Gaussian(fwhm=fwhm)
    return galsim.Add([core.withFlux(0.9), galsim.Gaussian(fwhm=2.0 * fwhm).withFlux(0.1)])


def band_weights(component: str) -> np.ndarray:
    """Flux in g, r, i per unit r flux for a component's colour."""
    g_r, r_i = COLOURS[component]
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_i)])


def frame_scale(galaxy: dict, camera: Camera, survey: str) -> float:
    """Arcsec per pixel: GZ2 cutouts span 0.02 Petrosian R90 per pixel at 424 px (R90 about 2.3 R_e)."""
    if survey != "sdss":  # HSC-like cutouts: a fixed angular frame
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


def spiral_disk(galaxy: dict, frame: Frame) -> np.ndarray:
    """Unit-flux exponential disk with logarithmic spiral arms, projected, sampled at pixel centres."""
    x, y = frame.coordinates()
    angle = np.radians(galaxy["position_angle"])
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / max(galaxy["disk_axis_ratio"], 0.05)
    radius = np.hypot(u, v) + 1e-6
    theta = np.arctan2(v, u)
    scale_length = galaxy["disk_radius"] / 1.678
    wound = np.log(radius / scale_length) / np.tan(np.radians(galaxy["pitch"]))
    phase = galaxy["arms"] * (theta - wound) - np.radians(galaxy["arm_phase"])
    arms = ((1 + np.cos(phase)) / 2) ** 2  # narrower than a plain cosine
    growth = 1 - np.exp(-radius / (0.6 * scale_length))  # arms start outside the bulge
    light = np.exp(-radius / scale_length) * (1 + galaxy["arm_strength"] * 3 * growth * (arms - 0.375))
    light = np.clip(light, 0, None)
    return light / light.sum()


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


def disk_components(galaxy: dict, frame: Frame) -> dict[str, tuple[float, np.ndarray]]:
    """The disk (with spiral arms when it has them) and the bar of a disk galaxy."""
    bt = galaxy["bulge_to_total"]
    bar_share = (1 - bt) * BAR_SHARE * galaxy["bar_strength"]
    out = {}
    if galaxy["arms"] > 0:
        out["arms"] = (1 - bt - bar_share, frame.convolve(spiral_disk(galaxy, frame)))
    else:
        disk = _sersic(galaxy["disk_sersic"], galaxy["disk_radius"], galaxy["disk_axis_ratio"],
                       galaxy["position_angle"])
        out["disk"] = (1 - bt - bar_share, frame.draw(disk))
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
                    galaxy["position_angle"])
    out = {"bulge": (galaxy["bulge_to_total"], frame.draw(bulge))}
    if kind == "disk":
        out.update(disk_components(galaxy, frame))
    if kind == "merger":
        out["companion"] = merger_companion(galaxy, frame)
    out.update(field_objects(galaxy, frame, rng))
    return out


def _resample(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a float image (noise drawn on the native grid, shown on the cutout grid)."""
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image.astype(np.float32)).resize((size, size), Image.Resampling.BILINEAR))


def noisy_bands(galaxy: dict, survey: str) -> tuple[np.ndarray, float]:
    """Band images (bands, size, size) in flux per arcsec^2, with sky and shot noise; and the pixel scale."""
    camera, spec = CAMERAS[survey], SURVEYS[survey]
    rng = np.random.default_rng(int(galaxy["noise_seed"]))
    scale = frame_scale(galaxy, camera, survey)
    frame = Frame(seeing_psf(float(rng.uniform(*camera.seeing))), camera.size, scale)
    flux = 10 ** (-0.4 * (galaxy["magnitude"] - spec.zero_point))
    parts = components(galaxy, frame, rng)
    bands = range(len(camera.sky_sigma))
    native = max(8, round(camera.size * scale / camera.native_scale))
    out = np.empty((len(camera.sky_sigma), camera.size, camera.size), dtype=np.float32)
    for band in bands:
        light = sum(share * flux * band_weights(name)[band if survey == "sdss" else 0] * image
                    for name, (share, image) in parts.items()) / scale**2
        native_light = np.clip(_resample(light, native), 0, None)
        variance = (camera.sky_sigma[band] / camera.native_scale**2) ** 2 \
            + native_light * camera.gain / camera.native_scale**2
        noise = rng.normal(size=(native, native)) * np.sqrt(variance)
        out[band] = light + _resample(noise, camera.size)
    return out, scale


def to_rgb(bands: np.ndarray) -> np.ndarray:
    """g, r, i surface brightness to a uint8 RGB image with the Lupton asinh stretch (i->R, r->G, g->B)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides by zero where pixels are 0, then masks
        return make_lupton_rgb(bands[2], bands[1], bands[0], minimum=0.0, stretch=1.5, Q=8)


def render_galaxy(galaxy: dict, survey: str) -> np.ndarray:
    """The stored image of one galaxy: uint8 RGB for SDSS, float32 flux per pixel (H, W, 1) for HSC."""
    bands, scale = noisy_bands(galaxy, survey)
    if survey == "sdss":
        return to_rgb(bands)
    return (bands[0] * scale**2)[..., None].astype(np.float32)


def render_chunk(items: list[dict], shape: tuple[int, ...], encoding: str) -> list[bytes]:
    """Worker task: render each galaxy (``item["survey"]`` says how) and encode it as the records store it."""
    images = (render_galaxy(galaxy, galaxy["survey"]) for galaxy in items)
    return [encode_png(image) if encoding == "png" else image.tobytes() for image in images]
