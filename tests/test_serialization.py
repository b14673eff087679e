"""mg.save / mg.load lose no data: every key round-trips or is refused at save time, and a damaged file
is one clear ValueError, never a partial dict, a raw zipfile/numpy error or a MemoryError (issue 17)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import time
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.serialization import MAGIC


def assert_exact(back: dict, state: dict) -> None:
    """Same keys in the same order, and each array the same dtype, shape and bytes."""
    assert list(back) == list(state)
    for k, v in state.items():
        v = np.asarray(v)
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        assert back[k].tobytes() == v.tobytes(), k


def forge(raw: bytes, edit) -> bytes:
    """Rewrite a saved file's header with ``edit(header)`` and a *valid* checksum: what an adversary could do."""
    (h,) = struct.unpack_from("<Q", raw, len(MAGIC))
    head_end = len(MAGIC) + 8 + h
    header = json.loads(raw[len(MAGIC) + 8 : head_end])
    edit(header)
    text = json.dumps(header).encode("ascii")
    text += b" " * (h - len(text))  # keep the data where it was
    head = MAGIC + struct.pack("<Q", len(text)) + text
    return head + hashlib.sha256(head).digest() + raw[head_end + 32 :]


SMALL = {"a": np.array([1.5, -0.0, np.nan]), "b": np.array([7, -8], dtype=np.int32)}


# ---------------------------------------------------------------------------
# The fuzz test: every single-bit flip and every truncation of a small file
# ---------------------------------------------------------------------------
def test_every_bit_flip_and_every_truncation_loads_exactly_or_is_a_value_error(tmp_path):
    path = tmp_path / "small.npz"
    mg.save(SMALL, path)
    raw = path.read_bytes()
    assert len(raw) < 1024  # a small file: the whole test stays well under the time box
    bad = tmp_path / "bad.npz"
    exact = refused = 0
    start = time.perf_counter()

    def attempt(content: bytes, what: str) -> None:
        nonlocal exact, refused
        bad.write_bytes(content)
        try:
            back = mg.load(bad)
        except ValueError as e:
            assert str(e).startswith(f"load: {bad} "), (what, str(e))  # one message, naming the file
            refused += 1
            return
        except Exception as e:  # noqa: BLE001 - exactly what the test is here to catch
            pytest.fail(f"{what}: {type(e).__name__}: {e}")
        assert_exact(back, SMALL)  # never a partial or altered result
        exact += 1

    for byte in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[byte] ^= 1 << bit
            attempt(bytes(flipped), f"byte {byte} bit {bit} flipped")
    for n in range(len(raw)):
        attempt(raw[:n], f"truncated to {n} bytes")
    attempt(raw, "intact")
    seconds = time.perf_counter() - start
    tried = 8 * len(raw) + len(raw) + 1
    print(f"fuzz: {8 * len(raw)} flips, {len(raw)} truncations of a {len(raw)}-byte file: "
          f"{exact} loaded exactly, {refused} ValueError, {seconds:.2f} s")  # fmt: skip
    assert exact + refused == tried and exact >= 1  # the intact file loads


# ---------------------------------------------------------------------------
# Keys: any string round-trips; anything else is refused at save time
# ---------------------------------------------------------------------------
NASTY_KEYS = ["allow_pickle", "file", "args", "kwds", "arr_0", "", "a/b", "../up", "a.npy", "ü ∂ 字", "\x00", "\ud800"]


def test_any_string_key_round_trips_in_order_even_numpys_own_argument_names(tmp_path):
    state = {k: np.full(i + 1, float(i)) for i, k in enumerate(NASTY_KEYS)}
    state["w"] = np.zeros(2)
    mg.save(state, tmp_path / "k.npz")
    assert_exact(mg.load(tmp_path / "k.npz"), state)


def test_the_issue_reproduction_allow_pickle_is_not_lost(tmp_path):
    p = tmp_path / "p.npz"
    mg.save({"allow_pickle": np.ones(3), "w": np.zeros(2)}, p)
    assert sorted(mg.load(p)) == ["allow_pickle", "w"]


