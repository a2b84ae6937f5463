"""Bad input, typed as a user types it: exit status 2, a short message on
stderr naming the file (or option) and the problem, nothing on stdout, and
never a traceback."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_embeddings, run_cli, run_cli_many, scan_json

# (id, scan arguments, substrings the message must hold (case-insensitive),
#  whether the error comes from the option parser rather than gaussaudit)
CASES = [
    ("missing_file", ["missing.npy"], ["missing.npy", "no such file"], False),
    ("unknown_extension", ["table.csv"], ["table.csv", ".csv"], False),
    ("npy_is_text", ["text.npy"], ["text.npy", "not a valid .npy"], False),
    ("npy_is_random_bytes", ["random.npy"], ["random.npy", "not a valid .npy"], False),
    ("npy_truncated_data", ["truncated.npy"], ["truncated.npy", "truncated"], False),
    ("npy_truncated_header", ["short_header.npy"], ["short_header.npy", "not a valid .npy"], False),
    ("npy_object_dtype", ["objects.npy"], ["objects.npy", "object", "real numbers"], False),
    ("npy_string_dtype", ["strings.npy"], ["strings.npy", "text", "real numbers"], False),
    ("npy_complex_dtype", ["complex.npy"], ["complex.npy", "complex", "real numbers"], False),
    ("npy_1d", ["vector.npy"], ["vector.npy", "1-d", "2-d"], False),
    ("npy_3d", ["cube.npy"], ["cube.npy", "3-d", "2-d"], False),
    ("npy_0_rows", ["norows.npy"], ["norows.npy", "0 rows"], False),
    ("npy_19_rows", ["rows19.npy"], ["rows19.npy", "19 rows", "20"], False),
    ("npy_0_columns", ["nocols.npy"], ["nocols.npy", "0 columns"], False),
    ("nan_and_inf_rows", ["nonfinite.npy"], ["nonfinite.npy", "3 rows", "row 4", "--drop-nonfinite"], False),
    ("nan_in_second_shard", ["nanshards"], ["b.npy", "1 row", "row 5", "--drop-nonfinite"], False),
    ("all_rows_nan_dropped", ["allnan.npy", "--drop-nonfinite"], ["allnan.npy", "0 rows", "50"], False),
    ("parquet_ragged_list", ["ragged.parquet"], ["ragged.parquet", "ragged", "row 26", "'emb'"], False),
    ("parquet_no_numeric_column", ["strings.parquet"], ["strings.parquet", "no numeric column"], False),
    ("parquet_chopped", ["chopped.parquet"], ["chopped.parquet", "parquet"], False),
    ("parquet_garbage", ["garbage.parquet"], ["garbage.parquet", "parquet"], False),
    ("parquet_two_lists_no_column", ["two_lists.parquet"], ["two_lists.parquet", "emb_a", "emb_b", "--column"], False),
    ("parquet_column_missing", ["two_lists.parquet", "--column", "nope"], ["two_lists.parquet", "nope"], False),
    ("parquet_column_scalar", ["two_lists.parquet", "--column", "id"], ["two_lists.parquet", "'id'", "list column"], False),
    ("npz_several_no_key", ["multi.npz"], ["multi.npz", "first", "second", "--key"], False),
    ("npz_key_missing", ["multi.npz", "--key", "zz"], ["multi.npz", "zz", "first, second"], False),
    ("npz_key_names_1d_array", ["multi1d.npz", "--key", "ids"], ["multi1d.npz", "ids", "1-d"], False),
    ("key_with_only_npy", ["good.npy", "--key", "emb"], ["--key", ".npz"], False),
    ("column_with_only_npy", ["good.npy", "--column", "emb"], ["--column", "parquet"], False),
    ("shards_different_dims", ["mismatch"], ["b.npy", "5 features", "a.npy", "8"], False),
    ("same_file_twice", ["good.npy", "good.npy"], ["good.npy", "twice"], False),
    ("same_file_via_folder", ["shards", "shards/s_1.npy"], ["s_1.npy", "twice"], False),
    ("empty_folder", ["emptydir"], ["emptydir", "no .npy"], False),
    ("folder_of_junk_only", ["junkdir"], ["junkdir", "no .npy"], False),
    ("glob_matches_nothing", ["nothing-*.npy"], ["nothing-*.npy", "matches no"], False),
    ("glob_with_brackets_matches_nothing", ["part-[ab]*.npy"], ["part-[ab]*.npy", "matches no"], False),
    ("sample_negative", ["good.npy", "--sample", "-1"], ["--sample", "-1"], False),
    ("sample_below_20", ["good.npy", "--sample", "5"], ["--sample", "5", "20"], False),
    ("sample_not_a_number", ["good.npy", "--sample", "abc"], ["--sample"], True),
    ("seed_negative", ["good.npy", "--seed", "-3"], ["--seed", "-3"], False),
    ("unknown_option", ["good.npy", "--bogus"], ["--bogus"], True),
    ("json_missing_folder", ["good.npy", "--json", "nodir/report.json"], ["nodir", "does not exist"], False),
    ("json_is_a_folder", ["good.npy", "--json", "emptydir"], ["emptydir", "folder"], False),
    ("npy_int64_beyond_2_53", ["int63.npy"], ["int63.npy", "beyond 2^53", "float64"], False),
    ("npy_uint8_packed_bits", ["packed.npy"], ["packed.npy", "8-bit", "bit-packed", "float32"], False),
    ("parquet_only_integer_columns", ["ints.parquet"], ["ints.parquet", "no floating-point column", "--columns a,b"], False),
    ("parquet_columns_missing", ["wide.parquet", "--columns", "f0,nope"], ["wide.parquet", "'nope'"], False),
    ("parquet_columns_text", ["wide.parquet", "--columns", "f0,caption"], ["caption", "not numbers"], False),
    ("parquet_exclude_missing", ["wide.parquet", "--exclude", "nope"], ["--exclude", "'nope'"], False),
    ("columns_and_exclude", ["wide.parquet", "--columns", "f0", "--exclude", "f1"], ["--columns", "--exclude", "one or the other"], False),
    ("columns_and_column", ["two_lists.parquet", "--column", "emb_a", "--columns", "id"], ["--column", "--columns"], False),
    ("columns_with_only_npy", ["good.npy", "--columns", "a"], ["--columns", "parquet"], False),
    ("every_feature_constant", ["constant.npy"], ["constant.npy", "constant"], False),
    ("every_row_zero", ["zeros.npy"], ["zeros.npy", "constant"], False),
]


def _make_files(root):
    rng = np.random.default_rng(0)
    x = make_embeddings(100, 8, seed=1)
    np.save(root / "good.npy", x)
    (root / "table.csv").write_text("a,b\n1,2\n")
    (root / "text.npy").write_text("this is not an array\n" * 20)
    (root / "random.npy").write_bytes(rng.bytes(2000))
    full = (root / "good.npy").read_bytes()
    (root / "truncated.npy").write_bytes(full[: len(full) // 2])
    (root / "short_header.npy").write_bytes(full[:30])
    np.save(root / "objects.npy", np.array([[1.0, "a"]] * 30, dtype=object), allow_pickle=True)
    np.save(root / "strings.npy", np.array([["a", "b"]] * 30))
    np.save(root / "complex.npy", x.astype(np.complex128))
    np.save(root / "vector.npy", x[:, 0])
    np.save(root / "cube.npy", x.reshape(10, 10, 8))
    np.save(root / "norows.npy", x[:0])
    np.save(root / "rows19.npy", x[:19])
    np.save(root / "nocols.npy", np.empty((30, 0), dtype=np.float32))

    bad = x.copy()
    bad[4, 2] = np.nan
    bad[10] = np.inf
    bad[11, 0] = -np.inf
    np.save(root / "nonfinite.npy", bad)
    (root / "nanshards").mkdir()
    np.save(root / "nanshards" / "a.npy", x[:50])
    b = x[50:].copy()
    b[5, 3] = np.nan
    np.save(root / "nanshards" / "b.npy", b)
    np.save(root / "allnan.npy", np.full((50, 8), np.nan))

    rows = [[1.0, 2.0, 3.0]] * 26 + [[1.0, 2.0]] + [[1.0, 2.0, 3.0]] * 10
    pq.write_table(pa.table({"emb": pa.array(rows, type=pa.list_(pa.float64()))}), root / "ragged.parquet")
    pq.write_table(pa.table({"path": [f"{i}.jpg" for i in range(30)], "label": ["cat"] * 30}), root / "strings.parquet")
    fsl = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 8)
    lst = pa.array([list(r) for r in x], type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"id": np.arange(100), "emb_a": fsl, "emb_b": lst}), root / "two_lists.parquet")
    whole = (root / "two_lists.parquet").read_bytes()
    (root / "chopped.parquet").write_bytes(whole[: len(whole) - 200])
    (root / "garbage.parquet").write_bytes(rng.bytes(1000))

    np.savez(root / "multi.npz", first=x, second=x[:50])
    np.savez(root / "multi1d.npz", ids=np.arange(100), vectors=x)
    (root / "mismatch").mkdir()
    np.save(root / "mismatch" / "a.npy", x)
    np.save(root / "mismatch" / "b.npy", rng.standard_normal((40, 5)))
    (root / "shards").mkdir()
    np.save(root / "shards" / "s_1.npy", x[:50])
    np.save(root / "shards" / "s_2.npy", x[50:])
    (root / "emptydir").mkdir()
    (root / "junkdir").mkdir()
    (root / "junkdir" / "README.txt").write_text("nothing here\n")
    (root / "junkdir" / "_SUCCESS").write_bytes(b"")
    (root / "junkdir" / ".part-0.npy.crc").write_bytes(b"crc")
    np.save(root / "int63.npy", rng.integers(-1000, 1000, (100, 8)) + np.int64(2**62))  # false 'constant' once
    np.save(root / "packed.npy", np.packbits(rng.random((100, 64)) > 0.5, axis=1))  # 'ubinary': 8 dims a byte
    pq.write_table(pa.table({"a": np.arange(100), "b": rng.integers(0, 5, 100)}), root / "ints.parquet")
    pq.write_table(pa.table({**{f"f{j}": x[:, j] for j in range(4)}, "label": np.arange(100) % 3,
                             "caption": [f"c{i}" for i in range(100)]}), root / "wide.parquet")
    np.save(root / "constant.npy", np.full((50, 6), 3.0, dtype=np.float32))
    np.save(root / "zeros.npy", np.zeros((50, 6), dtype=np.float32))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case of CASES, run once (concurrently), keyed by id."""
    root = tmp_path_factory.mktemp("bad")
    _make_files(root)
    outs = run_cli_many([["scan", *args] for _, args, _, _ in CASES], cwd=root)
    return root, {case[0]: out for case, out in zip(CASES, outs)}


