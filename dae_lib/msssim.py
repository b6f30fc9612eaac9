r"""MS-SSIM, eq. (3)-(5) of the paper, in two forms, with a separable Gaussian window.

Common to both: a Gaussian window w (11 x 11, sigma 1.5), C1 = (K1 L)^2, C2 = (K2 L)^2, K1 = 0.01,
K2 = 0.03, data range L = 1; at scale k (k = 1 the full image, each next scale the previous one
averaged over 2 x 2 blocks, K = 5 scales), around every pixel:

    mu_x = w * x,  sigma_x^2 = w * x^2 - mu_x^2,  sigma_xy = w * (x y) - mu_x mu_y
    l_k  = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    cs_k = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
    beta = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

``ms_ssim_map`` -- the paper's form (its eq. (5), per pixel j, alpha = 1):

    MS-SSIM(j) = l_K(j)^alpha * prod_{k=1..K} cs_k(j)^beta_k

  with every scale's map brought back to the full grid by bilinear interpolation, so l_K(j) and
  cs_k(j) are the values at pixel j's position in scale k (a window 11 * 2^(k-1) px wide in the
  original image: the growing windows of Zhao et al. 2017, computed on the dyadic pyramid of Wang
  et al. 2003 instead of with ever larger kernels). Terms are clamped at FLOOR (not 0) before the
  powers: x^0.0448 has an unbounded slope at 0, and per pixel a term near 0 is common early in
  training. The loss, eq. (6), is the mean of 1 - MS-SSIM(j) over pixels (``losses.msssim_loss``).

``ms_ssim`` -- Wang, Simoncelli & Bovik 2003's per-image form, as torchmetrics computes it (the
  tested reference, and the option ``msssim_form: wang``):

    cs_k = mean_j cs_k(j) (without the 5 px border),  ssim_K = mean_j l_K(j) cs_K(j)
    MS-SSIM = relu(ssim_K)^beta_K * prod_{k<K} relu(cs_k)^beta_k

  i.e. the means are taken per scale before the product, and the luminance enters at the
  coarsest scale with exponent beta_K = 0.1333, not alpha = 1.

Why not call torchmetrics directly: its 2-D 11 x 11 convolution makes the backward pass the
slowest part of training on a CPU (2.8 s per batch of eight 256 px images, against ~0.1 s for
the whole network). This module follows torchmetrics' conventions exactly (reflect padding,
contrast-structure averaged without the 5 px border, SSIM over the full padded-convolution map,
ReLU normalisation), with the window applied as two 1-D passes; tests check ``ms_ssim`` against
``torchmetrics.functional.image.multiscale_structural_similarity_index_measure`` (values and
gradients) and ``ms_ssim_map`` against a plain NumPy transcription of the formula above.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The two forms (Config.msssim_form): the paper's per-pixel eq. (5), and Wang's per-image one.
FORMS = ("paper", "wang")
#: Floor of the per-pixel terms before the fractional powers of the paper's form.
FLOOR = 1e-4
#: Exponent of the luminance term in the paper's form.
ALPHA = 1.0
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


def luminance_and_cs_maps(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0):
    """The per-pixel terms l(j) and cs(j) of eq. (3)-(4) at one scale, each (N, 1, H, W)."""
    g = gaussian_window(dtype=x.dtype, device=x.device)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    f = _filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    mu_x, mu_y, xx, yy, xy = f.split(1, dim=1)
    var_x = (xx - mu_x**2).clamp(min=0)
    var_y = (yy - mu_y**2).clamp(min=0)
    cov = xy - mu_x * mu_y
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1), (2 * cov + c2) / (var_x + var_y + c2)


def ssim_and_cs(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0):
    """Per-image SSIM (full map mean) and contrast-structure term (border excluded), shape (N,)."""
    lum, cs_map = luminance_and_cs_maps(x, y, data_range)
    r = WINDOW // 2
    return (lum * cs_map).mean(dim=(1, 2, 3)), cs_map[..., r:-r, r:-r].mean(dim=(1, 2, 3))


def _check_size(x: torch.Tensor, betas) -> None:
    need = WINDOW * 2 ** (len(betas) - 1)
    if min(x.shape[-2:]) < need:
        raise ValueError(f"MS-SSIM with {len(betas)} scales and an {WINDOW} px window needs images of at least {need} px, got {tuple(x.shape[-2:])}")


def ms_ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, betas=BETAS, alpha: float = ALPHA) -> torch.Tensor:
    """The paper's eq. (5): MS-SSIM(j) for every pixel j, shape (N, 1, H, W), for (N, 1, H, W) inputs
    with sides >= MIN_SIZE (176 px). In float32 whatever the autocast state, as ``ms_ssim``."""
    _check_size(x, betas)
    size = x.shape[-2:]
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()
        out = None
        for k, beta in enumerate(betas):
            if k:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
            lum, cs = luminance_and_cs_maps(x, y, data_range)
            last = k == len(betas) - 1
            maps = torch.cat([cs, lum], dim=1) if last else cs
            if k:  # the value at pixel j's position in the coarser grid
                maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
            term = maps[:, :1].clamp(min=FLOOR) ** beta
            if last:
                term = term * maps[:, 1:].clamp(min=FLOOR) ** alpha
            out = term if out is None else out * term
        return out


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, betas=BETAS) -> torch.Tensor:
    """MS-SSIM per image, shape (N,), for (N, 1, H, W) tensors with sides >= MIN_SIZE (176 px).

    Computed in float32 whatever the autocast state (bf16 variances of near-equal images are
    noise), so it is the same number in a bf16 training step and in an fp32 evaluation.
    """
    _check_size(x, betas)
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