@pytest.mark.parametrize(
    "state, message",
    [
        ({1: np.ones(1)}, r"save: key 1 is a int, not a str;"),
        ({1: np.ones(1), "1": np.zeros(1)}, r"save: key 1 is a int, not a str, and it would collide with the key '1'"),
        ({"1": np.zeros(1), 1: np.ones(1)}, r"key 1 is a int, not a str, and it would collide with the key '1'"),
        ({("a", 1): np.ones(1)}, r"save: key \('a', 1\) is a tuple"),
        ({b"w": np.ones(1)}, r"save: key b'w' is a bytes"),
        ({None: np.ones(1)}, r"save: key None is a NoneType"),
    ],
    ids=["int", "int colliding with str", "str then colliding int", "tuple", "bytes", "None"],
)
def test_non_string_keys_are_refused_at_save_time_and_the_old_file_survives(tmp_path, state, message):
    path = tmp_path / "s.npz"
    mg.save({"old": np.ones(2)}, path)
    with pytest.raises(ValueError, match=message):
        mg.save(state, path)
    assert_exact(mg.load(path), {"old": np.ones(2)})


def test_a_numpy_string_key_comes_back_as_the_same_string(tmp_path):
    mg.save({np.str_("w"): np.ones(1)}, tmp_path / "s.npz")
    (key,) = mg.load(tmp_path / "s.npz")
    assert key == "w" and type(key) is str


