"""The extract output store (gaussaudit/io/extract_store.py) on its own: shards
round-trip, OUT is assembled in input order with its metadata, and a resume is
only ever matched against the manifest of the same settings. No torch needed."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from gaussaudit import GaussAuditError, audit
from gaussaudit.io.extract_store import ExtractStore, read_text_lines

SETTINGS = {"settings": {"model": "m", "checkpoint_sha256": "a" * 64, "n_items": 7, "shard_size": 3}, "n_shards": 3}


def _fill(store: ExtractStore, rng) -> np.ndarray:
    """Shards 0..2 over 7 inputs, input 4 unreadable, shard 1 written before shard 0."""
    x = rng.standard_normal((7, 5)).astype(np.float32)
    store.write_shard(1, ["d", "f"], x[[3, 5]], [("e", "broken")])
    store.write_shard(0, ["a", "b", "c"], x[:3])
    store.write_shard(2, ["g"], x[6:])
    return x[[0, 1, 2, 3, 5, 6]]


@pytest.mark.parametrize("suffix", [".parquet", ".npy"])
def test_assemble_in_input_order_with_metadata(tmp_path, suffix):
    store = ExtractStore(tmp_path / f"emb{suffix}")
    store.check_targets(resume=False)
    assert store.open_parts(SETTINGS, resume=False) == set()
    expected = _fill(store, np.random.default_rng(0))
    assert store.finished_shards() == {0, 1, 2}
    result = store.assemble(3, {"model": "m", "preprocessing": {"size": 224}})
    store.remove_parts()
    assert (result.rows, result.dim, result.skipped) == (6, 5, [("e", "broken")])
    assert not store.parts.exists()
    if suffix == ".parquet":
        table = pq.read_table(store.out)
        assert table.column("path").to_pylist() == list("abcdfg")
        np.testing.assert_array_equal(np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), expected)
        meta = table.schema.metadata
        assert meta[b"model"] == b"m" and json.loads(meta[b"preprocessing"]) == {"size": 224}
        assert json.loads(meta[b"skipped"]) == [["e", "broken"]] and meta[b"rows"] == b"6"
    else:
        np.testing.assert_array_equal(np.load(store.out), expected)
        sidecar = json.loads(store.sidecar.read_text())
        assert sidecar["paths"] == list("abcdfg") and sidecar["preprocessing"] == {"size": 224}
        assert sidecar["schema"] == "gaussaudit.extract/1"


def test_assembled_file_is_what_scan_reads(tmp_path):
    store = ExtractStore(tmp_path / "emb.parquet")
    store.open_parts(SETTINGS, resume=False)
    x = np.random.default_rng(1).standard_normal((40, 6)).astype(np.float32)
    store.write_shard(0, [f"p{i}" for i in range(40)], x)
    store.assemble(1, {})
    report = audit(str(store.out), sample=0)
    assert (report.n_total, report.dim) == (40, 6)
    assert report.layouts == ["column 'embedding'"]


def test_resume_matches_the_manifest_only(tmp_path):
    store = ExtractStore(tmp_path / "emb.parquet")
    store.open_parts(SETTINGS, resume=False)
    store.write_shard(0, ["a"], np.ones((1, 2), np.float32))
    (store.parts / ".shard_000001.parquet.x1y2.tmp").write_bytes(b"half a file")  # a kill mid-write
    with pytest.raises(GaussAuditError, match="left 1 finished shard here.*resume=True"):
        store.check_targets(resume=False)
    store.check_targets(resume=True)
    assert store.open_parts(SETTINGS, resume=True) == {0}
    assert not list(store.parts.glob(".*.tmp"))
    other = {"settings": {**SETTINGS["settings"], "checkpoint_sha256": "b" * 64, "model": "n"}, "n_shards": 3}
    with pytest.raises(GaussAuditError, match=r"checkpoint \(SHA-256\) was aaaaaaaaaaaa…, now bbbbbbbbbbbb…; model was m, now n"):
        store.open_parts(other, resume=True)
    # Shards whose manifest is gone cannot be checked: a fresh start removes them.
    (store.parts / "manifest.json").unlink()
    assert store.open_parts(SETTINGS, resume=True) == set() and store.finished_shards() == set()


def test_outputs_are_never_overwritten_without_asking(tmp_path):
    (tmp_path / "emb.npy").write_bytes(b"precious")
    with pytest.raises(GaussAuditError, match="already exists; pass overwrite=True"):
        ExtractStore(tmp_path / "emb.npy").check_targets(resume=False)
    (tmp_path / "new.npy.json").write_text("{}")  # the sidecar counts too
    with pytest.raises(GaussAuditError, match="new.npy.json: already exists"):
        ExtractStore(tmp_path / "new.npy").check_targets(resume=False)
    with pytest.raises(GaussAuditError, match=r"\.parquet or \.npy"):
        ExtractStore(tmp_path / "emb.csv")
    with pytest.raises(GaussAuditError, match="does not exist"):
        ExtractStore(tmp_path / "nowhere" / "emb.npy").check_targets(resume=False)
    ExtractStore(tmp_path / "emb.npy", overwrite=True).check_targets(resume=False)
    assert (tmp_path / "emb.npy").read_bytes() == b"precious"  # checking writes nothing


def test_read_text_lines(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("a cat\r\n\n  \nthe sea\n", encoding="utf-8")
    assert read_text_lines(path) == ["a cat", "the sea"]
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(GaussAuditError, match="not UTF-8"):
        read_text_lines(path)
    with pytest.raises(GaussAuditError, match="no such file"):
        read_text_lines(tmp_path / "missing.txt")