def assert_clean_failure(rc, out, err, must_contain=(), usage_error=False):
    shown = f"exit {rc}\nstdout: {out[:1500]!r}\nstderr: {err[:3000]}"
    assert "Traceback" not in out + err, shown
    assert rc == 2, shown
    assert out == "", shown
    lines = err.strip().splitlines()
    assert lines, shown
    if usage_error:  # the option parser's boxed usage message
        assert len(lines) <= 10, shown
    else:
        assert lines[0].startswith("error:"), shown
        assert len(lines) <= 2 and len(err) <= 400, shown
    low = err.lower()
    for word in must_contain:
        assert word.lower() in low, f"message lacks {word!r}\n{shown}"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_message(results, case):
    name, _, must_contain, usage_error = case
    rc, out, err = results[1][name]
    assert_clean_failure(rc, out, err, must_contain, usage_error)


def test_inputs_are_left_untouched_by_failures(results):
    root, _ = results
    assert not (root / "nodir").exists()
    assert (root / "emptydir").is_dir() and not any((root / "emptydir").iterdir())
    assert np.load(root / "good.npy").shape == (100, 8)


def test_nonfinite_rows_dropped_on_request(tmp_path):
    x = make_embeddings(100, 8, seed=1)
    x[4, 2], x[10], x[11, 0] = np.nan, np.inf, -np.inf
    np.save(tmp_path / "nonfinite.npy", x)
    rep = scan_json("nonfinite.npy", "--drop-nonfinite", "--sample", "0", cwd=tmp_path)
    assert rep["input"]["nonfinite_rows_dropped"] == 3
    assert rep["input"]["n_total"] == 100 and rep["input"]["n_used"] == 97
    assert rep["settings"]["drop_nonfinite"] is True
    # the default sample (10,000 > n) uses every finite row too
    rep = scan_json("nonfinite.npy", "--drop-nonfinite", cwd=tmp_path)
    assert rep["input"]["n_used"] == 97 and rep["input"]["nonfinite_rows_dropped"] == 3