@pytest.mark.parametrize(
    "obj",
    [mg.Tensor(np.ones(3)), np.ones(3), [np.ones(3)], (1, 2), 3.0, "weights", None],
    ids=["Tensor", "array", "list", "tuple", "float", "str", "None"],
)
def test_saving_something_that_is_not_a_dict_or_module_says_what_save_takes(tmp_path, obj):
    with pytest.raises(TypeError, match=r"save: takes a Module or optimizer .* or a dict \{name: array\}, got"):
        mg.save(obj, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_a_ragged_entry_is_a_type_error_naming_the_key(tmp_path):
    with pytest.raises(TypeError, match="save: entry 'r' is not an array"):
        mg.save({"r": [[1, 2], [3]]}, tmp_path / "x.npz")


# ---------------------------------------------------------------------------
# Values: every supported dtype, shape and layout round-trips bit for bit
# ---------------------------------------------------------------------------
def test_every_supported_dtype_shape_and_layout_round_trips_bit_exactly(tmp_path):
    rng = np.random.default_rng(0)
    state = {
        "f64": rng.standard_normal((3, 4)),
        "f32": rng.standard_normal(5).astype(np.float32),
        "f16": np.array([1e-7, 65504, -0.0], dtype=np.float16),
        "big-endian": np.arange(3, dtype=">f8"),
        "special": np.array([np.nan, np.inf, -np.inf, 5e-324, np.finfo(float).max]),
        "c128": np.array([1 + 2j, np.nan * 1j]),
        "bool": np.array([True, False]),
        "i8": np.array([-128, 127], dtype=np.int8),
        "u64": np.array([2**64 - 1], dtype=np.uint64),
        "scalar": np.array(-0.0),
        "empty": np.zeros((0, 3)),
        "fortran": np.asfortranarray(rng.standard_normal((3, 2))),
        "strided": rng.standard_normal((4, 6))[::2, ::3],
        "str": np.array('{"config": "ü"}'),
        "bytes": np.array([b"ab", b"\x00"]),
        "datetime": np.array(["2026-12-02T06:00"], dtype="datetime64[m]"),
        "list": [[1.0, 2.0]],
        "tensor": mg.Tensor(np.ones(2)),
    }
    mg.save(state, tmp_path / "d.npz")
    back = mg.load(tmp_path / "d.npz")
    assert_exact(back, {k: v.data if isinstance(v, mg.Tensor) else np.asarray(v) for k, v in state.items()})
    back["f64"][0, 0] = 42.0  # the arrays are ordinary writable arrays
    assert back["f64"].flags.writeable and back["f32"][0] == state["f32"][0]


def test_an_empty_dict_round_trips(tmp_path):
    mg.save({}, tmp_path / "e.npz")
    assert mg.load(tmp_path / "e.npz") == {}


def test_an_optimizer_state_dict_round_trips_through_a_file(tmp_path):
    lin = nn.Linear(3, 2)
    opt = optim.Adam(lin.parameters(), lr=0.1)
    lin(mg.Tensor(np.ones((1, 3)))).sum().backward()
    opt.step()
    mg.save(opt, tmp_path / "opt.npz")
    fresh = optim.Adam(nn.Linear(3, 2).parameters(), lr=0.1)
    fresh.load_state_dict(mg.load(tmp_path / "opt.npz"))
    assert fresh.t == opt.t == 1
    assert_exact(fresh.state_dict(), opt.state_dict())


# ---------------------------------------------------------------------------
# Damage that a checksum alone would not stop: forged headers with valid checksums
# ---------------------------------------------------------------------------
def value_error_for(tmp_path, content: bytes) -> str:
    path = tmp_path / "forged.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError) as e:
        mg.load(path)
    assert str(e.value).startswith(f"load: {path} is not a readable minigrad parameter file: ")
    return str(e.value)


@pytest.fixture
def raw(tmp_path) -> bytes:
    mg.save(SMALL, tmp_path / "small.npz")
    return (tmp_path / "small.npz").read_bytes()


def test_a_header_claiming_ten_to_the_fifteen_elements_is_a_value_error_not_a_memory_error(tmp_path, raw):
    def huge(h):
        h["arrays"][0]["shape"] = [10**15]
        h["arrays"][0]["nbytes"] = 8 * 10**15

    assert "lies outside the data" in value_error_for(tmp_path, forge(raw, huge))

    def huge_data(h):
        h["data_bytes"] = 8 * 10**15

    assert "the header says" in value_error_for(tmp_path, forge(raw, huge_data))


def test_a_header_length_of_two_to_the_sixty_three_is_a_value_error(tmp_path, raw):
    content = MAGIC + struct.pack("<Q", 2**63) + raw[len(MAGIC) + 8 :]
    assert "the header claims 9223372036854775808 bytes" in value_error_for(tmp_path, content)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda h: h["arrays"][0].update(shape=[4]), "shape (4,) of <f8 does not match its size 24"),
        (lambda h: h["arrays"][0].update(dtype="|O"), "unsupported dtype '|O'"),
        (lambda h: h["arrays"][0].update(dtype="<f4"), "shape (3,) of <f4 does not match"),
        (lambda h: h["arrays"][1].update(key="a"), "bad or repeated key 'a'"),
        (lambda h: h["arrays"][1].update(offset=8), "array 'b' lies outside the data"),
        (lambda h: h["arrays"][0].update(shape=[-3]), "bad shape [-3]"),
        (lambda h: h["arrays"][0].update(nbytes=24.0), "array entry 0 of the header is malformed"),
        (lambda h: h["arrays"][0].update(sha256="0" * 64), "array 'a' fails its sha256 checksum"),
        (lambda h: h["arrays"].pop(), "padding after the last array is not zeros"),
        (lambda h: h.update(version=2), "format version 2; this minigrad reads version 1"),
        (lambda h: h.update(format="other"), "does not describe minigrad arrays"),
    ],
    ids=[
        "shape",
        "object dtype",
        "dtype",
        "repeated key",
        "overlap",
        "negative",
        "float size",
        "checksum",
        "dropped",
        "v2",
        "fmt",
    ],
)
def test_a_forged_but_checksummed_header_is_still_caught(tmp_path, raw, edit, message):
    assert forge(raw, lambda h: None) == raw  # the forger itself changes nothing
    assert message in value_error_for(tmp_path, forge(raw, edit))


