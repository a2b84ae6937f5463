"""The reader registry (io.readers.READERS): suffixes, the folder walk, the
dispatch and the option messages all come from it, so a new format is one
registered Shard class."""
from __future__ import annotations

import numpy as np
import pytest

from gaussaudit import GaussAuditError, audit
from gaussaudit.io.readers import READERS, ArrayShard, reader, suffix_list
from gaussaudit.io.sources import SUPPORTED_SUFFIXES, dataset_options, open_dataset

from conftest import run_cli


def test_the_registry_is_what_scan_reads():
    assert tuple(READERS) == SUPPORTED_SUFFIXES == (".npy", ".npz", ".parquet", ".pt")
    assert READERS[".npz"].options == {"key": "an array inside .npz files"}
    assert set(READERS[".parquet"].options) == {"column", "columns", "exclude"}
    rc, out, _ = run_cli("scan", "--help")
    assert rc == 0 and f"Files ({', '.join(READERS)})" in " ".join(out.split())


@pytest.fixture
def text_reader():
    """A toy format registered for one test: whitespace-separated rows, and one
    option of its own."""
    @reader(".tsvemb", skip="the first line of .tsvemb files")
    class TextShard(ArrayShard):
        def __init__(self, path: str, skip: int | None = None) -> None:
            super().__init__(np.loadtxt(path, skiprows=skip or 0), source=path)
            self.layout = "text rows"

    try:
        yield TextShard
    finally:
        del READERS[".tsvemb"]


def test_a_registered_reader_is_read_in_folders_and_named_in_errors(tmp_path, text_reader):
    rng = np.random.default_rng(0)
    folder = tmp_path / "shards"
    folder.mkdir()
    x = rng.standard_normal((300, 8))
    np.savetxt(folder / "part-1.tsvemb", x[:100])
    np.savetxt(folder / "part-2.tsvemb", x[100:])
    np.savetxt(folder / ".hidden.tsvemb", x[:50])  # never data
    report = audit(str(folder), calibrate=0, mv_sample=0)
    assert (report.n_total, report.dim, report.layouts) == (300, 8, ["text rows"])
    assert report.ad_mean == pytest.approx(audit(x, calibrate=0, mv_sample=0).ad_mean, rel=1e-6)
    assert suffix_list() == ".npy, .npz, .parquet, .pt or .tsvemb"
    (tmp_path / "empty").mkdir()
    with pytest.raises(GaussAuditError, match=r"holds no .npy, .npz, .parquet, .pt, .tsvemb files"):
        audit(str(tmp_path / "empty"))
    # its own option reaches it, and is refused when none of its files is given
    np.savetxt(tmp_path / "header.tsvemb", x[:40])
    assert open_dataset(str(tmp_path / "header.tsvemb"), skip=15).n_rows == 25
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(GaussAuditError, match=r"^skip picks the first line of .tsvemb files, and no .tsvemb file"):
        open_dataset(str(tmp_path / "x.npy"), skip=1)
    with pytest.raises(GaussAuditError, match=r"^unknown dataset option skipp; the readers take key, column"):
        open_dataset(str(tmp_path / "x.npy"), skipp=1)


def test_built_in_reader_options_are_audit_options():
    import dataclasses

    from gaussaudit import AuditConfig

    assert set(dataset_options()) <= {f.name for f in dataclasses.fields(AuditConfig)}
