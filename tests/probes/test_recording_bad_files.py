"""A recording file that is not what ``Recording.save`` writes is refused with one ValueError
naming the file and the field: damaged or foreign files, missing arrays or metadata, arrays of
other shapes, dtypes or sizes than the stored spec gives, and non-finite hidden states. Nothing
in a file is unpickled, and an array's size is checked from its header before it is read."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from multitask_evidence.probes import load_recording
from multitask_evidence.probes.record import Recording, record

_UNSET = object()


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A small valid recording file (8 trials of the ideal agent on the paper task)."""
    from multitask_evidence.envs import TaskSpec
    from multitask_evidence.probes import synthetic

    spec = TaskSpec(encoder="none")
    rec = record(synthetic.IdealAgent(spec, hidden=4), spec, 8, seed=3)
    return rec.save(tmp_path_factory.mktemp("rec") / "good.npz")


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _variant(good: Path, tmp_path: Path, meta_json: object = _UNSET, **arrays: object) -> Path:
    """A copy of ``good`` with arrays replaced (None: left out) and its metadata replaced by
    ``meta_json`` (a JSON-able value) when given."""
    data = _arrays(good)
    if meta_json is not _UNSET:
        data["meta"] = np.array(json.dumps(meta_json))
    for name, value in arrays.items():
        if value is None:
            data.pop(name)
        else:
            data[name] = value
    out = tmp_path / "bad.npz"
    np.savez_compressed(out, **data)
    return out


def _refused(path: Path, *patterns: str) -> str:
    """The one ValueError ``load_recording`` raises; it names the file and matches
    ``patterns``."""
    with pytest.raises(ValueError) as err:
        load_recording(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    for pattern in patterns:
        assert re.search(pattern, msg), (pattern, msg)
    return msg


def test_a_good_file_reads_back(good) -> None:
    rec = load_recording(good)
    assert rec.n == 8 and rec.seed == 3
    assert rec.hidden.shape == (8, rec.spec.n_steps, 4)


# ---- files that are not recordings ------------------------------------------------------------
def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _refused(path, "not a recording file", "not a readable .npz")


def test_truncated_zip(good, tmp_path) -> None:
    path = tmp_path / "half.npz"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _refused(path, "not a recording file|truncated or corrupt")


def test_corrupt_member_data(good, tmp_path) -> None:
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("hidden.npy")
    # overwrite the middle of hidden's compressed data (the local header is 30 bytes + name)
    start = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    raw[start : start + 16] = b"\xff" * 16
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(raw))
    _refused(path, "array 'hidden' (is truncated or corrupt|:)")


def test_a_folder(tmp_path) -> None:
    path = tmp_path / "rec.npz"
    path.mkdir()
    _refused(path, "a folder")


def test_a_missing_path(tmp_path) -> None:
    _refused(tmp_path / "nothing.npz", "no such file")


def test_a_plain_npy_file(good, tmp_path) -> None:
    path = tmp_path / "plain.npz"
    np.save(path, np.zeros(3))
    (tmp_path / "plain.npz.npy").rename(path)
    _refused(path, "not a readable .npz")


# ---- missing parts -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hidden", "labels", "step", "meta"])
def test_missing_arrays_are_named(good, tmp_path, name) -> None:
    _refused(_variant(good, tmp_path, **{name: None}), rf"arrays \['{name}'\] missing")


def test_meta_without_spec(good, tmp_path) -> None:
    _refused(
        _variant(good, tmp_path, meta_json={"seed": 3}), "meta must be a JSON object with 'spec'"
    )


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda m: "{not json", "meta is not valid JSON"),
        (lambda m: [1, 2], "meta must be a JSON object"),
        (lambda m: {**m, "spec": [1]}, "meta.spec must be a TaskSpec object"),
        (lambda m: {**m, "spec": {"n_tasks": -1}}, "meta.spec is not a valid TaskSpec.*n_tasks"),
        (lambda m: {**m, "spec": {"sigma": 1e400}}, "meta.spec is not a valid TaskSpec.*sigma"),
        (lambda m: {**m, "seed": "three"}, "meta.seed must be an integer or null"),
        (lambda m: {**m, "seed": 1.5}, "meta.seed must be an integer or null"),
    ],
)
def test_bad_metadata_is_named(good, tmp_path, edit, pattern) -> None:
    """``edit(meta)``: the new metadata, a JSON value (a string is written as it is)."""
    data = _arrays(good)
    meta = edit(json.loads(str(data["meta"])))
    data["meta"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    path = tmp_path / "bad.npz"
    np.savez_compressed(path, **data)
    _refused(path, pattern)


def test_meta_that_is_not_a_string(good, tmp_path) -> None:
    data = _arrays(good)
    data["meta"] = np.zeros(3)
    path = tmp_path / "bad.npz"
    np.savez_compressed(path, **data)
    _refused(path, "meta must be one JSON string")


# ---- sizes claimed by a header -----------------------------------------------------------------
def _npz_with_headers(good: Path, tmp_path: Path, **headers: tuple[tuple, str]) -> Path:
    """``good`` with each array ``name=(shape, descr)`` replaced by a bare .npy header claiming
    that shape and dtype (no data)."""
    out = tmp_path / "huge.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            if item[: -len(".npy")] not in headers:
                dst.writestr(item, src.read(item))
        for name, (shape, descr) in headers.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": descr, "fortran_order": False, "shape": shape}
            )
            dst.writestr(f"{name}.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:])
    return out


def test_a_header_claiming_terabytes_is_refused_before_allocation(good, tmp_path) -> None:
    path = _npz_with_headers(good, tmp_path, hidden=((8, 22, 2**34), "<f4"))  # 11 TiB
    _refused(path, "array 'hidden'", "TiB of memory", "limit")


def test_arrays_too_large_together_are_refused_before_allocation(good, tmp_path) -> None:
    each = ((8, 22, 2**25), "<f8")  # 44 GiB each: within the limit alone, not together
    path = _npz_with_headers(good, tmp_path, hidden=each, outputs=each)
    _refused(path, "the recording's arrays together", "GiB of memory", "limit")


def test_huge_metadata_is_refused_before_allocation(good, tmp_path) -> None:
    path = _npz_with_headers(good, tmp_path, meta=((), "<U100000000"))
    _refused(path, "array 'meta'", "of memory")


def test_a_header_cut_short(good, tmp_path) -> None:
    path = _npz_with_headers(good, tmp_path, hidden=((8, 22, 4), "<f4"))  # a header, no data
    _refused(path, "array 'hidden'", "EOF|truncated")


def test_pickled_arrays_are_refused_unread(good, tmp_path) -> None:
    data = _arrays(good)
    data["labels"] = np.array([{"x": 1}] * 8, dtype=object)
    path = tmp_path / "objects.npz"
    np.savez(path, **data)  # object arrays are written as pickles
    _refused(path, "array 'labels'", "Python objects")


# ---- shapes and dtypes against the spec --------------------------------------------------------
def _shape_cases(a: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, str]]:
    n, t, k = a["labels"].shape[0], a["period"].shape[0], a["labels"].shape[1]
    return {
        "outputs": (np.zeros((n, t, k + 1), np.float32), r"Recording.outputs must be \[n, T, n_tasks"),
        "labels": (np.zeros((n, k + 1), np.float32), r"Recording.labels must be \[n=8, n_tasks"),
        "step": (np.arange(t + 1), r"Recording.step must be \[T=22\]"),
        "period": (np.zeros((t, 1), np.int8), r"Recording.period must be \[T\]"),
        "hidden": (np.zeros((n, t), np.float32), r"Recording.hidden must be \[n=8, T=22"),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["outputs", "labels", "step", "period", "hidden"])
