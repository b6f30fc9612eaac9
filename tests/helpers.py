"""Helpers the tests share (imported as ``from helpers import ...``; fixtures live in conftest.py)."""
import os
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dae_lib.config import load_config
from dae_lib.runs import REPO_ROOT
from dae_lib.phantom import chest_phantom


def tiny_config(**kw):
    """The smoke profile at 64 px on 12 phantom cases, 2 epochs of DAE in fp32 (``kw`` overrides)."""
    base = dict(image_size=64, n_phantom=12, phantom_seed=3, epochs=2, batch_size=4, variant="dae", amp="off")
    base.update(kw)
    return load_config("smoke", **base)


def write_pair_folder(root, n=5, size=96, layout="flat", inverted=True, bits=8, seed=0):
    """Write n phantom pairs as PNG files in the flat or Kaggle layout; returns (root, ids)."""
    from dae_lib.data import LAYOUTS

    sub = LAYOUTS[layout]
    xd, sd = root / sub[0], root / sub[1]
    xd.mkdir(parents=True, exist_ok=True)
    sd.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        x, s, _ = chest_phantom(size, seed=seed + i)
        if inverted:
            x, s = 1 - x, 1 - s
        cid = f"JPC{'LN' if i % 3 == 0 else 'NN'}{i + 1:03d}"
        ids.append(cid)
        for img, d in ((x, xd), (s, sd)):
            if bits == 8:
                Image.fromarray(np.round(img.numpy() * 255).astype(np.uint8)).save(d / f"{cid}.png")
            else:
                Image.fromarray(np.round(img.numpy() * 65535).astype(np.uint16)).save(d / f"{cid}.png")
    return root, ids


#: Where the shared BSE-JSRT copy lies beside a checkout (override with DAE_REAL_DATA): the real-data tests.
SHARED_DATA = Path(os.environ.get("DAE_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "bse-jsrt-512"))
real_data = pytest.mark.skipif(not (SHARED_DATA / "JSRT").is_dir(), reason=f"real BSE-JSRT folder not found at {SHARED_DATA}")


def tiny_run_folder(folder, variant="ae", image_size=64, seed=0):
    """A run folder as inference reads it (config.json + untrained best.safetensors), no training:
    for tests of the code around a model, not of what it learnt."""
    import json

    import torch
    from safetensors.torch import save_file

    from dae_lib.models import build_model

    cfg = tiny_config(variant=variant, image_size=image_size)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    torch.manual_seed(seed)
    model = build_model(cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "best.safetensors"))
    return folder


def phantom_radiograph(size=256, seed=0, inverted=False):
    """A phantom radiograph X as a float array in [0, 1] (clinical unless ``inverted``)."""
    x = chest_phantom(size, seed=seed)[0].numpy().astype(np.float64)
    return 1 - x if inverted else x


def bomb_png(path, w=60000, h=60000):
    """A valid PNG header that declares a huge image (w x h), with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return path


def run_ok(args, cwd, timeout=900, env=None) -> str:
    """Run a command; its stdout, or an assertion naming the command with the end of its output."""
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@dataclass(frozen=True)
class InstalledPackage:
    root: Path  # a temporary folder outside the checkout
    python: Path
    bin: Path
    site: Path  # the venv's site-packages, where dae_lib is installed

    def environment(self) -> dict:
        """os.environ with the venv first on PATH and without what points at the checkout or the
        test session's notebook settings (DAE_PROFILE, DAE_DATA, DAE_OUT, DAE_ROOT)."""
        env = {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}
        for name in ("PYTHONPATH", "DAE_PROFILE", "DAE_DATA", "DAE_OUT", "DAE_ROOT"):
            env.pop(name, None)
        return env


def install_wheel(root: Path) -> InstalledPackage:
    """Build the wheel of this checkout (pip wheel, build isolation) and install it with --no-deps
    into a fresh venv under ``root``; the running environment's packages are borrowed by a .pth."""
    run_ok([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", root / "dist", REPO_ROOT], cwd=root)
    wheel = next((root / "dist").glob("dae_lib-*.whl"))
    env_dir = root / "env"
    venv.create(env_dir, with_pip=False, symlinks=True)
    py = env_dir / "bin" / "python"
    run_ok([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--quiet", "--disable-pip-version-check", wheel], cwd=root)
    site = Path(run_ok([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).strip())
    (site / "zz_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co., not dae_lib
    return InstalledPackage(root, py, env_dir / "bin", site)
