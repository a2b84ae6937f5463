"""Embeddings where users already have them: tensors saved with torch.save,
clip-retrieval output folders, Hugging Face parquet exports; and what the
report says of rows that arrive unit-norm."""
from __future__ import annotations

import numpy as np
import pytest

from gaussaudit import GaussAuditError, audit

from conftest import make_embeddings, run_cli

torch = pytest.importorskip("torch")

FAST = {"calibrate": 0, "mv_sample": 0, "projections": 8, "pca_projections": 2}


def _same_numbers(a, b):
    assert (a.n_total, a.dim) == (b.n_total, b.dim)
    assert a.metrics == pytest.approx(b.metrics, rel=1e-12)
    assert a.norm_cv == pytest.approx(b.norm_cv, rel=1e-12)


@pytest.fixture(scope="module")
def x():
    return make_embeddings(800, 12)


def test_torch_tensor_reads_as_its_array(tmp_path, x):
    torch.save(torch.from_numpy(x), tmp_path / "emb.pt")
    got = audit(str(tmp_path / "emb.pt"), **FAST)
    _same_numbers(got, audit(x, **FAST))
    assert got.layouts == ["tensor"] and got.dtype == "float32"


def test_torch_dict_picks_the_embeddings(tmp_path, x):
    torch.save({"embeddings": torch.from_numpy(x).half(), "labels": torch.arange(len(x))}, tmp_path / "d.pt")
    got = audit(str(tmp_path / "d.pt"), **FAST)
    assert got.layouts == ["tensor 'embeddings'"] and got.dtype == "float16"
    _same_numbers(got, audit(x.astype(np.float16), **FAST))
    torch.save({"a": torch.from_numpy(x), "b": torch.from_numpy(x[:, :5])}, tmp_path / "two.pt")
    with pytest.raises(GaussAuditError, match=r"holds several arrays \(a, b\); choose one with key='NAME'"):
        audit(str(tmp_path / "two.pt"), **FAST)
    assert audit(str(tmp_path / "two.pt"), key="b", **FAST).dim == 5


def test_torch_bfloat16_and_legacy_format(tmp_path, x):
    bf16 = torch.from_numpy(x).bfloat16()
    torch.save(bf16, tmp_path / "bf16.pt")
    _same_numbers(audit(str(tmp_path / "bf16.pt"), **FAST), audit(bf16.float().numpy(), **FAST))
    torch.save(torch.from_numpy(x), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    _same_numbers(audit(str(tmp_path / "legacy.pt"), **FAST), audit(x, **FAST))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_torch_file_with_code_is_never_unpickled(tmp_path, x):
    marker = tmp_path / "ran"
    torch.save({"embeddings": torch.from_numpy(x), "hook": _RunsCode(str(marker))}, tmp_path / "evil.pt")
    rc, out, err = run_cli("scan", tmp_path / "evil.pt")
    assert rc == 2 and "Traceback" not in err and "could run code, so it was not loaded" in err, err
    assert not marker.exists()


def test_bad_torch_files_exit_2(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    torch.save(torch.zeros(10, dtype=torch.complex64), tmp_path / "vector.pt")
    torch.save(torch.zeros((30, 4), dtype=torch.complex64), tmp_path / "complex.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    cases = [("junk.pt", "is not a file torch.save wrote"), ("vector.pt", "complex numbers"),
             ("complex.pt", "complex numbers"), ("list.pt", "holds a list, not a tensor")]
    for name, message in cases:
        rc, _, err = run_cli("scan", tmp_path / name)
        assert rc == 2 and "Traceback" not in err and message in err, (name, err)
