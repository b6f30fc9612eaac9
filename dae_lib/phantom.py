"""A synthetic chest phantom: seeded (X, S, B) triples that look like a PA chest radiograph.

The phantom is the project's default data when no real BSE-JSRT folder is given, and the data of
the fast tests. It is drawn in clinical display polarity (air dark, bone bright) in [0, 1]:

- soft tissue S: body outline with neck and shoulders, two lung fields (dark) with vessel-like
  branching texture radiating from the hila, the mediastinum and a heart bulging to the image
  right (the patient's left), diaphragm domes, low-frequency texture and quantum-like noise;
- bone B >= 0: posterior rib arcs (from the spine, rising slightly then curving down laterally),
  fainter anterior rib arcs (running down medially and fading where cartilage takes over),
  both clavicles and the spine with its vertebrae; each bone has a cylinder-like projection
  profile (thickness-weighted, brighter rim);
- X = S + B exactly, with B limited so that X <= 1.

Coordinates: u in [-1, 1] from image left to right, v in [0, 1] from top to bottom; every
length is a fraction of the image, so the phantom looks the same at any size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(img: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur over the last two dimensions of a tensor (2-D, or any leading
    dimensions: each image blurred alone), on the tensor's device and dtype (reflect padding)."""
    if sigma_px <= 0:
        return img
    radius = max(1, int(3 * sigma_px))
    radius = min(radius, img.shape[-1] // 2 - 1, img.shape[-2] // 2 - 1)
    x = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    k = k / k.sum()
    out = img.reshape(-1, 1, *img.shape[-2:])
    out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return out.reshape(img.shape)


def _smoothstep(x: torch.Tensor, width: float) -> torch.Tensor:
    """0 for x << 0, 1 for x >> 0, a logistic ramp of the given width in between."""
    return torch.sigmoid(x / max(width, 1e-6))


def _band(dist: torch.Tensor, radius: float) -> torch.Tensor:
    """Projection profile of a bone of half-thickness ``radius`` at distance ``dist`` from its axis.

    A solid cylinder projects as sqrt(1 - (d/r)^2); cortical bone adds a brighter rim.
    """
    x = (dist / radius).clamp(max=1.0)
    core = torch.sqrt((1 - x**2).clamp(min=0))
    rim = torch.exp(-(((x - 0.85) / 0.12) ** 2)) * (x < 1)
    return 0.75 * core + 0.35 * rim


def _segment_distance(u, v, p0, p1):
    """Distance from every grid point (u, v) to the segment p0-p1 (aspect-correct units)."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    length2 = du * du + dv * dv + 1e-12
    t = (((u - p0[0]) * du + (v - p0[1]) * dv) / length2).clamp(0, 1)
    return torch.sqrt((u - p0[0] - t * du) ** 2 + (v - p0[1] - t * dv) ** 2), t


class _Rng:
    """Small helper around a seeded torch.Generator."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(int(seed))

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=self.g).item()

    def normal(self, shape, std=1.0) -> torch.Tensor:
        return torch.randn(shape, generator=self.g) * std


def _anatomy(size: int, rng: _Rng):
    """Random anatomical parameters of one patient."""
    return dict(
        lung_top=rng.uniform(0.10, 0.14),
        dome_base=rng.uniform(0.68, 0.76),
        dome_height=rng.uniform(0.05, 0.09),
        lung_width=rng.uniform(0.70, 0.80),
        mediastinum=rng.uniform(0.11, 0.15),
        heart=rng.uniform(0.16, 0.26),
        heart_v=rng.uniform(0.55, 0.62),
        rib_start=rng.uniform(0.11, 0.14),
        rib_step=rng.uniform(0.052, 0.060),
        rib_radius=rng.uniform(0.010, 0.013),
        rib_drop=rng.uniform(0.12, 0.17),
        bone_gain=rng.uniform(0.05, 0.08),
        soft_gain=rng.uniform(0.85, 1.05),
        tilt=rng.uniform(-0.02, 0.02),
    )