def test_wrong_shapes_are_named(good, tmp_path, name) -> None:
    value, pattern = _shape_cases(_arrays(good))[name]
    _refused(_variant(good, tmp_path, **{name: value}), pattern)


def test_a_recording_for_another_spec_is_refused(good, tmp_path) -> None:
    a = _arrays(good)
    short = {k: a[k][:, :10] for k in ("hidden", "outputs", "mu")}
    short |= {"step": a["step"][:10], "period": a["period"][:10]}
    _refused(_variant(good, tmp_path, **short), r"Recording.period must be \[T=22\]")


@pytest.mark.parametrize(
    ("name", "cast", "pattern"),
    [
        ("outputs", np.complex64, "Recording.outputs must hold a real floating-point dtype"),
        ("labels", "U1", "Recording.labels must hold a real numeric dtype"),
        ("step", np.float64, "Recording.step must hold an integer dtype"),
        ("period", np.float32, "Recording.period must hold an integer dtype"),
        ("latent", np.int64, "Recording.latent must hold a real floating-point dtype"),
    ],
)
def test_wrong_dtypes_are_named(good, tmp_path, name, cast, pattern) -> None:
    a = _arrays(good)
    _refused(_variant(good, tmp_path, **{name: a[name].astype(cast)}), pattern)


@pytest.mark.parametrize(
    ("name", "value", "pattern"),
    [
        ("period", 7, r"Recording.period must hold period codes \[0, 1, 2, 3\]"),
        ("labels", 0.5, "Recording.labels must hold 0/1 task labels"),
        ("step", -1, r"Recording.step must count evidence steps \(>= 0\)"),
    ],
)
def test_impossible_values_are_named(good, tmp_path, name, value, pattern) -> None:
    arr = _arrays(good)[name].copy()
    arr.flat[0] = value
    _refused(_variant(good, tmp_path, **{name: arr}), pattern)


# ---- hidden states -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda h: h.astype(np.complex64), "Recording.hidden must hold a real floating-point"),
        (lambda h: np.full_like(h, np.nan), "Recording.hidden must be finite"),
        (lambda h: np.where(h == h.flat[0], np.inf, h), "Recording.hidden must be finite"),
        (lambda h: h.astype("U8"), "Recording.hidden must hold a real floating-point"),
        (lambda h: h.astype(bool), "Recording.hidden must hold a real floating-point"),
        (lambda h: h[..., :0], "Recording.hidden must hold at least one trial and one unit"),
    ],
)
def test_bad_hidden_states_are_named(good, tmp_path, make, pattern) -> None:
    hidden = make(_arrays(good)["hidden"])
    _refused(_variant(good, tmp_path, hidden=hidden), pattern)


def test_a_recording_built_in_memory_is_checked_the_same_way(good) -> None:
    rec = load_recording(good)
    fields = {k: getattr(rec, k) for k in ("hidden", "outputs", "latent", "labels", "mu")}
    fields |= {"step": rec.step, "period": rec.period}
    bad = rec.hidden.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="Recording.hidden must be finite"):
        Recording(rec.spec, **{**fields, "hidden": bad})
    with pytest.raises(ValueError, match="Recording.hidden must be a numpy array"):
        Recording(rec.spec, **{**fields, "hidden": rec.hidden.tolist()})
    with pytest.raises(ValueError, match="Recording.seed must be an integer or None"):
        Recording(rec.spec, **fields, seed="3")
