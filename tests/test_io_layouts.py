"""Every input layout gives the same report as the same rows in one .npy.

One seeded non-Gaussian matrix is written in every layout gaussaudit reads
(npy, npz, parquet list / fixed-size-list / wide, shards in folders, globs,
several paths, mixed formats, float16/float64); each is scanned with every
row (--sample 0) and with a sample smaller than n (--sample 1000: the same
global rows must be drawn whatever the layout) and its JSON metrics must
equal the .npy's.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gaussaudit.io.readers as readers
from gaussaudit import audit
from gaussaudit.io import write_npy, write_parquet
from gaussaudit.io.sources import Dataset, open_dataset

from conftest import make_embeddings, run_cli_many, scan_json

N, D = 3000, 24
SAMPLES = (0, 1000)
RTOL = 1e-12


def assert_same_numbers(got, want, path="metrics", rtol=RTOL):
    """Recursive comparison: floats within rtol, everything else exactly."""
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        assert set(got) == set(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same_numbers(got[k], want[k], f"{path}.{k}", rtol)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_numbers(g, w, f"{path}[{i}]", rtol)
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, (int, float)), f"{path}: {got!r}"
        assert math.isclose(got, want, rel_tol=rtol, abs_tol=1e-300), f"{path}: {got!r} != {want!r}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def assert_same_report(got: dict, want: dict, rtol: float = RTOL) -> None:
    for k in ("n_total", "n_used", "dim", "constant_features", "nonfinite_rows_dropped"):
        assert got["input"][k] == want["input"][k], k
    assert_same_numbers(got["metrics"], want["metrics"], rtol=rtol)
    assert got["verdict"]["gaussian"] == want["verdict"]["gaussian"]


# --------------------------------------------------------------------------
# The data, written in every layout


def _fsl(x) -> pa.Array:
    x = np.ascontiguousarray(x)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])


def _split(x, sizes):
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == len(x)
    return [x[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Write the matrix in every layout. Returns (root, layouts), where
    layouts maps a name to (args for `scan`, name of the reference .npy,
    library kwargs)."""
    root = tmp_path_factory.mktemp("layouts")
    x = make_embeddings(N, D)
    rng = np.random.default_rng(7)
    other = make_embeddings(N, D, seed=99)  # a decoy: picking it gives other numbers
    x16 = x.astype(np.float16)

    write_npy(root / "x.npy", x)
    write_npy(root / "x16_as_f32.npy", x16.astype(np.float32))  # exact: float16 ⊂ float32
    L = {}

    def add(name, args, ref="x.npy", **kw):
        L[name] = ([str(a) for a in args], ref, kw)

    # npz
    np.savez(root / "single.npz", x)  # one unnamed array: arr_0
    add("npz_single", ["single.npz"])
    np.savez_compressed(root / "single_compressed.npz", vectors=x)
    add("npz_single_compressed", ["single_compressed.npz"])
    np.savez(root / "multi.npz", decoy=other, mine=x, small=rng.standard_normal((50, 3)))
    add("npz_key", ["multi.npz", "--key", "mine"], key="mine")
    np.savez(root / "named.npz", ids=np.arange(N), embeddings=x, labels=rng.integers(0, 10, N))
    add("npz_embeddings_default", ["named.npz"])

    # parquet
    write_parquet(root / "fsl.parquet", x, layout="fixed_size_list")
    add("parquet_fixed_size_list", ["fsl.parquet"])
    write_parquet(root / "list.parquet", x, layout="list")
    add("parquet_list", ["list.parquet"])
    write_parquet(
        root / "list_extra.parquet", x, layout="list", column="emb", row_group_size=700,
        extra_columns={"path": [f"img/{i:05d}.jpg" for i in range(N)], "id": np.arange(N, dtype=np.int64)},
    )
    add("parquet_list_beside_extra_columns", ["list_extra.parquet"])
    write_parquet(root / "wide.parquet", x, layout="wide", row_group_size=1000)
    add("parquet_wide", ["wide.parquet"])
    pq.write_table(
        pa.table({"id": np.arange(N), "decoy": _fsl(other),
                  "chosen": pa.array([list(r) for r in x], type=pa.list_(pa.float32()))}),
        root / "two_lists.parquet",
    )
    add("parquet_two_lists_column", ["two_lists.parquet", "--column", "chosen"], column="chosen")

    # a folder of shards, natural order (shard_2 before shard_10)
    shards = root / "shards"
    shards.mkdir()
    for name, part in zip(["shard_1", "shard_2", "shard_10"], _split(x, [400, 700, 1900])):
        np.save(shards / f"{name}.npy", part)
    add("folder_of_shards", ["shards"])

    # a glob, natural order (part-3, part-12, part-100)
    globdir = root / "globdir"
    globdir.mkdir()
    for i, part in zip([3, 12, 100], _split(x, [1000, 1500, 500])):
        write_parquet(globdir / f"part-{i}.parquet", part)
    np.save(globdir / "other-1.npy", other[:100])  # not matched by the pattern
    add("glob", [f"{globdir}/part-*.parquet"])

    # several paths: the order typed is the row order (not sorted)
    several = root / "several"
    several.mkdir()
    for name, part in zip(["c", "a", "b"], _split(x, [1200, 1200, 600])):
        np.save(several / f"{name}.npy", part)
    add("several_paths", ["several/c.npy", "several/a.npy", "several/b.npy"])

    # mixed formats in one folder
    mixed = root / "mixed"
    mixed.mkdir()
    p1, p2, p3, p4 = _split(x, [500, 900, 800, 800])
    np.save(mixed / "part_1.npy", p1)
    write_parquet(mixed / "part_2.parquet", p2, layout="fixed_size_list")
    np.savez(mixed / "part_3.npz", embeddings=p3)
    write_parquet(mixed / "part_4.parquet", p4, layout="wide")
    add("mixed_formats", ["mixed"])

    # nested folders with junk next to the shards
    nested = root / "nested"
    parts = _split(x, [300, 900, 1000, 800])
    for sub, name, part in zip(["day=1", "day=2", "day=10", "day=10"], ["part-0", "part-0", "part-0", "part-1"], parts):
        (nested / sub).mkdir(parents=True, exist_ok=True)
        write_parquet(nested / sub / f"{name}.parquet", part, layout="list")
    (nested / "_SUCCESS").write_bytes(b"")
    (nested / "day=2" / "_SUCCESS").write_bytes(b"")
    (nested / "day=1" / ".part-0.parquet.crc").write_bytes(b"\x00crc\x01garbage")
    (nested / "README.txt").write_text("these are embeddings\n")
    add("nested_with_junk", ["nested"])

    # precision: float16/32 inputs are tested in float32, float64 inputs in float64
    np.save(root / "x64.npy", x.astype(np.float64))
    # (float32 vs float64 tested precision: tests/test_scale.py)
    write_parquet(root / "x64.parquet", x.astype(np.float64), layout="fixed_size_list")
    add("parquet_float64", ["x64.parquet"], ref="x64.npy")
    np.save(root / "x16.npy", x16)
    add("npy_float16", ["x16.npy"], ref="x16_as_f32.npy")
    write_parquet(root / "x16.parquet", x16, layout="fixed_size_list")
    add("parquet_float16", ["x16.parquet"], ref="x16_as_f32.npy")
    return root, L