def _soft_tissue(u, v, a, rng: _Rng, size: int):
    """Soft-tissue image S and the lung-field mask (both in [0, 1])."""
    px = 2.0 / size  # one pixel in u units
    # Body outline: a neck widening into the shoulders, then the chest wall.
    half_width = 0.26 + 0.64 * _smoothstep(v - 0.11, 0.025)
    body = _smoothstep(half_width - u.abs(), 3 * px)
    # Lungs: mirrored fields between the mediastinum (heart on image right) and the chest wall.
    lungs = torch.zeros_like(u)
    for side in (-1.0, 1.0):
        uu = side * u  # > 0 towards this lung's lateral side
        inner = a["mediastinum"] + (side > 0) * a["heart"] * torch.exp(-(((v - a["heart_v"]) / 0.11) ** 2))
        outer = 0.16 + (a["lung_width"] - 0.16) * torch.sqrt(((v - a["lung_top"]) / 0.42).clamp(0, 1))
        dome = a["dome_base"] + (side > 0) * 0.02 - a["dome_height"] * (
            1 - ((uu - 0.45) / 0.45).clamp(-1, 1) ** 2
        )
        field = (uu > inner) & (uu < outer) & (v > a["lung_top"]) & (v < dome)
        lungs = lungs + field.float()
    lungs = gaussian_blur(lungs.clamp(0, 1), 0.012 * size)
    # Vessel-like texture: branching lines from each hilum, thinning towards the periphery.
    vessels = torch.zeros_like(u)
    for side in (-1.0, 1.0):
        hilum = (side * (a["mediastinum"] + 0.08), a["heart_v"] - 0.15)
        for _ in range(16):
            angle = rng.uniform(-0.45 * math.pi, 0.85 * math.pi)
            length = rng.uniform(0.2, 0.5)
            end = (hilum[0] + side * length * math.cos(angle) * 1.3, hilum[1] + length * math.sin(angle) * 0.5)
            d, t = _segment_distance(u, v * 2, (hilum[0], hilum[1] * 2), (end[0], end[1] * 2))
            width = 0.013 * (1.2 - t)
            vessels = vessels + torch.exp(-((d / width) ** 2)) * (1 - 0.6 * t)
            for _ in range(2):  # one level of branching
                s = rng.uniform(0.3, 0.7)
                start = (hilum[0] + s * (end[0] - hilum[0]), hilum[1] + s * (end[1] - hilum[1]))
                ang2 = angle + rng.uniform(-0.7, 0.7)
                l2 = length * rng.uniform(0.3, 0.5)
                end2 = (start[0] + side * l2 * math.cos(ang2) * 1.3, start[1] + l2 * math.sin(ang2) * 0.5)
                d, t = _segment_distance(u, v * 2, (start[0], start[1] * 2), (end2[0], end2[1] * 2))
                vessels = vessels + 0.6 * torch.exp(-((d / (0.006 * (1.2 - t))) ** 2)) * (1 - 0.6 * t)
    vessels = vessels.clamp(max=1.5) * lungs
    heart = torch.exp(-(((u - 0.08) / 0.28) ** 2 + ((v - a["heart_v"]) / 0.14) ** 2))
    mottle = gaussian_blur(rng.normal(u.shape), 0.03 * size)
    mottle = mottle / (mottle.std() + 1e-8)
    fine = gaussian_blur(rng.normal(u.shape), 0.006 * size)
    fine = fine / (fine.std() + 1e-8)
    # Lungs are darkest at the apices and lateral upper zones; breast and diaphragm shadows
    # brighten the bases.
    aeration = 0.30 + 0.06 * (1 - v) + 0.04 * u.abs() - 0.10 * _smoothstep(v - a["dome_base"] + 0.15, 0.05)
    s = 0.05 + body * (
        0.58 + 0.08 * v + 0.04 * heart - aeration * lungs + lungs * (0.06 * vessels + 0.012 * fine) + 0.012 * mottle
    )
    s = s * a["soft_gain"]
    return s.clamp(0.0, 0.8), lungs, body


