"""The reading pass on a Dask cluster (gaussaudit.cluster): two worker
processes on localhost, started here, as CI runs them.

What is asserted: the report equals the single-machine one bit for bit (every
number of the JSON document), for npy, npz and parquet shards, with a sample
and with every row; a worker killed mid-run costs nothing (Dask reruns its
shard, and the rows are counted once); errors a worker meets reach the user as
the same one-line message; the CLI's --scheduler local and --scheduler ADDRESS.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

distributed = pytest.importorskip("distributed")

from gaussaudit import GaussAuditError, audit  # noqa: E402
from gaussaudit.cluster import connect, local_cluster  # noqa: E402
from gaussaudit.compare import compare  # noqa: E402
from gaussaudit.io import open_dataset  # noqa: E402
from gaussaudit.prep import sample_indices  # noqa: E402
from gaussaudit.streaming import read_pass  # noqa: E402


def _timeless(document):
    """A report document without what may differ between two runs of the same
    audit: wall-clock times."""
    if isinstance(document, dict):
        return {k: _timeless(v) for k, v in document.items() if k != "seconds"}
    if isinstance(document, list):
        return [_timeless(v) for v in document]
    return document


def _same_report(a, b) -> None:
    left = json.dumps(_timeless(a.to_dict(per_feature=True)), sort_keys=True)
    right = json.dumps(_timeless(b.to_dict(per_feature=True)), sort_keys=True)
    assert left == right


@pytest.fixture(scope="module")
def client():
    with local_cluster(2) as cluster, distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Seven shards of uneven sizes in three formats, one of them empty, with
    a non-Gaussian mixture so every statistic has something to say."""
    root = tmp_path_factory.mktemp("cluster-shards")
    rng = np.random.default_rng(7)
    sizes = [2500, 1733, 0, 3100, 999, 2048, 1500]
    for i, n in enumerate(sizes):
        x = np.concatenate([rng.standard_normal((n, 24)), rng.laplace(size=(n, 8))], axis=1).astype(np.float32)
        x[:, 0] += 3.0
        if i % 3 == 0:
            np.save(root / f"part-{i:02d}.npy", x)
        elif i % 3 == 1:
            np.savez(root / f"part-{i:02d}.npz", embeddings=x)
        else:
            pq.write_table(pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 32),
                                     "id": np.arange(n)}), root / f"part-{i:02d}.parquet")
    return root


@pytest.mark.parametrize("options", [dict(sample=4000), dict(sample=0), dict(sample=4000, normalize=False)],
                         ids=["sample", "every-row", "raw"])
def test_cluster_report_equals_single_machine_bit_for_bit(client, shards, options):
    here = audit(shards, **options)
    there = audit(shards, client=client, **options)
    _same_report(here, there)
    assert there.n_total == 2500 + 1733 + 3100 + 999 + 2048 + 1500


