"""Writing files so that nobody ever reads half of one: write a temporary file beside the target,
then rename it over the target (atomic on POSIX). On any error the temporary file is removed and
the target is left as it was."""
from __future__ import annotations

import errno
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
def atomic_path(path: str | Path, replace: bool = True):
    """Yield a temporary path in the target's folder; on success it becomes ``path``.

    ``replace=True``: it replaces whatever is at ``path``. ``replace=False``: it is put in place
    only if nothing is at ``path`` at that moment (a hard link, which fails when the name exists:
    a file that another writer made meanwhile, or a symbolic link, is never replaced); otherwise
    FileExistsError and the temporary file is removed. On file systems without hard links the
    check and the rename are two steps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short hidden name (not the target's: a long but legal name plus a prefix can be too long),
    # with the target's suffix (some writers choose the format by it).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix[:16])
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _link_new(tmp: str, path: Path) -> None:
    """Give the file ``tmp`` the name ``path`` only if that name is free (FileExistsError if not)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "exists already; not replaced", str(path)) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(path):  # no hard links here: check, then rename
            raise FileExistsError(errno.EEXIST, "exists already; not replaced", str(path)) from None
        os.replace(tmp, path)


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