def test_a_flipped_data_bit_names_the_damaged_array(tmp_path, raw):
    data = len(raw) - 72  # the data: 'a' (24 bytes) at 0, zeros, 'b' (8 bytes) at 64
    for at, message in [
        (data + 23, "array 'a' fails its sha256 checksum"),
        (data + 40, "the padding before array 'b' is not zeros"),
        (len(raw) - 1, "array 'b' fails its sha256 checksum"),
    ]:
        damaged = bytearray(raw)
        damaged[at] ^= 0x80
        assert message in value_error_for(tmp_path, bytes(damaged))


def test_a_flipped_header_bit_says_the_header_fails_its_checksum(tmp_path, raw):
    damaged = bytearray(raw)
    damaged[40] ^= 4
    assert "the header fails its sha256 checksum" in value_error_for(tmp_path, bytes(damaged))


# ---------------------------------------------------------------------------
# Files from before the checksummed format, and the write path
# ---------------------------------------------------------------------------
def test_a_file_in_the_old_npz_format_is_still_read(tmp_path):
    np.savez(tmp_path / "old.npz", w=np.arange(3.0), b=np.ones(2, dtype=np.int32))
    assert_exact(mg.load(tmp_path / "old.npz"), {"w": np.arange(3.0), "b": np.ones(2, dtype=np.int32)})


def test_an_old_npz_whose_member_claims_ten_to_the_fifteen_elements_is_a_value_error(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, w=np.arange(3.0))
    with zipfile.ZipFile(path) as z:
        member = z.read("w.npy")
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }"
    forged = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117) + b"\n" + member[128:]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", forged)
    assert "claims shape (1000000000000000,)" in value_error_for_old(path)


def value_error_for_old(path) -> str:
    with pytest.raises(ValueError, match=f"load: {path} is not a readable minigrad parameter file") as e:
        mg.load(path)
    return str(e.value)


def test_an_old_npz_with_raw_zipfile_damage_is_a_value_error(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, w=np.arange(3.0))
    raw = path.read_bytes()
    at = raw.index(np.arange(3.0).tobytes())
    for offset, bit in [(at + 9, 1), (at - 200, 64)]:  # the data (a bad CRC-32), then anything from the start
        damaged = bytearray(raw)
        damaged[max(offset, 0)] ^= bit
        path.write_bytes(bytes(damaged))
        value_error_for_old(path)


def test_save_fsyncs_the_data_before_it_renames_the_file_into_place(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):  # record what was synced: the file's data, then the directory holding the rename
        calls.append("fsync directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    mg.save(SMALL, tmp_path / "s.npz")
    assert calls == ["fsync file", "replace", "fsync directory"]
    assert_exact(mg.load(tmp_path / "s.npz"), SMALL)


@pytest.mark.parametrize("extra", [b"\0", b"\0" * 64, b"more data"], ids=["one zero", "64 zeros", "text"])
def test_bytes_appended_to_a_file_are_a_value_error_not_ignored(tmp_path, raw, extra):
    message = value_error_for(tmp_path, raw + extra)
    assert f"the header says {len(raw)} bytes, the file has {len(raw) + len(extra)}" in message


def test_an_old_npz_whose_directory_hides_a_member_is_a_value_error_not_a_partial_dict(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, **SMALL)
    raw = path.read_bytes()
    damaged = bytearray(raw)
    damaged[raw.index(b"PK\x01\x02") + 32] ^= 0x40  # the first entry's comment length: it swallows the second
    path.write_bytes(bytes(damaged))
    assert "the archive's end record counts 2 members but 1 were found" in value_error_for_old(path)


def test_every_bit_flip_in_an_old_npz_directory_loads_exactly_or_is_a_value_error(tmp_path):
    """The old format has no checksums of its own, but its zip directory must not hide members silently."""
    path = tmp_path / "old.npz"
    np.savez(path, **SMALL)
    raw = path.read_bytes()
    bad = tmp_path / "bad.npz"
    start = raw.index(b"PK\x01\x02")  # the central directory and the end record
    for byte in range(start, len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[byte] ^= 1 << bit
            bad.write_bytes(bytes(flipped))
            try:
                back = mg.load(bad)
            except ValueError:
                continue
            assert_exact(back, SMALL)