def test_cluster_pass_equals_single_machine_pass_for_every_state(client, shards):
    # Below the report: the every-row moments, histogram and sample buffer themselves.
    dataset = open_dataset(shards)
    chosen = sample_indices(dataset.n_rows, 3000, seed=3)
    here = read_pass(dataset, chosen, threads=2)
    there = read_pass(dataset, chosen, client=client)
    assert np.array_equal(here.tested, there.tested) and here.tested.dtype == there.tested.dtype
    assert np.array_equal(here.tested_norms, there.tested_norms)
    a, b = here.stats.moments.result(), there.stats.moments.result()
    for name in ("mean", "variance", "skewness", "excess_kurtosis"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert here.stats.norms.result() == there.stats.norms.result()
    assert np.array_equal(here.stats.norm_histogram.counts, there.stats.norm_histogram.counts)


def test_nonfinite_rows_found_on_a_worker_are_reported_as_here(client, tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        x = rng.standard_normal((800, 16))
        if i == 2:
            x[17, 3] = np.nan
        np.save(tmp_path / f"s{i}.npy", x)
    with pytest.raises(GaussAuditError) as here:
        audit(tmp_path)
    with pytest.raises(GaussAuditError) as there:
        audit(tmp_path, client=client)
    assert str(here.value) == str(there.value)
    assert "s2.npy" in str(there.value) and "17" in str(there.value)
    _same_report(audit(tmp_path, drop_nonfinite=True), audit(tmp_path, drop_nonfinite=True, client=client))


def test_a_shard_that_a_worker_cannot_read_is_one_clear_error(client, tmp_path):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "a.npy", rng.standard_normal((500, 8)))
    np.save(tmp_path / "b.npy", rng.standard_normal((500, 8)))
    dataset = open_dataset(tmp_path)
    (tmp_path / "b.npy").write_bytes((tmp_path / "b.npy").read_bytes()[:2000])  # cut after the header was read
    with pytest.raises(GaussAuditError, match="b.npy: ended early"):
        read_pass(dataset, None, client=client)


def test_compare_on_the_cluster_equals_compare_here(client, shards, tmp_path):
    x = np.random.default_rng(3).standard_normal((3000, 32))
    here = compare([shards, x], labels=["shards", "memory"], sample=2000)
    there = compare([shards, x], labels=["shards", "memory"], sample=2000, client=client)
    for a, b in zip(here.reports, there.reports):
        _same_report(a, b)


def test_a_worker_killed_mid_run_is_retried_and_rows_count_once(tmp_path):
    rng = np.random.default_rng(4)
    for i in range(24):
        np.save(tmp_path / f"part-{i:02d}.npy", rng.standard_normal((6000, 64)).astype(np.float32))
    expected = audit(tmp_path, sample=5000)

    with local_cluster(2) as cluster, distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        before = set(c.run(os.getpid).values())

        class KillAfterFirstShard:
            killed = None
            rows = 0

            def stage(self, name, total=None):
                pass

            def advance(self, n):
                self.rows += n
                if self.killed is None:
                    busy = [w for w, keys in c.processing().items() if keys]
                    pids = c.run(os.getpid, workers=busy[:1] or None)
                    self.killed = next(iter(pids.values()))
                    os.kill(self.killed, signal.SIGKILL)

        progress = KillAfterFirstShard()
        got = audit(tmp_path, sample=5000, client=c, progress=progress)
        after = set(c.run(os.getpid).values())
    assert progress.killed in before and progress.killed not in after  # a worker really died
    assert progress.rows == 24 * 6000  # each shard's rows reached the client once
    _same_report(expected, got)


def test_a_local_cluster_leaves_this_process_environment_as_it_was():
    # Dask's nannies write OPENBLAS_NUM_THREADS=1 and MALLOC_TRIM_THRESHOLD_ into the
    # starting process's os.environ: every program started from it later would inherit them.
    before = dict(os.environ)
    with connect("local", 1) as c:
        inside = dict(os.environ)
        worker_env = next(iter(c.run(lambda: dict(os.environ)).values()))
    assert inside == before and dict(os.environ) == before
    assert worker_env.get("OPENBLAS_NUM_THREADS") == "1"  # the workers still get Dask's one-thread BLAS
    assert "MALLOC_TRIM_THRESHOLD_" not in worker_env or "MALLOC_TRIM_THRESHOLD_" in before


def test_connect_checks_its_options():
    with pytest.raises(GaussAuditError, match="scheduler must be 'local' or a Dask scheduler address"):
        with connect("localhost:8786"):
            pass
    with pytest.raises(GaussAuditError, match="workers sizes a cluster started here"):
        with connect("tcp://127.0.0.1:1", 2):
            pass
    with pytest.raises(GaussAuditError, match="workers must be a whole number"):
        with connect("local", 0):
            pass


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gaussaudit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_cli_scheduler_local_gives_the_report_of_a_plain_scan(shards, tmp_path):
    plain, clustered = tmp_path / "plain.json", tmp_path / "cluster.json"
    first = _cli("scan", str(shards), "--sample", "3000", "--json", str(plain))
    second = _cli("scan", str(shards), "--sample", "3000", "--json", str(clustered), "--scheduler", "local",
                  "--workers", "2")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "Dask cluster: 2 workers; dashboard http://" in second.stderr
    assert _timeless(json.loads(plain.read_text())) == _timeless(json.loads(clustered.read_text()))


def test_cli_joins_a_running_cluster_by_address(client, shards, tmp_path):
    out, plain = tmp_path / "joined.json", tmp_path / "plain.json"
    done = _cli("scan", str(shards), "--sample", "3000", "--json", str(out), "--scheduler",
                client.scheduler.address, "-q")
    assert done.returncode == 0, done.stderr
    assert _cli("scan", str(shards), "--sample", "3000", "--json", str(plain), "-q").returncode == 0
    assert _timeless(json.loads(out.read_text())) == _timeless(json.loads(plain.read_text()))


def test_cli_cluster_mistakes_exit_2_with_one_line(shards):
    for args, message in [
        (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler tcp://127.0.0.1:9: no Dask scheduler answered"),
        (["--scheduler", "somewhere"], "--scheduler must be 'local' or a Dask scheduler address"),
        (["--workers", "2"], "--workers sizes the cluster --scheduler local starts"),
        (["--scheduler", "tcp://127.0.0.1:9", "--workers", "2"], "--workers sizes a cluster started here"),
    ]:
        done = _cli("scan", str(shards), "-q", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