def test_unreadable_file(tmp_path):
    np.save(tmp_path / "locked.npy", make_embeddings(50, 4))
    target = tmp_path / "locked.npy"
    os.chmod(target, 0)
    try:
        prefix = []
        if os.access(target, os.R_OK):
            # Root reads any file through CAP_DAC_OVERRIDE; drop that capability
            # (and DAC_READ_SEARCH) for the CLI process so the mode really applies.
            setpriv = shutil.which("setpriv")
            assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
            caps = "-dac_override,-dac_read_search"
            prefix = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]
        proc = subprocess.run(prefix + [sys.executable, "-m", "gaussaudit", "scan", "locked.npy"],
                              cwd=tmp_path, capture_output=True, text=True)
        assert_clean_failure(proc.returncode, proc.stdout, proc.stderr, ["locked.npy", "permission"])
    finally:
        os.chmod(target, stat.S_IRUSR | stat.S_IWUSR)


# --------------------------------------------------------------------------
# --json: never clobber without --overwrite, never over an input


def test_json_existing_file(tmp_path):
    np.save(tmp_path / "x.npy", make_embeddings(200, 8))
    report = tmp_path / "report.json"
    report.write_text("keep me\n")
    rc, out, err = run_cli("scan", "x.npy", "--json", "report.json", cwd=tmp_path)
    assert_clean_failure(rc, out, err, ["report.json", "exists", "--overwrite"])
    assert report.read_text() == "keep me\n"

    rc2, out2, err2 = run_cli("scan", "x.npy", "--json", "report.json", "--overwrite", cwd=tmp_path)
    assert rc2 == 0, err2
    data = json.loads(report.read_text())
    assert data["schema"] == "gaussaudit.report/2" and data["input"]["n_total"] == 200
    assert "Gaussian?" in out2  # the table is still printed
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "with_overwrite"])
def test_json_onto_an_input_is_refused(tmp_path, overwrite):
    shards = tmp_path / "shards"
    shards.mkdir()
    np.save(tmp_path / "x.npy", make_embeddings(200, 8))
    np.save(shards / "s_1.npy", make_embeddings(100, 8, seed=2))
    np.save(shards / "s_2.npy", make_embeddings(100, 8, seed=3))
    before = {p: p.read_bytes() for p in [tmp_path / "x.npy", shards / "s_1.npy", shards / "s_2.npy"]}
    extra = ["--overwrite"] if overwrite else []
    runs = run_cli_many(
        [["scan", "x.npy", "--json", "x.npy", *extra],
         ["scan", "shards", "--json", "shards/s_2.npy", *extra],
         ["scan", "x.npy", "--json", "./x.npy", *extra]],
        cwd=tmp_path,
    )
    for (rc, out, err), name in zip(runs, ["x.npy", "s_2.npy", "x.npy"]):
        assert_clean_failure(rc, out, err, [name] + (["input"] if overwrite else []))
    for p, content in before.items():
        assert p.read_bytes() == content, f"{p} was changed"


