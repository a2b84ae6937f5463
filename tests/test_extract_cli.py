"""``gaussaudit extract`` as a user types it: the main flows end to end (files
written, what is printed), resume after the process is killed, and every error
case exits 2 with a message and no traceback."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from gaussaudit.extract import extract
from gaussaudit.extract.checkpoints import sha256_file

from conftest import run_cli, run_cli_many
from extract_fixtures import ALL_IMAGES, CAPTIONS, READABLE_IMAGES, UNREADABLE_IMAGES, run_cli_env

HAS_CUDA = torch.cuda.is_available()


def _ok(result):
    rc, out, err = result
    assert rc == 0, f"exit {rc}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    return out, err


def test_extract_vit_checkpoint_to_parquet(vit_checkpoint, image_folder, tmp_path):
    out, err = _ok(run_cli(
        "extract", "--model", "ViT-B-32", "--checkpoint", vit_checkpoint, "--data", image_folder,
        "--out", "emb.parquet", "--batch-size", "4", "--workers", "1", cwd=tmp_path,
    ))
    table = pq.read_table(tmp_path / "emb.parquet")
    assert table.column_names == ["path", "embedding"]
    assert str(table.schema.field("embedding").type) == "fixed_size_list<element: float>[512]"
    readable = [p for p in ALL_IMAGES if p in READABLE_IMAGES]
    assert table.column("path").to_pylist() == readable  # relative to DIR, sorted
    emb = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    assert np.isfinite(emb).all() and np.linalg.matrix_rank(emb) == len(readable)

    meta = table.schema.metadata
    assert meta[b"model"] == b"ViT-B-32" and meta[b"modality"] == b"image" and meta[b"precision"] == b"fp32"
    assert meta[b"checkpoint_sha256"].decode() == sha256_file(vit_checkpoint)
    assert json.loads(meta[b"preprocessing"])["resize_mode"] == "shortest"
    assert sorted(k for k, _ in json.loads(meta[b"skipped"])) == sorted(UNREADABLE_IMAGES)

    # what the user reads: the model and weights, the skipped files by name, the speed
    assert "ViT-B-32" in out and "image-tower tensors loaded" in out
    assert f"wrote emb.parquet: {len(readable)} rows × 512" in out
    assert f"skipped {len(UNREADABLE_IMAGES)} unreadable images" in out
    for name in UNREADABLE_IMAGES:
        assert f"  {name}: " in out
    assert "not an image Pillow can read" in out and "truncated" in out
    assert f"encoded {len(ALL_IMAGES)} images in" in out and "images/s (cpu, fp32, batch 4)" in out
    assert not (tmp_path / "emb.parquet.parts").exists()  # parts removed after success

    # the reader finds the parquet file's extract metadata (scan's report carries it; 8 rows are too few to scan)
    from gaussaudit.io.readers import ParquetShard

    provenance = ParquetShard(str(tmp_path / "emb.parquet")).provenance
    assert provenance["model"] == "ViT-B-32" and provenance["checkpoint_sha256"] == sha256_file(vit_checkpoint)
    assert provenance["pretrained"] is None and provenance["checkpoint"] == str(vit_checkpoint)


def test_extract_texts_to_npy_with_sidecar(vit_checkpoint, captions_file, tmp_path):
    out, _ = _ok(run_cli("extract", "-m", "ViT-B-32", "--checkpoint", vit_checkpoint, "--texts", captions_file,
                         "-o", "text.npy", cwd=tmp_path))
    emb = np.load(tmp_path / "text.npy")
    sidecar = json.loads((tmp_path / "text.npy.json").read_text())
    captions = [c for c in CAPTIONS if c.strip()]
    assert emb.shape == (len(captions), 512) and emb.dtype == np.float32
    assert sidecar["texts"] == captions and sidecar["key"] == "text" and sidecar["modality"] == "text"
    assert sidecar["checkpoint_sha256"] == sha256_file(vit_checkpoint) and sidecar["rows"] == len(captions)
    assert f"{len(captions)} texts" in out and "texts/s" in out


def test_extract_simclr_then_scan_and_overwrite(simclr_checkpoints, many_images, tmp_path):
    args = ["extract", "--model", "simclr-resnet18", "--checkpoint", simclr_checkpoints["backbone_fc_head"],
            "--data", many_images, "--out", "emb.npy", "--batch-size", "8", "--workers", "0"]
    out, _ = _ok(run_cli(*args, "--scan", cwd=tmp_path))
    assert "prefix 'backbone.' stripped" in out and "projection head 'backbone.fc.*'" in out
    assert "wrote emb.npy: 24 rows × 512" in out
    for label in ("CV", "AD Avg.", "DP Avg.", "Gaussian?", "Headline test"):
        assert label in out, f"--scan printed no {label!r} row"
    first = np.load(tmp_path / "emb.npy")
    assert json.loads((tmp_path / "emb.npy.json").read_text())["paths"] == [f"im{i:02d}.png" for i in range(24)]

    # The scan command reads what extract wrote, and its report names the weights (provenance).
    (rc, report, err), (rc_t, terminal, err_t) = run_cli_many(
        [["scan", "emb.npy", "--json", "-"], ["scan", "emb.npy", "--calibrate", "0"]], cwd=tmp_path)
    assert rc == rc_t == 0, err + err_t
    doc = json.loads(report)
    assert doc["input"]["dim"] == 512 and doc["input"]["n_total"] == 24
    sha = sha256_file(simclr_checkpoints["backbone_fc_head"])
    (provenance,) = doc["input"]["provenance"]
    assert provenance["model"] == "simclr-resnet18" and provenance["checkpoint_sha256"] == sha
    assert provenance["modality"] == "image" and provenance["precision"] == "fp32" and provenance["head"] is False
    flat = " ".join(terminal.split())
    assert f"embeddings: simclr-resnet18 · checkpoint {simclr_checkpoints['backbone_fc_head']}" in flat
    assert f"weights sha256 {sha[:16]}…" in flat

    # Existing OUT: refused without --overwrite (file untouched), replaced with it.
    # one after the other: two runs at once onto one OUT are refused by its lock (tested below)
    rc, out2, err2 = run_cli(*args, cwd=tmp_path)
    rc3, out3, err3 = run_cli(*args, "--overwrite", "--head", "--limit", "5", cwd=tmp_path)
    assert rc == 2 and "emb.npy: already exists; pass --overwrite" in err2
    assert rc3 == 0, err3
    replaced = np.load(tmp_path / "emb.npy")
    assert replaced.shape == (5, 128) and first.shape == (24, 512)


def test_extract_as_typed_without_out_writes_beside_the_folder(simclr_checkpoints, many_images, tmp_path):
    """`gaussaudit extract --model M --data imgs` (no --out) writes
    imgs.embeddings.parquet beside the folder, says so, and scan reads it."""
    shutil.copytree(many_images, tmp_path / "imgs")
    out, _ = _ok(run_cli("extract", "--model", "simclr-resnet18", "--checkpoint", simclr_checkpoints["backbone_fc_head"],
                         "--data", "imgs/", "--batch-size", "8", "--workers", "0", cwd=tmp_path))
    assert "no --out given: writing imgs.embeddings.parquet" in out
    assert "wrote imgs.embeddings.parquet: 24 rows × 512" in out
    assert pq.read_table(tmp_path / "imgs.embeddings.parquet").num_rows == 24
    rc, report, err = run_cli("scan", "imgs.embeddings.parquet", "--json", "-", cwd=tmp_path)
    assert rc == 0 and json.loads(report)["input"]["n_total"] == 24, err


def test_resume_after_the_process_is_killed(simclr_checkpoints, image_folder, tmp_path):
    ckpt = simclr_checkpoints["encoder_projector"]
    common = ["--model", "simclr-resnet18", "--checkpoint", ckpt, "--data", image_folder,
              "--batch-size", "4", "--shard-size", "4", "--workers", "0"]
    # The same run, killed with SIGKILL (no cleanup of any kind) right after its second shard.
    killer = textwrap.dedent(f"""
        import os, signal
        from gaussaudit.extract import ExtractProgress, extract
        class KillAfterTwo(ExtractProgress):
            def shard_written(self, index):
                if index == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
        extract(model="simclr-resnet18", checkpoint={str(ckpt)!r}, data={str(image_folder)!r},
                out="emb.parquet", batch_size=4, shard_size=4, workers=0, progress=KillAfterTwo())
    """)
    proc = subprocess.run([sys.executable, "-c", killer], cwd=tmp_path, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    parts = tmp_path / "emb.parquet.parts"
    assert sorted(p.name for p in parts.iterdir() if not p.name.startswith(".")) == [
        "manifest.json", "shard_000000.parquet", "shard_000001.parquet"]
    assert not (tmp_path / "emb.parquet").exists()
    finished = {p.name: p.stat().st_mtime_ns for p in parts.glob("shard_*")}

    rc, _, err = run_cli("extract", *common, "--out", "emb.parquet", cwd=tmp_path)
    assert rc == 2 and "left 2 finished shards" in err and "--resume" in err
    assert {p.name: p.stat().st_mtime_ns for p in parts.glob("shard_*")} == finished  # refused, untouched

    out, _ = _ok(run_cli("extract", *common, "--out", "emb.parquet", "--resume", cwd=tmp_path))
    n_left = len(ALL_IMAGES) - 8
    assert "resuming: 2 of 3 shards already done (8 images)" in out
    assert f"resumed: 2 of 3 shards were already done; {n_left} images encoded in this run" in out
    assert f"encoded {n_left} images" in out
    # the uninterrupted run, for comparison
    extract(model="simclr-resnet18", checkpoint=ckpt, data=image_folder, out=tmp_path / "whole.parquet",
            batch_size=4, workers=0)
    resumed, whole = pq.read_table(tmp_path / "emb.parquet"), pq.read_table(tmp_path / "whole.parquet")
    assert resumed.column("path").to_pylist() == whole.column("path").to_pylist()
    np.testing.assert_allclose(np.stack(resumed.column("embedding").to_numpy(zero_copy_only=False)),
                               np.stack(whole.column("embedding").to_numpy(zero_copy_only=False)), rtol=1e-5, atol=1e-6)
    assert sorted(k for k, _ in json.loads(resumed.schema.metadata[b"skipped"])) == sorted(UNREADABLE_IMAGES)
    assert not parts.exists()


# -- error cases: exit 2, a message naming the problem, no traceback ---------------------------------

def _error_cases(paths) -> list[tuple[str, list, list[str]]]:
    """(id, arguments, substrings the message must hold). More error cases are
    tested through the library in test_extract_models.py: each CLI run here
    pays seconds of importing torch."""
    ckpt = paths["ckpt"]
    images = ["--data", paths["images"]]
    no_cuda = (["--device", "cuda"], ["CUDA is not available", "--device cpu"]) if not HAS_CUDA else \
        (["--device", "cuda:99"], ["cuda:99", "CUDA device"])
    return [
        ("unknown_model", ["-m", "ViT-B-33", "--checkpoint", ckpt, *images], ["unknown model 'ViT-B-33'", "Did you mean", "ViT-B-32"]),
        ("no_images", ["-m", "simclr-resnet18", "--checkpoint", ckpt, "--data", paths["empty"]], ["no images found"]),
        ("data_missing", ["-m", "simclr-resnet18", "--checkpoint", ckpt, "--data", "nowhere"], ["nowhere", "no such folder"]),
        ("checkpoint_unreadable", ["-m", "simclr-resnet18", "--checkpoint", paths["garbage"], *images], ["garbage.pt", "not a readable checkpoint"]),
        ("checkpoint_missing", ["-m", "simclr-resnet18", "--checkpoint", "nope.pt", *images], ["nope.pt", "no such checkpoint file"]),
        ("backbone_missing", ["-m", "simclr-resnet18", "--checkpoint", paths["head_only"], *images], ["head_only.pt", "never embeds with random weights"]),
        ("simclr_no_weights", ["-m", "simclr-resnet18", *images], ["needs weights", "--checkpoint"]),
        ("clip_no_weights", ["-m", "ViT-B-32", *images], ["needs weights", "--pretrained TAG", "--checkpoint PATH"]),
        ("no_cuda", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, *no_cuda[0]], no_cuda[1]),
        ("bad_device", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, "--device", "tpu"], ["--device must be"]),
        ("bad_precision", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, "--precision", "fp8"], ["--precision must be"]),
        ("bad_suffix", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, "--out", "emb.csv"], ["emb.csv", ".parquet or .npy"]),
        ("out_exists", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, "--out", paths["existing"]], ["already exists", "--overwrite"]),
        ("out_folder_missing", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, "--out", "nodir/emb.parquet"], ["nodir", "does not exist"]),
        ("strict", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, "--strict", "--workers", "0"], ["corrupt.png", "--strict"]),
        ("texts_with_simclr", ["-m", "simclr-resnet18", "--checkpoint", ckpt, "--texts", paths["captions"]], ["needs a CLIP model"]),
        ("data_and_texts", ["-m", "ViT-B-32", "--checkpoint", ckpt, *images, "--texts", paths["captions"]], ["--data", "--texts", "not both"]),
        ("neither_data_nor_texts", ["-m", "ViT-B-32", "--checkpoint", ckpt], ["give --data DIR", "--texts FILE"]),
        ("batch_size_zero", ["-m", "simclr-resnet18", "--checkpoint", ckpt, *images, "--batch-size", "0"], ["--batch-size must be at least 1"]),
    ]


@pytest.fixture(scope="module")
def error_paths(tmp_path_factory, image_folder, simclr_checkpoints, captions_file):
    import torch as _torch

    from extract_fixtures import projection_head_state

    root = tmp_path_factory.mktemp("errors")
    (root / "empty" / "deeper").mkdir(parents=True)
    (root / "empty" / "deeper" / "readme.txt").write_text("no images here")
    # opens like a pickle (0x80, protocol 2) and then is noise, as one random file in 256 does
    (root / "garbage.pt").write_bytes(b"\x80\x02" + np.random.default_rng(0).bytes(4094))
    _torch.save(projection_head_state("projector.", 0), root / "head_only.pt")
    (root / "existing.parquet").write_bytes(b"precious")
    return {"root": root, "images": image_folder, "empty": root / "empty", "garbage": root / "garbage.pt",
            "head_only": root / "head_only.pt", "existing": root / "existing.parquet", "captions": captions_file,
            "ckpt": simclr_checkpoints["bare_with_classifier"]}


def test_error_cases_exit_2_with_a_message(error_paths):
    cases = _error_cases(error_paths)
    arg_lists = []
    for case, args, _ in cases:
        if "--out" not in args:
            args = [*args, "--out", f"{case}.parquet"]
        arg_lists.append(["extract", *args])
    results = run_cli_many(arg_lists, cwd=error_paths["root"])
    failures = []
    for (case, _, needles), (rc, out, err) in zip(cases, results):
        problems = []
        if rc != 2:
            problems.append(f"exit {rc}")
        if "Traceback" in out + err:
            problems.append("traceback")
        if not err.startswith("error:"):
            problems.append("stderr does not start with 'error:'")
        flat = " ".join(err.split())
        problems += [f"no {n!r}" for n in needles if n not in flat]
        if problems:
            failures.append(f"{case}: {', '.join(problems)}\n  stderr: {err.strip()[:600]}")
    assert not failures, "\n".join(failures)
    assert (error_paths["existing"]).read_bytes() == b"precious"
    # A failed run leaves nothing behind: no output, no empty parts folder.
    leftovers = [p.name for p in error_paths["root"].iterdir() if p.name.endswith((".parquet", ".parts"))]
    assert leftovers == ["existing.parquet"], leftovers


def test_pretrained_tag_offline_says_how_to_use_a_checkpoint(image_folder, tmp_path):
    """Offline, one message at once: where the cache folder goes, HF_HUB_OFFLINE,
    --checkpoint; no hub retries (they took 94 s and printed ten lines)."""
    hf_home = tmp_path / "hf"  # empty: nothing is cached
    cases = {"offline": {"HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)},
             # a hub that refuses connections: what a machine without network sees
             "unreachable": {"HF_HOME": str(hf_home), "HF_ENDPOINT": "http://127.0.0.1:9"}}
    for case, env in cases.items():
        started = time.monotonic()
        rc, out, err = run_cli_env(
            "extract", "--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k", "--data", image_folder,
            "--out", "emb.parquet", cwd=tmp_path, env=env,
        )
        seconds = time.monotonic() - started
        flat = " ".join(err.split())
        assert rc == 2 and "Traceback" not in out + err, err
        assert err.count("\n") == 1 and "Retry" not in err, err  # one message, nothing from the hub client
        assert "the weights of ViT-B-32 'laion2b_s34b_b79k' are not cached here" in flat
        folder = hf_home / "hub" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
        assert f"to {folder} here and run again with HF_HUB_OFFLINE=1" in flat, flat
        assert "--checkpoint FILE instead of --pretrained" in flat
        assert ("HF_HUB_OFFLINE is set" in flat) == (case == "offline")
        assert seconds < 60, (case, seconds)  # startup and imports; the retries alone took 94 s


def test_pretrained_tag_from_a_copied_cache_folder(vit_checkpoint, image_folder, tmp_path):
    """The offline message's recipe works: weights in the Hugging Face cache
    layout (as copied from a machine with network) are used with
    HF_HUB_OFFLINE=1, without any download."""
    repo = tmp_path / "hf" / "hub" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")
    (snapshot / "open_clip_pytorch_model.bin").symlink_to(vit_checkpoint)
    rc, out, err = run_cli_env(
        "extract", "--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k", "--data", image_folder,
        "--out", "emb.parquet", "--batch-size", "8", "--workers", "0", cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    assert rc == 0, err
    meta = pq.read_table(tmp_path / "emb.parquet").schema.metadata
    assert meta[b"pretrained"] == b"laion2b_s34b_b79k"
    assert meta[b"checkpoint_sha256"].decode() == sha256_file(vit_checkpoint)
    assert "open_clip tag 'laion2b_s34b_b79k'" in out and str(snapshot) in " ".join(out.split())


def test_clip_without_weights_fails_before_importing_torch():
    """The missing-weights message, with the architecture's tags, needs no torch:
    it comes in a blink instead of after seconds of imports."""
    code = ("import sys\n"
            "from gaussaudit.errors import GaussAuditError\n"
            "from gaussaudit.extract.models import check_model_request\n"
            "try:\n    check_model_request('ViT-B-32')\n"
            "except GaussAuditError as exc:\n    print(exc)\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ViT-B-32 needs weights" in proc.stdout and "openai" in proc.stdout and "laion2b_s34b_b79k" in proc.stdout
    assert proc.stdout.strip().endswith("no torch"), proc.stdout


def test_missing_extra_names_the_install_command(image_folder, tmp_path):
    # torch absent, as after `pip install gaussaudit` without the extract extra
    # A finder that refuses the import, as for a package that is not installed
    # (sys.modules[name] = None would also trip scipy, which probes sys.modules for torch).
    blocked = ("import sys, importlib.abc\n"
               "class NotInstalled(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in ('torch', 'torchvision', 'open_clip'):\n"
               "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
               "sys.meta_path.insert(0, NotInstalled())\n"
               "from gaussaudit.cli import main; sys.argv[0] = 'gaussaudit'; main()")
    args = ["extract", "--model", "ViT-B-32", "--checkpoint", "x.pt", "--data", str(image_folder), "--out", "e.parquet"]
    (rc, out, err), (rc_scan, _, err_scan) = [
        run_cli(*a, cwd=tmp_path, exe=[sys.executable, "-c", blocked])
        for a in (args, ["scan", "x.npy"])
    ]
    assert rc == 2 and "Traceback" not in out + err
    assert "pip install 'gaussaudit[extract]'" in err and "torch" in err
    # scan still works without torch: it fails only on the missing file
    assert rc_scan == 2 and "x.npy: no such file" in err_scan


def test_extract_help_lists_every_option():
    rc, out, err = run_cli("extract", "--help")
    assert rc == 0, err
    for option in ("--model", "--data", "--out", "--pretrained", "--checkpoint", "--device", "--precision",
                   "--batch-size", "--workers", "--limit", "--resume", "--scan", "--texts", "--strict", "--head",
                   "--overwrite", "--shard-size", "--allow-partial"):
        assert option in out, f"extract --help does not mention {option}"


def test_a_second_extract_onto_the_same_out_is_refused(simclr_checkpoints, image_folder, tmp_path):
    """While one run holds OUT's lock, another onto the same OUT exits 2 naming it
    (two runs once mixed two checkpoints' rows in one file); a lock left by a
    dead run is taken over and said."""
    from gaussaudit.io.extract_store import ExtractStore, lock_path

    args = ["extract", "--model", "simclr-resnet18", "--checkpoint", simclr_checkpoints["encoder_projector"],
            "--data", image_folder, "--out", "emb.parquet", "--batch-size", "8", "--workers", "0"]
    with ExtractStore(tmp_path / "emb.parquet").lock():
        rc, out, err = run_cli(*args, cwd=tmp_path)
    assert rc == 2 and f"another gaussaudit extract is writing it (pid {os.getpid()} on" in " ".join(err.split()), err
    assert not (tmp_path / "emb.parquet").exists() and not (tmp_path / "emb.parquet.parts").exists()
    assert not lock_path(tmp_path / "emb.parquet").exists()  # released
    # a lock file whose process is gone (no flock held): taken over
    lock_path(tmp_path / "emb.parquet").write_text(json.dumps({"pid": 4194000, "host": "h", "started": "then"}))
    out, _ = _ok(run_cli(*args, cwd=tmp_path))
    assert "note: a lock left by an earlier run that ended without finishing (pid 4194000 on h since then)" in out
    assert pq.read_table(tmp_path / "emb.parquet").num_rows == len(READABLE_IMAGES)
    assert not lock_path(tmp_path / "emb.parquet").exists()


def test_npy_and_sidecar_that_do_not_match_are_refused(simclr_checkpoints, image_folder, tmp_path):
    """A kill between an --overwrite's new .npy and its sidecar left the old
    sidecar naming the new data's checkpoint; now the sidecar carries the data's
    fingerprint and scan refuses a pair that does not match."""
    common = ["extract", "--model", "simclr-resnet18", "--data", image_folder, "--out", "emb.npy",
              "--batch-size", "8", "--workers", "0"]
    _ok(run_cli(*common, "--checkpoint", simclr_checkpoints["encoder_projector"], cwd=tmp_path))
    old_sidecar = (tmp_path / "emb.npy.json").read_text()
    _ok(run_cli(*common, "--checkpoint", simclr_checkpoints["other"], "--overwrite", cwd=tmp_path))
    (tmp_path / "emb.npy.json").write_text(old_sidecar)  # the state such a kill leaves
    rc, out, err = run_cli("scan", "emb.npy", "--calibrate", "0", cwd=tmp_path)
    assert rc == 2 and "describes another version of emb.npy" in " ".join(err.split()), err


def test_resume_when_every_shard_was_done_finishes(simclr_checkpoints, image_folder, tmp_path):
    """Killed after writing OUT but before removing OUT.parts: --resume found
    'already exists'; now it rebuilds OUT from the finished shards and cleans up."""
    ckpt = simclr_checkpoints["encoder_projector"]
    killer = textwrap.dedent(f"""
        import os, signal
        from gaussaudit.io.extract_store import ExtractStore
        ExtractStore.remove_parts = lambda self: os.kill(os.getpid(), signal.SIGKILL)
        from gaussaudit.extract import extract
        extract(model="simclr-resnet18", checkpoint={str(ckpt)!r}, data={str(image_folder)!r},
                out="emb.npy", batch_size=4, shard_size=4, workers=0)
    """)
    proc = subprocess.run([sys.executable, "-c", killer], cwd=tmp_path, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert (tmp_path / "emb.npy").exists() and (tmp_path / "emb.npy.parts").is_dir()
    first = np.load(tmp_path / "emb.npy")
    out, _ = _ok(run_cli("extract", "--model", "simclr-resnet18", "--checkpoint", ckpt, "--data", image_folder,
                         "--out", "emb.npy", "--batch-size", "4", "--shard-size", "4", "--workers", "0", "--resume",
                         cwd=tmp_path))
    assert not (tmp_path / "emb.npy.parts").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "emb.npy"), first)
    from gaussaudit.io.extract_store import provenance_from_sidecar

    assert provenance_from_sidecar(tmp_path / "emb.npy")["model"] == "simclr-resnet18"  # the pair matches


def test_16_bit_grayscale_png_is_embedded_as_its_8_bit_reference(simclr_checkpoints, tmp_path):
    """A 16-bit grayscale PNG was clipped to near-white by convert('RGB'); it is
    now brought to 8 bits by its range and embeds exactly as the reference
    conversion (v / 257, rounded) saved as an 8-bit PNG."""
    from PIL import Image

    rng = np.random.default_rng(0)
    wide = (rng.random((96, 80)) ** 2 * 65535).astype(np.uint16)
    for name in ("wide", "reference"):
        (tmp_path / name).mkdir()
    Image.fromarray(wide).save(tmp_path / "wide" / "x.png")
    assert Image.open(tmp_path / "wide" / "x.png").mode.startswith("I")
    Image.fromarray(np.rint(wide / 257).astype(np.uint8)).save(tmp_path / "reference" / "x.png")
    embeddings = []
    for name in ("wide", "reference"):
        result = extract(model="simclr-resnet18", checkpoint=str(simclr_checkpoints["encoder_projector"]),
                         data=str(tmp_path / name), out=str(tmp_path / f"{name}.npy"), workers=0, device="cpu")
        assert result.rows == 1
        embeddings.append(np.load(tmp_path / f"{name}.npy"))
    np.testing.assert_array_equal(embeddings[0], embeddings[1])


def test_a_full_disk_while_assembling_npy_is_an_error_and_resume_finishes(simclr_checkpoints, image_folder, tmp_path,
                                                                          monkeypatch):
    """ENOSPC while writing OUT.npy (a memory-mapped write died with SIGBUS
    there): a clean error, no OUT and no temporary left, the finished shards
    kept, and --resume completes the output once there is space."""
    import errno

    import gaussaudit.io.extract_store as store_module
    from gaussaudit.errors import GaussAuditError

    real_open = open

    class FullDisk:
        def __init__(self, fh):
            self.fh, self.written = fh, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def opener(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        return FullDisk(fh) if "w" in mode and str(path).endswith(".tmp") and ".npy." in str(path) else fh

    common = dict(model="simclr-resnet18", checkpoint=str(simclr_checkpoints["encoder_projector"]),
                  data=str(image_folder), out=str(tmp_path / "emb.npy"), batch_size=4, shard_size=4, workers=0)
    monkeypatch.setattr(store_module, "open", opener, raising=False)
    with pytest.raises(GaussAuditError, match="No space left on device"):
        extract(**common)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy.parts"]  # no OUT, no temporary, no lock
    monkeypatch.setattr(store_module, "open", real_open, raising=False)
    result = extract(**common, resume=True)
    assert result.rows == len(READABLE_IMAGES) and result.encoded == 0  # nothing recomputed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy", "emb.npy.json"]