def _bones(u, v, a, body):
    """Bone image B >= 0: posterior and anterior ribs, clavicles and spine."""
    b = torch.zeros_like(u)
    r = a["rib_radius"]
    v = v + a["tilt"] * u  # a slight patient tilt
    for side in (-1.0, 1.0):
        uu = side * u
        for k in range(10):
            v0 = a["rib_start"] + k * a["rib_step"]
            lateral = 0.60 + 0.18 * math.sin(math.pi * min(k, 8) / 9)  # widest mid-chest
            # Posterior rib: from the spine, up a little, then down towards the lateral wall.
            t = ((uu - 0.05) / (lateral - 0.05)).clamp(0, 1)
            centre = v0 - 0.03 * torch.sin(math.pi * t) + a["rib_drop"] * t**2
            on = (uu > 0.05) & (uu < lateral + 0.02)
            b = b + on * _band((v - centre).abs(), r * (1.15 - 0.25 * t))
            # Anterior rib: from the lateral end, down and towards the midline, fading out.
            v_end = v0 + a["rib_drop"] - 0.14
            t2 = ((lateral - uu) / 0.55).clamp(0, 1)
            centre2 = v_end + 0.14 * t2 - 0.04 * t2**2
            on2 = (uu < lateral + 0.02) & (uu > lateral - 0.55)
            b = b + 0.6 * on2 * (1 - 0.7 * t2) * _band((v - centre2).abs(), 0.85 * r)
        # Clavicle: a gentle S from the sternum up and out to the shoulder.
        t = ((uu - 0.08) / 0.55).clamp(0, 1)
        centre = a["lung_top"] + 0.01 - 0.05 * t + 0.02 * torch.sin(2 * math.pi * t)
        on = (uu > 0.08) & (uu < 0.63)
        b = b + 1.1 * on * _band((v - centre).abs(), 1.4 * r)
    # Spine: a column with vertebral bodies (brighter endplates) and a faint central canal.
    column = _band(u.abs(), 0.07)
    vertebrae = 0.75 + 0.25 * torch.cos(2 * math.pi * (v - 0.02) / (a["rib_step"] * 0.95)) ** 8
    b = b + 0.5 * column * vertebrae * (1 - 0.2 * torch.exp(-((u / 0.02) ** 2)))
    return a["bone_gain"] * b * body


def chest_phantom(size: int = 512, seed: int = 0):
    """One phantom case: (X, S, B), each a float32 tensor of shape (size, size) in [0, 1].

    X = S + B holds exactly; B >= 0 is bone in clinical polarity.
    """
    rng = _Rng(seed)
    a = _anatomy(size, rng)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    v, u = torch.meshgrid(coords, 2 * coords - 1, indexing="ij")
    s, _, body = _soft_tissue(u, v, a, rng, size)
    noise = gaussian_blur(rng.normal(u.shape, 1.0), 0.6) * 0.006
    s = (s + noise).clamp(0.0, 0.85)
    b = _bones(u, v, a, body)
    b = torch.minimum(b, 1.0 - s)  # keep X within [0, 1]
    x = s + b
    b = x - s  # so that X - S == B exactly in float32
    return x, s, b


def phantom_ids(n: int) -> list[str]:
    """The case IDs of ``n`` phantom cases (one group for the split: split._group)."""
    return [f"PHANTOM{i:04d}" for i in range(n)]


def phantom_set(n: int, size: int, seed: int = 0):
    """``n`` phantom cases at ``size`` px: tensors X, S, B of shape (n, 1, size, size) and ids."""
    xs, ss, bs = [], [], []
    for i in range(n):
        x, s, b = chest_phantom(size, seed=seed * 100_003 + i)
        xs.append(x)
        ss.append(s)
        bs.append(b)
    ids = phantom_ids(n)
    stack = lambda t: torch.stack(t)[:, None]  # noqa: E731
    return stack(xs), stack(ss), stack(bs), ids
