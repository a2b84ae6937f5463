"""Remote inputs (gaussaudit.io.remote) against real servers on localhost: an
S3 API server (moto in server mode, started here) and an HTTP server that
answers range requests, as object stores and web servers do.

Asserted: a bucket folder, a glob and single objects give the report of the
same files on disk, number for number; clip-retrieval layouts and hidden names
follow the local rules; the Dask workers read the bucket themselves; every
failure is exit 2 with one line naming the URL and never the secret key.
"""
from __future__ import annotations

import http.server
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")

from gaussaudit import GaussAuditError, audit  # noqa: E402
from gaussaudit.io.remote import RemotePath, display_name, is_url  # noqa: E402

SECRET = "s3cr3t-never-printed-42"


def _timeless(document):
    if isinstance(document, dict):
        return {k: _timeless(v) for k, v in document.items() if k not in ("seconds", "paths", "path", "input")}
    if isinstance(document, list):
        return [_timeless(v) for v in document]
    return document


def _numbers(report) -> str:
    return json.dumps(_timeless(report.to_dict(per_feature=True)), sort_keys=True)


@pytest.fixture(scope="module")
def local_files(tmp_path_factory):
    """Shards on disk, uploaded as they are below."""
    root = tmp_path_factory.mktemp("remote-local")
    rng = np.random.default_rng(11)
    (root / "emb").mkdir()
    for i in range(3):
        np.save(root / "emb" / f"part-{i}.npy", rng.standard_normal((1500 + 100 * i, 24)).astype(np.float32))
    x = rng.laplace(size=(2500, 24)).astype(np.float32)
    pq.write_table(pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 24), "id": np.arange(2500)}),
                   root / "table.parquet")
    np.savez(root / "arrays.npz", embeddings=x[:1000], labels=np.arange(1000))
    # clip-retrieval's layout: two embedding sets and metadata that is not embeddings
    for sub, stem in (("img_emb", "img_emb"), ("text_emb", "text_emb")):
        (root / "cr" / sub).mkdir(parents=True)
        np.save(root / "cr" / sub / f"{stem}_0.npy", rng.standard_normal((800, 16)).astype(np.float16))
    (root / "cr" / "metadata").mkdir()
    pq.write_table(pa.table({"caption": ["a"] * 800}), root / "cr" / "metadata" / "metadata_0.parquet")
    (root / "steps").mkdir()
    for step in (1, 2, 10):
        np.save(root / "steps" / f"emb_epoch{step}.npy", rng.standard_normal((600, 16)).astype(np.float32))
    (root / "emb" / "_temporary").mkdir()
    np.save(root / "emb" / "_temporary" / "part-9.npy", np.zeros((10, 24)))  # bookkeeping: never read
    return root


