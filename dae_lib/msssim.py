r"""MS-SSIM with a separable Gaussian window: the same numbers as torchmetrics, ~10x faster to train.

Eq. (3)-(5) of the paper, in Wang, Simoncelli & Bovik 2003's per-image form (see losses.py). With a Gaussian window w (11 x 11,
sigma 1.5), C1 = (K1 L)^2, C2 = (K2 L)^2, K1 = 0.01, K2 = 0.03, data range L = 1, at scale j:

    mu_x = w * x,  sigma_x^2 = w * x^2 - mu_x^2,  sigma_xy = w * (x y) - mu_x mu_y
    cs_j = mean[(2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)]
    ssim_j = mean[(2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)]
    MS-SSIM = relu(ssim_M)^beta_M * prod_{j<M} relu(cs_j)^beta_j,   beta = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

(alpha = beta_M at the coarsest scale, where the luminance term enters.) Between scales both
images are averaged over 2 x 2 blocks. Negative terms are clamped at 0 before the fractional
powers, so the value is never NaN.

Why not call torchmetrics directly: its 2-D 11 x 11 convolution makes the backward pass the
slowest part of training on a CPU (2.8 s per batch of eight 256 px images, against ~0.1 s for
the whole network). This module follows torchmetrics' conventions exactly (reflect padding,
contrast-structure averaged without the 5 px border, SSIM over the full padded-convolution map,
ReLU normalisation), with the window applied as two 1-D passes; tests check it against
``torchmetrics.functional.image.multiscale_structural_similarity_index_measure`` (values and
gradients) so either can stand for the other.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: MS-SSIM exponents (Wang, Simoncelli & Bovik 2003). The DAE paper prints 0.0048 for the first
#: one, a typo for 0.0448.
BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03
#: The smallest image side for five scales: the coarsest scale (1/16 of the side, floored) must be
#: at least one window wide. torchmetrics checks the same (side // 16 > 10), so 176 px.
MIN_SIZE = WINDOW * 2 ** (len(BETAS) - 1)


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA, dtype=torch.float32, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian (the 2-D window is its outer product)."""
    d = torch.arange((1 - size) / 2, (1 + size) / 2, 1.0, dtype=dtype, device=device)
    g = torch.exp(-((d / sigma) ** 2) / 2)
    return g / g.sum()


def _filter(maps: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering of every channel: reflect padding, output the input's size."""
    c, r = maps.shape[1], g.numel() // 2
    maps = F.pad(maps, (r, r, r, r), mode="reflect")
    maps = F.conv2d(maps, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(maps, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_and_cs(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0):
    """Per-image SSIM (full map mean) and contrast-structure term (border excluded), shape (N,)."""
    g = gaussian_window(dtype=x.dtype, device=x.device)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    f = _filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    mu_x, mu_y, xx, yy, xy = f.split(1, dim=1)
    var_x = (xx - mu_x**2).clamp(min=0)
    var_y = (yy - mu_y**2).clamp(min=0)
    cov = xy - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    r = g.numel() // 2
    return ssim_map.mean(dim=(1, 2, 3)), cs_map[..., r:-r, r:-r].mean(dim=(1, 2, 3))


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, betas=BETAS) -> torch.Tensor:
    """MS-SSIM per image, shape (N,), for (N, 1, H, W) tensors with sides >= MIN_SIZE (176 px).

    Computed in float32 whatever the autocast state (bf16 variances of near-equal images are
    noise), so it is the same number in a bf16 training step and in an fp32 evaluation.
    """
    need = WINDOW * 2 ** (len(betas) - 1)
    if min(x.shape[-2:]) < need:
        raise ValueError(f"MS-SSIM with {len(betas)} scales and an {WINDOW} px window needs images of at least {need} px, got {tuple(x.shape[-2:])}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()
        terms = []
        for j in range(len(betas)):
            sim, cs = ssim_and_cs(x, y, data_range)
            terms.append(cs if j < len(betas) - 1 else sim)
            if j < len(betas) - 1:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        stack = torch.stack(terms).relu()
        b = torch.tensor(betas, dtype=stack.dtype, device=stack.device).unsqueeze(1)
        return torch.prod(stack**b, dim=0)