@pytest.fixture(scope="module")
def reference(data):
    """The .npy reports, by (reference file, sample)."""
    root, _ = data
    keys = [(ref, s) for ref in ("x.npy", "x16_as_f32.npy", "x64.npy") for s in SAMPLES]
    results = run_cli_many([["scan", ref, "--sample", s, "--json", "-"] for ref, s in keys], cwd=root)
    out = {}
    for key, (rc, stdout, stderr) in zip(keys, results):
        assert rc == 0, stderr
        out[key] = json.loads(stdout)
    return out


def test_reference_numbers_are_not_trivial(reference):
    """The comparisons below would be weak if every feature passed or failed."""
    for (ref, s), rep in reference.items():
        m = rep["metrics"]
        assert rep["input"]["n_total"] == N and rep["input"]["dim"] == D
        assert rep["input"]["n_used"] == (N if s == 0 else s)
        assert 0 < m["ad"]["pass_fraction"] < 1 and 0 < m["dp"]["pass_fraction"] < 1
        assert m["norm_cv"] > 0.05
    # the sample really changes the tested rows
    assert reference[("x.npy", 0)]["metrics"]["ad"]["mean"] != reference[("x.npy", 1000)]["metrics"]["ad"]["mean"]


LAYOUTS = [
    "npz_single", "npz_single_compressed", "npz_key", "npz_embeddings_default",
    "parquet_fixed_size_list", "parquet_list", "parquet_list_beside_extra_columns", "parquet_wide",
    "parquet_two_lists_column", "folder_of_shards", "glob", "several_paths", "mixed_formats",
    "nested_with_junk", "parquet_float64", "npy_float16", "parquet_float16",
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cli_layout_matches_npy(data, reference, layout):
    root, L = data
    args, ref, _ = L[layout]
    runs = run_cli_many([["scan", *args, "--sample", s, "--json", "-"] for s in SAMPLES], cwd=root)
    for s, (rc, out, err) in zip(SAMPLES, runs):
        assert rc == 0, f"{layout} --sample {s}: exit {rc}\n{err}"
        assert "Traceback" not in err
        assert_same_report(json.loads(out), reference[(ref, s)])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_library_layout_matches_npy(data, layout):
    """The same through ``gaussaudit.audit``, paths given as a list."""
    root, L = data
    args, ref, kw = L[layout]
    paths = [a for a in args if not a.startswith("--") and a not in kw.values()]
    paths = [p if os.path.isabs(p) else str(root / p) for p in paths]
    for s in SAMPLES:
        want = audit(str(root / ref), sample=s).to_dict()
        got = audit(paths, sample=s, **kw).to_dict()
        assert_same_report(got, want)


def test_library_accepts_in_memory_array(data):
    root, _ = data
    x = np.load(root / "x.npy")
    for s in SAMPLES:
        assert_same_report(audit(x, sample=s).to_dict(), audit(str(root / "x.npy"), sample=s).to_dict())


def test_shard_order_is_natural_and_junk_ignored(data):
    """Input paths come back in natural order; junk files are never opened."""
    root, L = data
    rep = scan_json("shards", "nested", "--sample", "1000", cwd=root)
    assert [Path(p).as_posix() for p in rep["input"]["paths"]] == [
        "shards/shard_1.npy", "shards/shard_2.npy", "shards/shard_10.npy",
        "nested/day=1/part-0.parquet", "nested/day=2/part-0.parquet",
        "nested/day=10/part-0.parquet", "nested/day=10/part-1.parquet",
    ]
    assert rep["input"]["n_total"] == 2 * N
    # the glob's paths: natural order too, the other file not matched
    ds = open_dataset(f"{root}/globdir/part-*.parquet")
    assert [Path(p).name for p in ds.paths] == ["part-3.parquet", "part-12.parquet", "part-100.parquet"]


def test_lexical_shard_order_would_change_the_sampled_report(data, reference, tmp_path):
    """Guard on the test itself: the shard tests above would catch a wrong
    order, because reordering the rows changes the sampled report."""
    root, _ = data
    x = np.load(root / "x.npy")
    parts = _split(x, [400, 700, 1900])
    lexical = np.concatenate([parts[0], parts[2], parts[1]])  # shard_1, shard_10, shard_2
    got = audit(lexical, sample=1000).to_dict()
    assert got["metrics"]["ad"]["mean"] != pytest.approx(reference[("x.npy", 1000)]["metrics"]["ad"]["mean"], rel=1e-9)


# --------------------------------------------------------------------------
# Large .npy: streamed from a memory map, chunk by chunk


def test_large_npy_is_streamed_and_matches_in_memory(tmp_path, monkeypatch):
    n, d = 300_000, 8
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((n, d)) + 0.2 * rng.laplace(size=(n, d))).astype(np.float32)
    path = tmp_path / "large.npy"
    np.save(path, x)
    del x
    in_memory = {s: audit(np.load(path), sample=s).to_dict() for s in (0, 10_000)}

    # Smaller chunks than the default, so the 300,000 rows come in many pieces.
    monkeypatch.setattr(readers, "CHUNK_VALUES", 1 << 16)
    step = readers.chunk_rows(d)
    assert step == (1 << 16) // d
    sizes: list[int] = []
    loads: list = []
    real_chunks, real_load = Dataset.chunks, np.load

    def counting_chunks(self):
        for item in real_chunks(self):
            sizes.append(len(item[3]))
            yield item

    def spying_load(*args, **kwargs):
        loads.append(kwargs.get("mmap_mode"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(Dataset, "chunks", counting_chunks)
    monkeypatch.setattr(np, "load", spying_load)
    for s in (0, 10_000):
        sizes.clear()
        streamed = audit(str(path), sample=s).to_dict()
        assert len(sizes) == math.ceil(n / step) > 1
        assert max(sizes) <= step and sum(sizes) == n
        assert_same_report(streamed, in_memory[s])
    # a C-order .npy is read chunk by chunk with plain reads, never np.load-ed whole
    assert loads == [], loads

    # and the norm CV is the plain two-pass value over every row
    xr = real_load(path).astype(np.float64)
    norms = np.sqrt((xr * xr).sum(axis=1))
    assert in_memory[0]["metrics"]["norm_cv"] == pytest.approx(norms.std() / norms.mean(), rel=1e-10)


# --------------------------------------------------------------------------
# Missing embeddings in parquet (null rows)


def _with_null_row(x, row, fixed: bool):
    n, d = x.shape
    valid = np.ones(n, dtype=bool)
    valid[row] = False
    values = pa.array(np.ascontiguousarray(x).ravel())
    if fixed:
        return pa.FixedSizeListArray.from_arrays(values, d, mask=pa.array(~valid))
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values, mask=pa.array(~valid))


@pytest.mark.parametrize("fixed", [False, True], ids=["list", "fixed_size_list"])
def test_parquet_null_row_is_a_nonfinite_row(tmp_path, fixed):
    x = make_embeddings(500, 12, seed=5)
    bad_row = 137
    pq.write_table(pa.table({"id": np.arange(500), "emb": _with_null_row(x, bad_row, fixed)}), tmp_path / "nulls.parquet")
    assert pq.read_table(tmp_path / "nulls.parquet").column("emb").null_count == 1
    np.save(tmp_path / "kept.npy", np.delete(x, bad_row, axis=0))

    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3) = run_cli_many(
        [["scan", "nulls.parquet"],
         ["scan", "nulls.parquet", "--drop-nonfinite", "--sample", "0", "--json", "-"],
         ["scan", "kept.npy", "--sample", "0", "--json", "-"]],
        cwd=tmp_path,
    )
    assert rc == 2, err
    assert out == "" and "Traceback" not in err
    assert "nulls.parquet" in err and "1 row" in err and f"row {bad_row}" in err and "--drop-nonfinite" in err

    assert rc2 == 0, err2
    assert rc3 == 0, err3
    got, want = json.loads(out2), json.loads(out3)
    assert got["input"]["nonfinite_rows_dropped"] == 1
    assert got["input"]["n_total"] == 500 and got["input"]["n_used"] == 499
    assert_same_numbers(got["metrics"], want["metrics"])