@pytest.fixture(scope="module")
def s3(local_files):
    """A moto S3 server on localhost holding ``local_files`` in bucket 'emb',
    and the environment that points the AWS tools at it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    client = boto3.client("s3")
    client.create_bucket(Bucket="emb")
    for path in local_files.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "emb", path.relative_to(local_files).as_posix())
    yield env
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    s3fs.S3FileSystem.clear_instance_cache()


def test_a_bucket_folder_reads_as_the_same_folder_on_disk(s3, local_files):
    here = audit(local_files / "emb", sample=2000)
    there = audit("s3://emb/emb/", sample=2000)
    assert there.paths == [f"s3://emb/emb/part-{i}.npy" for i in range(3)]  # natural order, _temporary/ left out
    assert _numbers(here) == _numbers(there)


@pytest.mark.parametrize("name,options", [("table.parquet", {}), ("arrays.npz", {"key": "embeddings"}),
                                          ("emb/part-1.npy", {})])
def test_each_format_reads_remotely_as_on_disk(s3, local_files, name, options):
    assert _numbers(audit(local_files / name, sample=0, **options)) == _numbers(
        audit(f"s3://emb/{name}", sample=0, **options))


def test_globs_and_lists_of_urls(s3, local_files):
    glob = audit("s3://emb/emb/part-[01].npy", sample=0)
    assert glob.paths == ["s3://emb/emb/part-0.npy", "s3://emb/emb/part-1.npy"]
    listed = audit(["s3://emb/emb/part-0.npy", "s3://emb/emb/part-1.npy"], sample=0)
    assert _numbers(glob) == _numbers(listed) == _numbers(audit([local_files / "emb" / "part-0.npy",
                                                                  local_files / "emb" / "part-1.npy"], sample=0))


def test_a_clip_retrieval_folder_in_a_bucket_follows_the_local_rules(s3, local_files):
    image = audit("s3://emb/cr", only="image", sample=0)
    assert image.paths == ["s3://emb/cr/img_emb/img_emb_0.npy"]
    assert any("clip-retrieval output, image embeddings" in note for note in image.notes)
    with pytest.raises(GaussAuditError, match="clip-retrieval output with 2 embedding sets"):
        audit("s3://emb/cr", sample=0)


def test_track_and_compare_read_steps_and_columns_from_a_bucket(s3, local_files):
    from gaussaudit.compare import compare, track

    steps = track("s3://emb/steps/", sample=0)
    assert [p.step for p in steps.points] == [1, 2, 10]
    assert [p.path for p in steps.points] == [f"s3://emb/steps/emb_epoch{k}.npy" for k in (1, 2, 10)]
    assert _numbers(steps.points[2].report) == _numbers(audit(local_files / "steps" / "emb_epoch10.npy", sample=0))
    globbed = track("s3://emb/steps/emb_epoch*.npy", sample=0)
    assert [p.step for p in globbed.points] == [1, 2, 10]
    both = compare(["s3://emb/steps/emb_epoch1.npy", local_files / "steps" / "emb_epoch1.npy"], labels=["s3", "disk"],
                   sample=0)
    assert _numbers(both.reports[0]) == _numbers(both.reports[1])


def test_remote_mistakes_are_one_line_each(s3):
    for source, message in [
        ("s3://emb/nothing.npy", "s3://emb/nothing.npy: no such file or folder."),
        ("s3://no-such-bucket/x/", "s3://no-such-bucket/x/: no such file or folder."),
        ("s3://emb/emb/*.parquet", "s3://emb/emb/*.parquet: the pattern matches no"),
        ("s3://emb/cr/metadata/", "metadata_0.parquet: has no numeric column"),
        *([("gs://bucket/x.npy", "pip install 'gaussaudit[gcs]'")] if importlib.util.find_spec("gcsfs") is None
          else []),
        ("nosuchproto://bucket/x.npy", "nosuchproto:// is not a protocol gaussaudit can read"),
    ]:
        with pytest.raises(GaussAuditError) as caught:
            audit(source)
        assert message in str(caught.value), (source, str(caught.value))


def test_urls_are_shown_without_their_credentials():
    assert display_name("https://me:pw@host:8080/a/b.parquet?sig=XYZ#frag") == "https://host:8080/a/b.parquet"
    assert is_url("s3://a/b") and is_url("HTTPS://h/x") and not is_url("/tmp/x.npy") and not is_url("C:\\x.npy")
    assert str(RemotePath("s3://bucket/emb/") / "a.npy") == "s3://bucket/emb/a.npy"


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "gaussaudit", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_cli_scans_a_bucket_and_never_prints_the_secret(s3, local_files, tmp_path):
    out = tmp_path / "s3.json"
    done = _cli("scan", "s3://emb/emb/", "--sample", "2000", "--json", str(out), env=s3)
    assert done.returncode == 0, done.stderr
    assert "s3://emb/emb/" in done.stdout
    document = json.loads(out.read_text())
    assert document["input"]["paths"] == [f"s3://emb/emb/part-{i}.npy" for i in range(3)]
    assert document["input"]["n_total"] == 1500 + 1600 + 1700
    missing = _cli("scan", "s3://emb/missing/", env=s3)
    assert missing.returncode == 2 and "s3://emb/missing/: no such file or folder." in missing.stderr
    assert "Traceback" not in missing.stderr
    for text in (done.stdout, done.stderr, out.read_text(), missing.stdout, missing.stderr):
        assert SECRET not in text


def test_cli_without_credentials_says_what_to_set(s3, tmp_path):
    env = {k: v for k, v in s3.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    clean = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    done = subprocess.run([sys.executable, "-m", "gaussaudit", "scan", "s3://emb/emb/"], capture_output=True,
                          text=True, env={**clean, **env}, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "no credentials were found" in done.stderr and "AWS_ACCESS_KEY_ID" in done.stderr
    assert "Traceback" not in done.stderr


def test_dask_workers_read_the_bucket_themselves(s3, local_files):
    distributed = pytest.importorskip("distributed")
    from gaussaudit.cluster import local_cluster
    # The workers inherit this environment (credentials, endpoint) when they start.
    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        there = audit("s3://emb/emb/", sample=2000, client=client)
    assert _numbers(there) == _numbers(audit(local_files / "emb", sample=2000))


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """http.server with the byte ranges (RFC 7233) every object store serves."""

    def log_message(self, *args):
        pass

    def send_head(self):
        wanted = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not wanted or os.path.isdir(path) or not os.path.exists(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        start, end = int(first or 0), min(int(last) if last else size - 1, size - 1)
        fh = open(path, "rb")
        fh.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BytesIO(fh.read(end - start + 1))


@pytest.fixture(scope="module")
def web(local_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    shutil.copytree(local_files / "emb", root / "emb")
    shutil.copy(local_files / "table.parquet", root / "table.parquet")

    def handler(*args, **kwargs):
        return _RangeHandler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_https_style_urls_and_globs_read_as_on_disk(web, local_files):
    pytest.importorskip("aiohttp")
    table = audit(f"{web}/table.parquet", sample=0)
    assert _numbers(table) == _numbers(audit(local_files / "table.parquet", sample=0))
    shards = audit(f"{web}/emb/part-*.npy", sample=2000)
    assert shards.paths == [f"{web}/emb/part-{i}.npy" for i in range(3)]
    assert _numbers(shards) == _numbers(audit(local_files / "emb", sample=2000))
    with pytest.raises(GaussAuditError, match="no such file or folder"):
        audit(f"{web}/missing.npy")
