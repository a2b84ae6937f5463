"""Folder layouts other tools write, read without flags: clip-retrieval's
output (image and text embeddings side by side, metadata never read) and
Hugging Face parquet exports (splits), as a user types them."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gaussaudit import GaussAuditError, audit
from gaussaudit.compare import compare

from conftest import run_cli, run_cli_many

FAST = {"calibrate": 0, "mv_sample": 0, "projections": 8, "pca_projections": 2}


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


@pytest.fixture(scope="module")
def clip_out(tmp_path_factory):
    """clip-retrieval inference's layout: float16 unit rows in img_emb/ and
    text_emb/ (Gaussian directions and Laplace ones), captions in metadata/."""
    root = tmp_path_factory.mktemp("clip") / "out"
    rng = np.random.default_rng(7)
    for sub in ("img_emb", "text_emb", "metadata"):
        (root / sub).mkdir(parents=True)
    images, texts = _unit(rng.standard_normal((900, 48))), _unit(rng.laplace(size=(900, 48)))
    for k, rows in enumerate((slice(0, 500), slice(500, 900))):
        np.save(root / "img_emb" / f"img_emb_{k}.npy", images[rows])
        np.save(root / "text_emb" / f"text_emb_{k}.npy", texts[rows])
        n = rows.stop - rows.start
        pq.write_table(pa.table({"image_path": [f"{i}.jpg" for i in range(n)], "caption": ["a cat"] * n,
                                 "width": np.full(n, 224)}), root / "metadata" / f"metadata_{k}.parquet")
    return root, images, texts


def test_scan_shows_image_and_text_side_by_side(clip_out):
    root, images, texts = clip_out
    rc, out, err = run_cli("scan", root, "--calibrate", "0", "--json", "-", "-q")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["schema"].startswith("gaussaudit.compare/")
    by_label = {c["label"]: c for c in doc["reports"]}
    assert list(by_label) == ["image", "text"]
    assert by_label["image"]["input"]["n_total"] == by_label["text"]["input"]["n_total"] == 900
    assert all("metadata" not in p for c in doc["reports"] for p in c["input"]["paths"])
    assert by_label["image"]["verdict"]["gaussian"] and not by_label["text"]["verdict"]["gaussian"]
    expected = audit(texts, **FAST)
    assert by_label["text"]["metrics"]["ad"]["mean"] == pytest.approx(expected.ad_mean, rel=1e-10)
    rc, out, err = run_cli("scan", root, "--calibrate", "0")
    heading = f"gaussaudit scan · {root} (clip-retrieval output: image, text)"
    assert rc == 0 and " ".join(out.split()).startswith(heading), out + err


def test_only_picks_one_set_and_says_what_was_read(clip_out):
    root, images, _ = clip_out
    report = audit(str(root), only="image", **FAST)
    assert report.n_total == 900 and all("img_emb" in p for p in report.paths)
    assert report.ad_mean == pytest.approx(audit(images, **FAST).ad_mean, rel=1e-10)
    assert any("clip-retrieval output, image embeddings (img_emb/); metadata/ is not embeddings" in n
               for n in report.notes)
    # float16 unit rows: the report says the norm CV says nothing about the model
    assert any(n.startswith("the rows are already unit-norm (float16") for n in report.notes), report.notes
    with pytest.raises(GaussAuditError, match=r"clip-retrieval output with 2 embedding sets \(img_emb/, text_emb/\)"
                                              r".*only='image' or only='text'"):
        audit(str(root), **FAST)
    with pytest.raises(GaussAuditError, match=r"^only must be one of image, text; got 'audio'"):
        audit(str(root), only="audio")


def test_compare_expands_a_clip_retrieval_folder(clip_out, tmp_path):
    root, images, _ = clip_out
    np.save(tmp_path / "sup.npy", np.random.default_rng(1).laplace(size=(400, 48)))
    result = compare([str(tmp_path / "sup.npy"), str(root)], **FAST)
    assert result.labels == ["sup.npy", "out image", "out text"]  # the folder's name, as for any input
    assert compare([str(root)], only="text", **FAST).labels == ["out"]


def test_layout_errors_from_the_cli(clip_out, tmp_path):
    root, _, _ = clip_out
    np.save(tmp_path / "x.npy", np.zeros((30, 4)))
    (rc, _, err), (rc2, _, err2) = run_cli_many([["scan", tmp_path / "x.npy", "--only", "text"],
                                                 ["scan", root / "img_emb", "--split", "train"]])
    assert rc == 2 and "--only picks an embedding set of a clip-retrieval output folder" in err, err
    assert rc2 == 2 and "has no Hugging Face splits" in err2 and "--split picks one" in err2, err2


@pytest.fixture(scope="module")
def hf_export(tmp_path_factory):
    """A Hugging Face datasets parquet export: an embedding list column beside
    text and label columns, the split in each file's name."""
    root = tmp_path_factory.mktemp("hf") / "dataset"
    (root / "data").mkdir(parents=True)
    rng = np.random.default_rng(3)
    parts = {"train-00000-of-00002": 300, "train-00001-of-00002": 250, "test-00000-of-00001": 150}
    rows = {}
    for name, n in parts.items():
        e = rng.standard_normal((n, 16)).astype(np.float32)
        rows[name] = e
        pq.write_table(pa.table({"text": ["a sentence"] * n, "label": np.arange(n) % 3,
                                 "embedding": pa.FixedSizeListArray.from_arrays(pa.array(e.ravel()), 16)}),
                       root / "data" / f"{name}.parquet")
    return root, rows


def test_hugging_face_splits(hf_export, tmp_path):
    root, rows = hf_export
    every = audit(str(root), **FAST)
    assert every.n_total == 700 and every.layouts == ["column 'embedding'"]
    assert any("Hugging Face splits test (1 file), train (2 files), all read as one dataset" in n for n in every.notes)
    test = audit(str(root), split="test", **FAST)
    assert test.n_total == 150
    assert test.ad_mean == pytest.approx(audit(rows["test-00000-of-00001"], **FAST).ad_mean, rel=1e-10)
    with pytest.raises(GaussAuditError, match=r"has no split 'dev' \(it has: test \(1 file\), train \(2 files\)\)"):
        audit(str(root), split="dev")
    with pytest.raises(GaussAuditError, match=r"^split picks a split of a Hugging Face export folder"):
        audit(str(root / "data" / "test-00000-of-00001.parquet"), split="test")
    # split folders (the Hub's parquet conversion: train/0000.parquet)
    for split, n in (("train", 120), ("validation", 80)):
        (tmp_path / "conv" / split).mkdir(parents=True)
        e = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
        pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(e.ravel()), 8)}),
                       tmp_path / "conv" / split / "0000.parquet")
    assert audit(str(tmp_path / "conv"), split="validation", **FAST).n_total == 80
    rc, out, err = run_cli("scan", root, "--split", "train", "--calibrate", "0", "--markdown", "-", "-q")
    assert rc == 0 and "split 'train'" in out, err
