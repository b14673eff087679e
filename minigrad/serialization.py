"""Parameters on disk: one checksummed file of named arrays, written atomically, read without unpickling.

The format (version 1), byte by byte::

    offset 0   13 bytes   magic  b"\\x89minigrad\\r\\n\\x1a\\n"  (PNG-style: catches text-mode and 7-bit copies)
    offset 13   8 bytes   H, the header's length, unsigned little-endian
    offset 21   H bytes   the header: ASCII JSON, padded with spaces so the data starts on a 64-byte boundary
                32 bytes  sha256 of everything before it (magic, H and header)
                ...       the data: each array's bytes in C order, at the offset the header gives, zero padding between

The header is ``{"format": "minigrad", "version": 1, "data_bytes": N, "arrays": [...]}`` with one entry per
array, in the order they were saved: ``{"key", "dtype", "shape", "offset", "nbytes", "sha256"}`` (``dtype`` is
numpy's ``dtype.str``, e.g. ``"<f8"``; ``offset`` counts from the start of the data; ``sha256`` is of the array's
bytes). Every byte of the file is checked on load: the magic and the header by the header checksum, each array
by its own, the padding must be zeros, and the file's size must be exactly what the header says. So ``load``
returns everything that was saved, bit for bit, or raises one ``ValueError`` naming the file and what is wrong.
Sizes are checked against the file's size before anything is allocated, and nothing is ever unpickled.

The file name's extension does not matter (``.npz`` is customary here), but the file is not a zip: read it with
``mg.load``, not ``np.load``. Files written by earlier versions (plain ``np.savez`` archives, recognised by
their ``PK`` start, which no single flipped bit or cut can make of this format's magic) are still read, as
before, with a few added checks (see ``_load_npz``); they have no manifest, so not every damage to them is
caught (a flipped bit in an array's value is, by zip's CRC-32; a damaged name may not be): save them again
to upgrade.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["save", "load", "atomic_write"]

_UMASK = os.umask(0)  # read the process umask (the only way is to set it) ...
os.umask(_UMASK)  # ... and put it back at once
_UMASKED_MODE = 0o666 & ~_UMASK

MAGIC = b"\x89minigrad\r\n\x1a\n"
VERSION = 1
_ALIGN = 64
_KINDS = "biufcSUmM"  # bool, int, uint, float, complex, bytes, str, timedelta, datetime: no objects, no structs
_KINDS_TEXT = "bool, integer, float, complex, bytes, str or datetime"


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
        _fsync_directory(path.parent)  # the rename itself survives a power cut only once the directory is synced
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _fsync_directory(directory: Path) -> None:
    """fsync a directory (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pad(n: int) -> int:
    return -n % _ALIGN


# ----------------------------------------------------------------------------- save
def _arrays_to_save(obj: Any) -> dict[str, np.ndarray]:
    """The {str key: array} that ``save`` writes, or a TypeError/ValueError naming what is wrong."""
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(state, Mapping):
        what = (
            type(obj).__name__
            if state is obj
            else f"{type(obj).__name__}.state_dict() returning {type(state).__name__}"
        )
        raise TypeError(
            "save: takes a Module or optimizer (anything with .state_dict()) or a dict {name: array}, "
            f"got {what}; to save one array, name it: mg.save({{'x': x}}, path)"
        )
    arrays: dict[str, np.ndarray] = {}
    for k, v in state.items():
        if not isinstance(k, str):
            clash = f", and it would collide with the key {str(k)!r}" if str(k) in state else ""
            raise ValueError(
                f"save: key {k!r} is a {type(k).__name__}, not a str{clash}; keys must be strings so that load "
                "gives back the same keys (convert them yourself, e.g. str(k), if that is what you mean)"
            )
        try:
            a = v if isinstance(v, np.ndarray) else np.asarray(getattr(v, "data", v))  # a Tensor's .data
        except (ValueError, TypeError) as e:
            raise TypeError(f"save: entry {k!r} is not an array ({e})") from None
        if a.dtype.kind not in _KINDS or a.dtype.itemsize == 0:
            raise TypeError(
                f"save: entry {k!r} is not a numeric array (dtype {'object' if a.dtype == object else a.dtype}); "
                f"save takes arrays of {_KINDS_TEXT}"
            )
        arrays[str(k)] = a  # str(): a str subclass (np.str_) comes back as plain str
    return arrays


def _write(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``f`` in the format of this module's docstring."""
    entries, blobs, offset = [], [], 0
    for k, a in arrays.items():
        raw = a.tobytes(order="C")
        offset += _pad(offset)
        entries.append(
            {
                "key": k,
                "dtype": a.dtype.str,
                "shape": list(a.shape),
                "offset": offset,
                "nbytes": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
        )
        blobs.append((offset, raw))
        offset += len(raw)
    header = json.dumps({"format": "minigrad", "version": VERSION, "data_bytes": offset, "arrays": entries})
    header_bytes = header.encode("ascii")  # json.dumps escapes every non-ASCII character (and lone surrogates)
    header_bytes += b" " * _pad(len(MAGIC) + 8 + len(header_bytes) + 32)
    head = MAGIC + struct.pack("<Q", len(header_bytes)) + header_bytes
    f.write(head + hashlib.sha256(head).digest())
    at = 0
    for off, raw in blobs:
        f.write(b"\0" * (off - at))
        f.write(raw)
        at = off + len(raw)


def save(obj: Any, path: str | os.PathLike) -> None:
    """Save a Module's or optimizer's ``state_dict()``, or a ``{name: array}`` dict, to ``path``, atomically.

    The file is this module's checksummed format (see the module docstring). Keys must be ``str`` (any
    string: ``""``, ``"allow_pickle"``, ``"a/b"``, non-ASCII): every one comes back from ``load``, in order.
    A non-string key (``{1: a}``) is refused with a ValueError naming it, rather than turned into ``"1"``
    (which could collide with a real ``"1"``). Values are arrays, Tensors or anything ``np.asarray`` takes,
    of bool, integer, float, complex, bytes, str or datetime dtype (a TypeError names any other entry).
    Everything is checked before the file is touched; the old file survives a failed or interrupted save.
    """
    arrays = _arrays_to_save(obj)
    atomic_write(path, lambda f: _write(f, arrays))


# ----------------------------------------------------------------------------- load
class _BadFileError(Exception):
    """What is wrong with the file; ``load`` turns it into a ValueError that names the file."""


def _parse_header(buf: bytearray) -> list[dict[str, Any]]:
    """Check the magic, the header and its checksum and the sizes; return the array entries."""
    n = len(buf)
    if n == 0:
        raise _BadFileError("truncated: the file is empty")
    if n < len(MAGIC):
        if MAGIC.startswith(bytes(buf)):
            raise _BadFileError(f"truncated: {n} bytes, it ends inside the signature")
        raise _BadFileError("it does not start with the minigrad signature")
    if buf[: len(MAGIC)] != MAGIC:
        raise _BadFileError("it does not start with the minigrad signature")
    if n < len(MAGIC) + 8:
        raise _BadFileError(f"truncated: {n} bytes, it ends inside the header length")
    (h,) = struct.unpack_from("<Q", buf, len(MAGIC))
    head_end = len(MAGIC) + 8 + h
    if head_end + 32 > n:
        raise _BadFileError(f"truncated or corrupt: the header claims {h} bytes but the file has {n} bytes in all")
    if hashlib.sha256(buf[:head_end]).digest() != buf[head_end : head_end + 32]:
        raise _BadFileError("the header fails its sha256 checksum: the file was damaged after it was written")
    try:
        header = json.loads(buf[len(MAGIC) + 8 : head_end].decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _BadFileError(f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != "minigrad":
        raise _BadFileError("the header does not describe minigrad arrays")
    if header.get("version") != VERSION:
        raise _BadFileError(f"format version {header.get('version')!r}; this minigrad reads version {VERSION}")
    entries, data_bytes = header.get("arrays"), header.get("data_bytes")
    if not isinstance(entries, list) or not _is_count(data_bytes):
        raise _BadFileError("the header has no list of arrays or no data size")
    data_start = head_end + 32
    if data_start + data_bytes != n:
        raise _BadFileError(f"truncated or corrupt: the header says {data_start + data_bytes} bytes, the file has {n}")
    seen: set[str] = set()
    at = 0
    for i, e in enumerate(entries):
        _check_entry(i, e, seen, at, data_bytes)
        at = e["offset"] + e["nbytes"]
    return entries


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_entry(i: int, e: Any, seen: set[str], at: int, data_bytes: int) -> None:
    fields = {"key", "dtype", "shape", "offset", "nbytes", "sha256"}
    if not isinstance(e, dict) or set(e) != fields or not (_is_count(e["offset"]) and _is_count(e["nbytes"])):
        raise _BadFileError(f"array entry {i} of the header is malformed")
    key, descr, shape = e["key"], e["dtype"], e["shape"]
    if not isinstance(key, str) or key in seen:
        raise _BadFileError(f"array entry {i} has a bad or repeated key {key!r}")
    seen.add(key)
    try:
        dtype = np.dtype(descr) if isinstance(descr, str) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.str != descr or dtype.kind not in _KINDS or dtype.itemsize == 0:
        raise _BadFileError(f"array {key!r} has an unsupported dtype {descr!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _BadFileError(f"array {key!r} has a bad shape {shape!r}")
    if e["nbytes"] != math.prod(shape) * dtype.itemsize:  # Python ints: a shape of 10**15 cannot overflow
        raise _BadFileError(f"array {key!r}: shape {tuple(shape)} of {descr} does not match its size {e['nbytes']!r}")
    if e["offset"] != at + _pad(at) or e["offset"] + e["nbytes"] > data_bytes:
        raise _BadFileError(f"array {key!r} lies outside the data")
    sha = e["sha256"]
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise _BadFileError(f"array {key!r} has a malformed checksum")


def _load_v1(buf: bytearray) -> dict[str, np.ndarray]:
    entries = _parse_header(buf)
    (h,) = struct.unpack_from("<Q", buf, len(MAGIC))
    data = memoryview(buf)[len(MAGIC) + 8 + h + 32 :]
    state: dict[str, np.ndarray] = {}
    at = 0
    for e in entries:
        off, nbytes = e["offset"], e["nbytes"]
        if any(data[at:off]):
            raise _BadFileError(f"the padding before array {e['key']!r} is not zeros: the file was damaged")
        if hashlib.sha256(data[off : off + nbytes]).hexdigest() != e["sha256"]:
            raise _BadFileError(
                f"array {e['key']!r} fails its sha256 checksum: the file was damaged after it was written"
            )
        dtype = np.dtype(e["dtype"])
        flat = np.frombuffer(buf, dtype, nbytes // dtype.itemsize, len(buf) - len(data) + off) if nbytes else None
        state[e["key"]] = flat.reshape(e["shape"]) if flat is not None else np.empty(e["shape"], dtype)
        at = off + nbytes
    if any(data[at:]):
        raise _BadFileError("the padding after the last array is not zeros: the file was damaged")
    return state


def _load_npz(path: Path, buf: bytearray) -> dict[str, np.ndarray]:
    """Read a file from before the checksummed format (an ``np.savez`` archive), as earlier versions did.

    The zip's own CRC-32s are checked (by zipfile), each member's size against its .npy header, and the
    number of members against the count in the zip's end record (a damaged directory can hide members).
    """
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy array has no names
            raise _BadFileError("it holds a single array (.npy), not an archive of named arrays")
        with z:
            listed, found = _zip_entry_count(buf), len(z.zip.infolist())
            if listed is not None and listed != found:
                raise _BadFileError(f"the archive's end record counts {listed} members but {found} were found")
            state = {}
            for k in z.files:
                _check_npy_size(z.zip, k)
                state[k] = z[k]
                if not isinstance(state[k], np.ndarray):  # numpy hands back other zip members as raw bytes
                    raise _BadFileError(f"member {k!r} is not a .npy array")
        return state
    except _BadFileError:
        raise
    except Exception as e:  # zipfile and numpy raise many kinds on a damaged archive: all mean the same here
        raise _BadFileError(f"not an intact archive of arrays ({type(e).__name__}: {e})") from None


def _zip_entry_count(buf: bytearray) -> int | None:
    """The member count in a zip's end-of-central-directory record (None if absent or in zip64's record)."""
    at = buf.rfind(b"PK\x05\x06", max(0, len(buf) - 22 - 65535))
    if at < 0 or at + 22 > len(buf):
        return None
    (count,) = struct.unpack_from("<H", buf, at + 10)
    return None if count == 0xFFFF else count


def _check_npy_size(zf: zipfile.ZipFile, key: str) -> None:
    """Refuse a member whose .npy header claims more data than the member holds (before numpy allocates it)."""
    name = key + ".npy" if key + ".npy" in zf.namelist() else key
    info = zf.getinfo(name)
    with zf.open(info) as m:
        if m.read(6) != b"\x93NUMPY":
            return
        version = tuple(m.read(2))
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(m)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(m)
        else:
            return  # numpy reads (or refuses) other versions itself
    if not dtype.hasobject and math.prod(shape) * dtype.itemsize > info.file_size:
        raise _BadFileError(f"member {key!r} claims shape {shape} of {dtype}, more than its {info.file_size} bytes")


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a file written by ``save``: ``{key: array}``, every array that was saved, bit for bit, in order.

    Never unpickles. A missing file is a FileNotFoundError; a file that is not ours, truncated, or damaged
    in any byte (see the module docstring for the checks) is one ValueError that names the file and what is
    wrong, never a partial dict (an error reading the disk itself, e.g. PermissionError, is left as the
    OSError it is). Files from before the checksummed format (``np.savez`` archives) are read
    as before, without the checks they cannot carry.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = bytearray(size)
            if f.readinto(buf) != size or f.read(1):
                raise _BadFileError("the file changed size while it was being read")
        if buf[:2] == b"PK":
            return _load_npz(path, buf)
        return _load_v1(buf)
    except _BadFileError as e:
        raise ValueError(f"load: {path} is not a readable minigrad parameter file: {e}") from None
