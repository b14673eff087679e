"""Parameters on disk: .npz archives, written atomically, read without unpickling."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["save", "load", "atomic_write"]

_UMASK = os.umask(0)  # read the process umask (the only way is to set it) ...
os.umask(_UMASK)  # ... and put it back at once
_UMASKED_MODE = 0o666 & ~_UMASK


def atomic_write(path: str | os.PathLike, write: Any, mode: str = "wb") -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it over ``path``.

    A crash halfway leaves the old file intact, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _UMASKED_MODE)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(obj: Any, path: str | os.PathLike) -> None:
    """Save a Module's parameters (or a {name: array} dict) to an .npz file, atomically."""
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    arrays = {}
    for k, v in state.items():
        a = np.asarray(getattr(v, "data", v))
        if a.dtype == object:
            raise TypeError(f"save: entry {k!r} is not a numeric array (dtype object)")
        arrays[str(k)] = a
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an .npz written by ``save``; never unpickles. Raises a clear error for
    a missing, truncated or foreign file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy array has no context manager, no names
            raise ValueError("it holds a single array (.npy), not an archive of named arrays")
        with z:
            state = {k: z[k] for k in z.files}
        for k, v in state.items():
            if not isinstance(v, np.ndarray):  # numpy hands back other zip members as raw bytes
                raise ValueError(f"member {k!r} is not a .npy array")
        return state
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValueError(f"load: {path} is not a minigrad .npz parameter file (or it is truncated): {e}") from None
