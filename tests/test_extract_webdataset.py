"""``gaussaudit extract`` on webdataset tar shards (img2dataset's format) and
``--layout clip-retrieval``, as a user types them: the rows equal those of the
same images in a plain folder, each tar is a shard that --resume never redoes,
a bad tar exits 2 with one line, and the clip-retrieval folder reads back with
``gaussaudit scan``. Random-init weights saved locally; nothing is downloaded."""
from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import run_cli, run_cli_many
from extract_fixtures import _random_image

N_SHARDS, PER_SHARD = 3, 8


def _ok(result):
    rc, out, err = result
    assert rc == 0, f"exit {rc}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    return out, err


def _encoded(image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict:
    """3 tars of 8 samples each (PNG and JPEG in turn, with .txt captions and
    .json metadata, as img2dataset writes them) and a folder of the same image
    files, named so that its sorted order is the tars' order."""
    root = tmp_path_factory.mktemp("wds")
    rng = np.random.default_rng(7)
    (root / "shards").mkdir()
    folder = root / "folder"
    keys, captions = [], []
    for s in range(N_SHARDS):
        with tarfile.open(root / "shards" / f"{s:03d}.tar", "w") as tar:
            for i in range(PER_SHARD):
                key = f"{s:03d}{i:02d}"
                ext, fmt = ("png", "PNG") if i % 2 == 0 else ("jpg", "JPEG")
                data = _encoded(_random_image(rng, (40 + i, 48)), fmt)
                caption = f"sample {key} of shard {s}"
                _add(tar, f"{key}.{ext}", data)
                _add(tar, f"{key}.txt", caption.encode())
                _add(tar, f"{key}.json", json.dumps({"key": key, "caption": caption}).encode())
                (folder / f"{s:03d}").mkdir(parents=True, exist_ok=True)
                (folder / f"{s:03d}" / f"{key}.{ext}").write_bytes(data)
                keys.append(f"{s:03d}.tar/{key}")
                captions.append(caption)
    return {"root": root, "folder": folder, "keys": keys, "captions": captions}


def _common(ckpt):
    return ["--model", "simclr-resnet18", "--checkpoint", ckpt, "--batch-size", "4", "--workers", "0"]


def _rows(path: Path):
    table = pq.read_table(path)
    return table.column("path").to_pylist(), np.stack(table.column("embedding").to_numpy(zero_copy_only=False))


def test_tar_shards_equal_the_same_images_in_a_folder(simclr_checkpoints, shards, tmp_path):
    ckpt = simclr_checkpoints["encoder_projector"]
    spec = str(shards["root"] / "shards" / "{000..002}.tar")
    shard_dir = shards["root"] / "shards"
    # The same images as tar shards (a brace list, a glob, the folder of tars, one tar) and as a folder.
    results = run_cli_many([["extract", *_common(ckpt), "--data", data, "--out", out]
                            for data, out in [(spec, "wds.parquet"), (shards["folder"], "dir.parquet"),
                                              (shard_dir / "*.tar", "glob.parquet"), (shard_dir, "dirs.parquet"),
                                              (shard_dir / "001.tar", "one.parquet")]], cwd=tmp_path)
    out, _ = _ok(results[0])
    for result in results[1:]:
        _ok(result)
    assert f"wrote wds.parquet: {N_SHARDS * PER_SHARD} rows × 512" in out
    keys, wds = _rows(tmp_path / "wds.parquet")
    paths, plain = _rows(tmp_path / "dir.parquet")
    assert keys == shards["keys"]  # shard order, then in-tar order; key = shard name / sample key
    assert [p.rsplit("/", 1)[1].split(".")[0] for p in paths] == [k.rsplit("/", 1)[1] for k in keys]
    np.testing.assert_allclose(wds, plain, rtol=0, atol=1e-6)
    meta = pq.read_table(tmp_path / "wds.parquet").schema.metadata
    assert json.loads(meta[b"shards"]) == N_SHARDS and meta[b"source"].decode() == spec

    for name in ("glob.parquet", "dirs.parquet"):
        got_keys, got = _rows(tmp_path / name)
        assert got_keys == keys and np.array_equal(got, wds)
    one_keys, one = _rows(tmp_path / "one.parquet")
    assert one_keys == keys[PER_SHARD : 2 * PER_SHARD]
    np.testing.assert_allclose(one, wds[PER_SHARD : 2 * PER_SHARD], rtol=0, atol=1e-6)


def test_resume_after_a_kill_redoes_only_the_unfinished_tar(simclr_checkpoints, shards, tmp_path):
    ckpt = simclr_checkpoints["encoder_projector"]
    spec = str(shards["root"] / "shards" / "{000..002}.tar")
    # Killed with SIGKILL right after the second tar's shard was written.
    killer = textwrap.dedent(f"""
        import os, signal
        from gaussaudit.extract import ExtractProgress, extract
        class KillAfterTwo(ExtractProgress):
            def shard_written(self, index):
                if index == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
        extract(model="simclr-resnet18", checkpoint={str(ckpt)!r}, data={spec!r},
                out="emb.parquet", batch_size=4, workers=0, progress=KillAfterTwo())
    """)
    proc = subprocess.run([sys.executable, "-c", killer], cwd=tmp_path, capture_output=True, timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    parts = tmp_path / "emb.parquet.parts"
    assert sorted(p.name for p in parts.glob("shard_*")) == ["shard_000000.parquet", "shard_000001.parquet"]
    finished = {p.name: p.stat().st_mtime_ns for p in parts.glob("shard_*")}

    out, _ = _ok(run_cli("extract", *_common(ckpt), "--data", spec, "--out", "emb.parquet", "--resume",
                         cwd=tmp_path))
    assert f"resuming: 2 of 3 shards already done ({2 * PER_SHARD} images)" in out
    assert f"encoded {PER_SHARD} images" in out  # only the third tar
    assert not parts.exists()
    _ok(run_cli("extract", *_common(ckpt), "--data", spec, "--out", "clean.parquet", cwd=tmp_path))
    resumed_keys, resumed = _rows(tmp_path / "emb.parquet")
    clean_keys, clean = _rows(tmp_path / "clean.parquet")
    assert resumed_keys == clean_keys == shards["keys"]
    np.testing.assert_allclose(resumed, clean, rtol=0, atol=1e-6)
    assert finished  # the first two tars' shards were reused, not recomputed (the counts above)


def test_a_corrupt_image_in_a_tar_is_skipped_and_listed(simclr_checkpoints, shards, tmp_path):
    src = shards["root"] / "shards" / "000.tar"
    with tarfile.open(src) as tar_in, tarfile.open(tmp_path / "mixed.tar", "w") as tar_out:
        for member in tar_in.getmembers():
            tar_out.addfile(member, tar_in.extractfile(member))
        _add(tar_out, "bad01.jpg", b"this is not a picture\n")
        _add(tar_out, "bad01.txt", b"a caption")
    out, _ = _ok(run_cli("extract", *_common(simclr_checkpoints["encoder_projector"]), "--data", "mixed.tar",
                         "--out", "emb.parquet", cwd=tmp_path))
    keys, _ = _rows(tmp_path / "emb.parquet")
    assert keys == [k.replace("000.tar", "mixed.tar") for k in shards["keys"][:PER_SHARD]]
    assert "skipped 1 unreadable image" in out and "mixed.tar/bad01: not an image Pillow can read" in out


@pytest.mark.parametrize("case", ["not a tar", "missing shard", "no match"])
def test_bad_shards_exit_2_with_one_line(simclr_checkpoints, shards, tmp_path, case):
    if case == "not a tar":
        (tmp_path / "bad.tar").write_bytes(np.random.default_rng(0).bytes(5000))
        data, expected = "bad.tar", "bad.tar: is not a readable tar file"
    elif case == "missing shard":
        data = str(shards["root"] / "shards" / "{000..003}.tar")
        expected = "003.tar: no such shard"
    else:
        data, expected = str(tmp_path / "nowhere" / "*.tar"), "matches no files"
    rc, out, err = run_cli("extract", *_common(simclr_checkpoints["encoder_projector"]), "--data", data,
                           "--out", "emb.parquet", cwd=tmp_path)
    assert rc == 2, out + err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], err
    assert not (tmp_path / "emb.parquet").exists() and not (tmp_path / "emb.parquet.parts").exists()


def test_layout_clip_retrieval_is_read_back_by_scan(simclr_checkpoints, shards, tmp_path):
    ckpt = simclr_checkpoints["encoder_projector"]
    spec = str(shards["root"] / "shards" / "{000..002}.tar")
    out, _ = _ok(run_cli("extract", *_common(ckpt), "--data", spec, "--layout", "clip-retrieval", "--out", "emb/",
                         cwd=tmp_path))
    n = N_SHARDS * PER_SHARD
    assert f"{n} rows × 512 float16, L2-normalised" in out
    emb = np.load(tmp_path / "emb" / "img_emb" / "img_emb_0.npy")
    assert emb.shape == (n, 512) and emb.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(emb.astype(np.float64), axis=1), 1.0, atol=2e-3)
    meta = pq.read_table(tmp_path / "emb" / "metadata" / "metadata_0.parquet")
    assert meta.column("image_path").to_pylist() == shards["keys"]
    assert meta.column("caption").to_pylist() == shards["captions"]
    assert not (tmp_path / "emb" / "text_emb").exists() and not (tmp_path / "emb.parts").exists()

    # the same rows as the default layout, normalised and rounded to float16
    _ok(run_cli("extract", *_common(ckpt), "--data", spec, "--out", "plain.parquet", cwd=tmp_path))
    _, plain = _rows(tmp_path / "plain.parquet")
    unit = plain.astype(np.float64) / np.linalg.norm(plain.astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(emb.astype(np.float64), unit, rtol=0, atol=1e-3)  # float16: ~3 significant digits

    rc, report, err = run_cli("scan", "emb/", "--json", "-", cwd=tmp_path)
    assert rc == 0, err
    doc = json.loads(report)
    assert doc["input"]["n_total"] == n and doc["input"]["dim"] == 512

    # OUT exists: refused without --overwrite, replaced with it
    rc, _, err = run_cli("extract", *_common(ckpt), "--data", spec, "--layout", "clip-retrieval", "--out", "emb",
                         cwd=tmp_path)
    assert rc == 2 and "img_emb_0.npy: already exists; pass --overwrite" in err


def test_layout_clip_retrieval_for_texts(vit_checkpoint, captions_file, tmp_path):
    _ok(run_cli("extract", "-m", "ViT-B-32", "--checkpoint", vit_checkpoint, "--texts", captions_file,
                "--layout", "clip-retrieval", "-o", "txt", cwd=tmp_path))
    emb = np.load(tmp_path / "txt" / "text_emb" / "text_emb_0.npy")
    captions = [c for c in captions_file.read_text().splitlines() if c.strip()]
    assert emb.shape == (len(captions), 512) and emb.dtype == np.float16
    assert pq.read_table(tmp_path / "txt" / "metadata" / "metadata_0.parquet").column("caption").to_pylist() == captions
    assert not (tmp_path / "txt" / "img_emb").exists()


def test_layout_clip_retrieval_refuses_a_file_name(simclr_checkpoints, shards, tmp_path):
    rc, out, err = run_cli("extract", *_common(simclr_checkpoints["encoder_projector"]), "--data", shards["folder"],
                           "--layout", "clip-retrieval", "--out", "emb.npy", cwd=tmp_path)
    assert rc == 2 and "Traceback" not in out + err and "give --out a folder name" in err