def test_wide_parquet_features_are_the_float_columns(tmp_path):
    """An int label and a text column beside float features are not features
    (tested, the label would flip the verdict); --columns and --exclude choose,
    and the report names the columns used."""
    rng = np.random.default_rng(3)
    n = 2000
    table = {f"f{j}": rng.standard_normal(n).astype(np.float32) for j in range(16)}
    table["label"] = rng.integers(0, 3, n)
    table["caption"] = [f"image {i}" for i in range(n)]
    pq.write_table(pa.table(table), tmp_path / "wide.parquet")
    every = ",".join([*(f"f{j}" for j in range(16)), "label"])
    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3), (rc4, term, err4) = run_cli_many(
        [["scan", "wide.parquet", "--json", "-"], ["scan", "wide.parquet", "--columns", every, "--json", "-"],
         ["scan", "wide.parquet", "--exclude", "f0,f1", "--json", "-"], ["scan", "wide.parquet"]], cwd=tmp_path)
    assert rc == rc2 == rc3 == rc4 == 0, err + err2 + err3 + err4
    default, chosen, excluded = (json.loads(o) for o in (out, out2, out3))
    assert default["input"]["dim"] == 16 and default["verdict"]["gaussian"] is True
    assert default["input"]["layouts"] == [
        "16 float columns 'f0', 'f1', 'f2' … 'f15' (not features: label int64, caption string)"]
    assert chosen["input"]["dim"] == 17 and chosen["verdict"]["gaussian"] is False  # the label, tested, fails
    assert chosen["settings"]["columns"] == every.split(",")
    assert excluded["input"]["dim"] == 14 and excluded["settings"]["exclude"] == ["f0", "f1"]
    assert "(excluded: 'f0', 'f1')" in excluded["input"]["layouts"][0]
    assert "features from 16 float columns" in term and "not features: label int64" in " ".join(term.split())


def test_quiet_without_outputs_warns_and_whitening_is_said(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32))
    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3) = run_cli_many(
        [["scan", "x.npy", "-q"], ["scan", "x.npy", "-q", "--check"], ["scan", "x.npy", "--whiten", "pca"]],
        cwd=tmp_path)
    assert rc == 0 and out == "" and "warning: -q with no output option: nothing will be printed" in err, err
    assert rc2 == 0 and "warning" not in err2, err2  # --check's exit status is the output
    assert rc3 == 0 and "per-feature tests on pca-whitened coordinates (--whiten" in " ".join(out3.split()), out3
