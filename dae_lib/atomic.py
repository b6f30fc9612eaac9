"""Writing files so that nobody ever reads half of one: write a temporary file beside the target,
then rename it over the target (atomic on POSIX). On any error the temporary file is removed and
the target is left as it was."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path in the target's folder; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"tmp-{path.stem}-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_csv(path: str | Path, df) -> Path:
    """Append the rows of DataFrame ``df`` to the CSV at ``path`` (columns united), atomically."""
    import pandas as pd

    path = Path(path)
    if path.exists() and path.stat().st_size > 0:
        df = pd.concat([pd.read_csv(path), df], ignore_index=True)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def write_json_atomic(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically (non-JSON values such as paths as text)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return path
