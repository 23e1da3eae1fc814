"""Phone-like captures of a whole image: the image, quiet zone and all, photographed small, tilted and soft.

Plain Python, importable without Django. Issue 12 item 3's words taken literally ("perspective, downscale to
260-400 px, blur, noise, JPEG"), where `generator.core.codes.captures` models a capture of the code alone:

- the WHOLE image is downscaled: the warped image's longer side lands on 260-400 px, so a module of a 768 px image
  with 25 modules across is 6-10 px;
- perspective from a pinhole camera (26 mm-equivalent phone lens, the image filling ~55 % of the frame) tilted up to
  25 degrees about a random in-plane axis, plus a roll of up to +-20 degrees, on a background with a margin of
  8-20 % of its side; the warp supersampled 3x, then area-averaged (the sensor integrates over its pixels);
- uneven light: a gradient and a vignette, contrast lost towards an ambient grey, an exposure and gamma error;
- defocus: Gaussian blur of sigma 0.5-1.5 px at the final size; read and shot noise; JPEG at quality 50-80 (4:2:0),
  decoded and turned grey for the readers.

A capture is fixed by its `Params`; `draw` makes them from a random source, over the full ranges or at a point of a
ramp from mild to the hardest corner (260 px, 25 degrees, sigma 1.5, quality 50).

    params = draw(np.random.default_rng(7))
    gray = capture(np.asarray(image.convert("RGB")), params)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Params:
    """One capture's settings."""

    long_side: int  # the warped image's longer side in px (260-400)
    tilt_deg: float  # out-of-plane tilt (5-25)
    tilt_axis_deg: float  # direction of the tilt axis in the image plane
    roll_deg: float  # in-plane rotation
    margin: float  # background around the image, as a share of long_side
    background: float  # background grey 0-255
    light_grad: float  # multiplicative gradient depth (0.05-0.3)
    light_dir_deg: float
    vignette: float  # corner darkening (0-0.25)
    contrast: float  # 1 = none lost, 0.7 = 30 % towards ambient
    ambient: float
    gain: float  # exposure
    gamma: float
    sigma: float  # defocus, px at the final size
    read_noise: float
    shot: float
    quality: int  # JPEG
    seed: int  # noise seed

    def short(self) -> str:
        return (f"L{self.long_side} tilt{self.tilt_deg:.0f} roll{self.roll_deg:.0f} s{self.sigma:.2f} "
                f"n{self.read_noise:.1f} q{self.quality} c{self.contrast:.2f} g{self.light_grad:.2f}")


def draw(rng: np.random.Generator, level: float | None = None) -> Params:
    """A capture's settings.

    Args:
        rng (`np.random.Generator`): the random source (seed it for reproducible captures).
        level (`float`, *optional*): None for every setting uniform over its full range; else a ramp point 0-1 that
            size, tilt, light gradient, contrast, blur, noise and JPEG quality follow (the rest stay random).

    Returns:
        The `Params`.
    """
    u = (lambda lo, hi: rng.uniform(lo, hi)) if level is None else (lambda lo, hi: lo + (hi - lo) * level)
    return Params(
        long_side=int(round(400 - u(0, 140))),
        tilt_deg=float(u(5, 25)),
        tilt_axis_deg=float(rng.uniform(0, 360)),
        roll_deg=float(rng.uniform(-20, 20)),
        margin=float(rng.uniform(0.08, 0.2)),
        background=float(rng.uniform(40, 200)),
        light_grad=float(u(0.05, 0.3)),
        light_dir_deg=float(rng.uniform(0, 360)),
        vignette=float(rng.uniform(0.0, 0.25)),
        contrast=float(1.0 - u(0.0, 0.3)),
        ambient=float(rng.uniform(90, 160)),
        gain=float(rng.uniform(0.85, 1.15)),
        gamma=float(np.exp(rng.uniform(-0.25, 0.25))),
        sigma=float(u(0.5, 1.5)),
        read_noise=float(u(2, 6)),
        shot=float(u(0.25, 0.6)),
        quality=int(round(80 - u(0, 30))),
        seed=int(rng.integers(2**31)),
    )


def _homography(w: int, h: int, p: Params) -> tuple[np.ndarray, int, int]:
    """Source pixel -> destination pixel, and the destination size, for a pinhole camera view of the image."""
    # Image plane centred on the optical axis, units of its longer side.
    side = max(w, h)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    obj = np.column_stack([(corners - [w / 2, h / 2]) / side, np.zeros(4)])
    # Tilt about an in-plane axis, then roll about the optical axis.
    a = np.radians(p.tilt_axis_deg)
    axis = np.array([np.cos(a), np.sin(a), 0.0])
    rot, _ = cv2.Rodrigues(axis * np.radians(p.tilt_deg))
    r = np.radians(p.roll_deg)
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    pts = obj @ rot.T @ roll.T
    fov_half = np.radians(69 / 2)
    distance = 0.5 / (0.55 * np.tan(fov_half))  # the image fills ~55 % of the frame's width
    z = pts[:, 2] + distance
    proj = pts[:, :2] / z[:, None]  # normalised (focal 1)
    span = (proj.max(0) - proj.min(0)).max()
    scale = p.long_side / span
    pad = p.margin * p.long_side
    dst = (proj - proj.min(0)) * scale + pad
    out_w = int(np.ceil(dst[:, 0].max() + pad))
    out_h = int(np.ceil(dst[:, 1].max() + pad))
    H = cv2.getPerspectiveTransform(corners.astype(np.float32), dst.astype(np.float32))
    return H, out_w, out_h


def capture(rgb: np.ndarray, p: Params) -> np.ndarray:
    """One capture of an image: the grey image a phone's reader would get.

    Args:
        rgb (`np.ndarray`): the image, (h, w, 3) uint8 RGB; a 2-D uint8 luminance image is taken as grey RGB.
        p (`Params`): the capture's settings (`draw`).

    Returns:
        The captured 2-D uint8 image, its warped image's longer side `p.long_side` px, on a background.
    """
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    h, w = rgb.shape[:2]
    H, out_w, out_h = _homography(w, h, p)
    ss = 3  # supersample the warp, then area-average: the sensor integrates over its pixels
    S = np.diag([ss, ss, 1.0]) @ H
    big = cv2.warpPerspective(rgb.astype(np.float32), S, (out_w * ss, out_h * ss), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(p.background,) * 3)
    img = cv2.resize(big, (out_w, out_h), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(p.seed)
    # Uneven lighting: gradient + vignette (multiplicative), glare/contrast loss, exposure and gamma.
    yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    xn, yn = xx / out_w - 0.5, yy / out_h - 0.5
    d = np.radians(p.light_dir_deg)
    grad = 1.0 - p.light_grad * (0.5 + (xn * np.cos(d) + yn * np.sin(d)))  # 1 .. 1-light_grad
    vig = 1.0 - p.vignette * (xn**2 + yn**2) / 0.5
    img = img * (grad * vig)[..., None]
    img = img * p.contrast + p.ambient * (1 - p.contrast)
    img = np.clip(img * p.gain, 0, 255)
    img = 255.0 * (img / 255.0) ** p.gamma
    # Defocus at the final size.
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=p.sigma)
    # Sensor noise: read + shot, per channel.
    img = img + rng.normal(0, 1, img.shape).astype(np.float32) * np.sqrt(p.read_noise**2 + p.shot**2 * img)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, p.quality])
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