def test_extreme_scales_give_the_results_of_the_rescaled_data(tmp_path):
    """Gaussian data × 1e300 or × 1e-300 (float64): squares overflow or underflow
    (once a false 'every feature is constant', or LinAlgError with
    --no-normalize). They are rescaled by an exact power of two, said in a note,
    and every statistic equals that of the data at scale 1."""
    from gaussaudit import audit

    x = np.random.default_rng(5).standard_normal((400, 8))
    for normalize in (True, False):
        base = audit(x, normalize=normalize, threads=1)
        for scale in (1e300, 1e-300, 1e200):
            r = audit(x * scale, normalize=normalize, threads=1)
            assert r.notes and "multiplied by 2^" in r.notes[0], r.notes
            assert r.n_tested == 8
            for a, b in ((r.norm_cv, base.norm_cv), (r.ad_mean, base.ad_mean), (r.dp_mean_p, base.dp_mean_p),
                         (r.test.p_value, base.test.p_value)):
                assert a == pytest.approx(b, rel=1e-9, abs=1e-12), (normalize, scale)
        assert not base.notes or "multiplied by" not in base.notes[0]
    np.save(tmp_path / "huge.npy", x * 1e300)
    rc, out, err = run_cli("scan", "huge.npy", "--no-normalize", "--calibrate", "0", cwd=tmp_path)
    assert rc == 0 and "Traceback" not in err and "multiplied by 2^" in " ".join(out.split()), err


def test_plots_that_cannot_be_written_leave_no_empty_folder(tmp_path, monkeypatch):
    """A write that fails (a full disk) removes the figures folder it created."""
    import gaussaudit.io.writers as writers
    from gaussaudit.errors import GaussAuditError

    def full_disk(path, data, overwrite=False):
        raise GaussAuditError(f"{path}: cannot be written (No space left on device).")

    monkeypatch.setattr(writers, "write_bytes_atomic", full_disk)
    with pytest.raises(GaussAuditError, match="No space left"):
        writers.write_files_atomic(tmp_path / "figs", {"a.png": b"x", "b.png": b"y"})
    assert not (tmp_path / "figs").exists()
    (tmp_path / "kept").mkdir()  # a folder that was there stays
    with pytest.raises(GaussAuditError):
        writers.write_files_atomic(tmp_path / "kept", {"a.png": b"x"})
    assert (tmp_path / "kept").is_dir()
