"""The extract library: loaders really load the weights (SimCLR layouts, open_clip
checkpoints), embeddings equal a direct torchvision / open_clip forward, the
image folder is read deterministically, resume never recomputes a finished
shard, and errors are GaussAuditErrors a user can act on."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from gaussaudit import GaussAuditError
from gaussaudit.extract import ExtractProgress, extract, find_images, load_model
from gaussaudit.extract.checkpoints import sha256_file
from gaussaudit.io.extract_store import ExtractStore

from extract_fixtures import ALL_IMAGES, CAPTIONS, READABLE_IMAGES, UNREADABLE_IMAGES, resnet18_state


def read_parquet(path):
    table = pq.read_table(path)
    key = "path" if "path" in table.column_names else "text"
    return table.column(key).to_pylist(), np.stack(table.column("embedding").to_numpy(zero_copy_only=False))


def torchvision_reference(state: dict, folder, paths, head_state: dict | None = None) -> np.ndarray:
    """What a user would write by hand: torchvision resnet18 with the weights,
    classifier removed, Resize(256)/CenterCrop(224)/ImageNet normalisation."""
    import torchvision
    from PIL import Image
    from torchvision import transforms

    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(state)
    model.fc = torch.nn.Identity()
    model.eval()
    tf = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    x = torch.stack([tf(Image.open(folder / p).convert("RGB")) for p in paths])
    with torch.inference_mode():
        out = model(x)
        if head_state is not None:
            layers = sorted({int(k.split(".")[-2]) for k in head_state})
            for index in layers:
                w = head_state.get(f"h.{index}.weight")
                if f"h.{index}.running_mean" in head_state:
                    out = torch.nn.functional.batch_norm(
                        out, head_state[f"h.{index}.running_mean"], head_state[f"h.{index}.running_var"],
                        w, head_state[f"h.{index}.bias"], training=False, eps=1e-5)
                else:
                    out = torch.nn.functional.linear(out, w, head_state.get(f"h.{index}.bias"))
                if index + 1 not in layers and index != layers[-1]:
                    out = torch.relu(out)
    return out.numpy()


# -- the image folder -------------------------------------------------------------------


def test_find_images_recursive_sorted_and_filtered(image_folder, tmp_path):
    found = find_images(image_folder)
    assert found == ALL_IMAGES
    assert "notes.txt" not in found and not any(p.startswith(".") or "/." in p for p in found)
    assert find_images(image_folder, limit=3) == ALL_IMAGES[:3]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("x")
    with pytest.raises(GaussAuditError, match="no images found"):
        find_images(tmp_path / "empty")
    with pytest.raises(GaussAuditError, match="no such folder"):
        find_images(tmp_path / "missing")
    with pytest.raises(GaussAuditError, match="not a folder"):
        find_images(tmp_path / "empty" / "sub" / "notes.txt")


# -- SimCLR: layouts, weights really loaded -------------------------------------------------

LAYOUT_PREFIXES = {
    "bare_with_classifier": "", "state_dict_module": "module.", "backbone_fc_head": "backbone.",
    "encoder_projector": "encoder.", "lightning_model": "model.", "model_convnet_bnhead": "convnet.",
    "module_encoder_q_k": "module.encoder_q.",
}


@pytest.mark.parametrize("layout", sorted(LAYOUT_PREFIXES))
def test_simclr_layouts_load_every_backbone_tensor(layout, simclr_checkpoints, resnet_states):
    loaded = load_model("simclr-resnet18", checkpoint=simclr_checkpoints[layout])
    got = loaded.module.state_dict()
    expected = {k: v for k, v in resnet_states[0].items() if not k.startswith("fc.")}
    assert set(got) == set(expected)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            continue  # step counters are not weights; some layouts lack them
        assert torch.equal(got[key], value), f"{layout}: {key} not loaded"
    report = "\n".join(loaded.report)
    prefix = LAYOUT_PREFIXES[layout]
    assert (f"prefix '{prefix}'" in report) == bool(prefix), report
    assert loaded.checkpoint_sha256 == sha256_file(simclr_checkpoints[layout])
    assert loaded.preprocessing["resize"] == 256 and loaded.preprocessing["center_crop"] == 224
    if layout == "bare_with_classifier":
        assert "ignored 2 other tensors: fc.weight, fc.bias" in report
    if layout in ("backbone_fc_head", "encoder_projector", "model_convnet_bnhead"):
        assert "projection head" in report and "ignored; head=True embeds through it" in report
    if layout == "module_encoder_q_k":
        assert "module.encoder_k." in report  # the momentum copy is named, not used


def test_simclr_embeddings_equal_torchvision_and_differ_between_checkpoints(
    simclr_checkpoints, resnet_states, image_folder, tmp_path
):
    first = extract(model="simclr-resnet18", checkpoint=simclr_checkpoints["state_dict_module"],
                    data=image_folder, out=tmp_path / "a.parquet", batch_size=3, workers=0)
    second = extract(model="simclr-resnet18", checkpoint=simclr_checkpoints["other"],
                     data=image_folder, out=tmp_path / "b.parquet", batch_size=3, workers=0)
    paths_a, emb_a = read_parquet(first.out)
    paths_b, emb_b = read_parquet(second.out)
    readable = [p for p in ALL_IMAGES if p in READABLE_IMAGES]
    assert paths_a == paths_b == readable
    assert emb_a.shape == (len(readable), 512) and emb_a.dtype == np.float32
    reference_a = torchvision_reference(resnet_states[0], image_folder, readable)
    reference_b = torchvision_reference(resnet_states[1], image_folder, readable)
    np.testing.assert_allclose(emb_a, reference_a, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(emb_b, reference_b, rtol=1e-4, atol=1e-4)
    # different weights, clearly different embeddings (not a shared random init)
    assert np.abs(emb_a - emb_b).mean() > 10 * np.abs(emb_a - reference_a).max()
    assert sorted(k for k, _ in first.skipped) == sorted(UNREADABLE_IMAGES)


@pytest.mark.parametrize("layout,head_prefix,batchnorm", [
    ("encoder_projector", "projector.", False),
    ("model_convnet_bnhead", "head.", True),
])
def test_simclr_head_embeds_through_the_projection_head(layout, head_prefix, batchnorm, simclr_checkpoints,
                                                        resnet_states, image_folder, tmp_path):
    from extract_fixtures import projection_head_state

    result = extract(model="simclr-resnet18", checkpoint=simclr_checkpoints[layout], head=True,
                     data=image_folder, out=tmp_path / "h.npy", batch_size=4, workers=0)
    embeddings = np.load(result.out)
    sidecar = json.loads(result.sidecar.read_text())
    assert embeddings.shape == (len(READABLE_IMAGES), 128) and sidecar["head"] is True
    head = {k.replace(head_prefix, "h."): v for k, v in projection_head_state(head_prefix, 3, batchnorm).items()
            if not k.endswith("num_batches_tracked")}
    reference = torchvision_reference(resnet_states[0], image_folder, sidecar["paths"], head_state=head)
    np.testing.assert_allclose(embeddings, reference, rtol=1e-4, atol=1e-4)


def _save(tmp_path, name, obj):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_simclr_checkpoints_without_the_backbone_fail(tmp_path, resnet_states):
    from extract_fixtures import backbone_only, projection_head_state

    state = backbone_only(resnet_states[0])
    import torchvision

    resnet50 = torchvision.models.resnet50(weights=None).state_dict()
    cases = {
        "head_only": (projection_head_state("projector.", 0), ["none of its", "never embeds with random weights"]),
        "no_layer4": ({f"backbone.{k}": v for k, v in state.items() if not k.startswith("layer4")},
                      ["incomplete", "layer4.", "never embeds with random weights"]),
        "resnet50_into_18": (resnet50, ["do not fit", "resnet50"]),
        "cifar_stem": ({**state, "conv1.weight": torch.zeros(64, 3, 3, 3)}, ["CIFAR"]),
        "no_state_dict": ({"epoch": 3, "args": "lr=0.1"}, ["no state dict", "epoch"]),
    }
    for name, (obj, needles) in cases.items():
        path = _save(tmp_path, f"{name}.pt", obj)
        with pytest.raises(GaussAuditError) as info:
            load_model("simclr-resnet18", checkpoint=path)
        for needle in needles:
            assert needle in str(info.value), f"{name}: {needle!r} not in {info.value}"
    # resnet18 weights into resnet50: the conv3 layers are missing
    path = _save(tmp_path, "r18.pt", state)
    with pytest.raises(GaussAuditError, match="simclr-resnet18"):
        load_model("simclr-resnet50", checkpoint=path)
    with pytest.raises(GaussAuditError, match="no projection head"):
        load_model("simclr-resnet18", checkpoint=path, head=True)


def test_unreadable_and_unsafe_checkpoints_fail(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(GaussAuditError, match="not a readable checkpoint"):
        load_model("simclr-resnet18", checkpoint=text)
    with pytest.raises(GaussAuditError, match="no such checkpoint file"):
        load_model("simclr-resnet18", checkpoint=tmp_path / "missing.pt")
    # A pickled object that is not plain tensors and containers: weights_only refuses it.
    unsafe = _save(tmp_path, "unsafe.pt", {"state_dict": resnet18_state(0), "args": __import__("argparse").Namespace(lr=1)})
    with pytest.raises(GaussAuditError, match="weights_only=True"):
        load_model("simclr-resnet18", checkpoint=unsafe)


def test_model_names_and_weights_are_checked():
    with pytest.raises(GaussAuditError, match="Did you mean: ViT-B-32"):
        load_model("vit-b-32x", checkpoint="x.pt")
    with pytest.raises(GaussAuditError, match="Did you mean: simclr-resnet18"):
        load_model("simclr-resnet19", checkpoint="x.pt")
    with pytest.raises(GaussAuditError, match="needs weights.*checkpoint='PATH'"):
        load_model("simclr-resnet50")
    with pytest.raises(GaussAuditError, match="needs weights.*pretrained='TAG'.*openai"):
        load_model("ViT-B-32")
    with pytest.raises(GaussAuditError, match="not a tag of ViT-B-32.*laion2b_s34b_b79k"):
        load_model("ViT-B-32", pretrained="laion2b_s34b_b97k")
    with pytest.raises(GaussAuditError, match="needs a CLIP model"):
        load_model("simclr-resnet18", checkpoint="x.pt", modality="text")


# -- open_clip --------------------------------------------------------------------------


def test_open_clip_checkpoint_images_and_texts_equal_open_clip(vit_checkpoint, image_folder, captions_file, tmp_path):
    import open_clip
    from PIL import Image

    images = extract(model="ViT-B-32", checkpoint=vit_checkpoint, data=image_folder, out=tmp_path / "i.parquet",
                     batch_size=4, workers=0)
    texts = extract(model="ViT-B-32", checkpoint=vit_checkpoint, texts=captions_file, out=tmp_path / "t.parquet")
    paths, emb = read_parquet(images.out)
    captions, text_emb = read_parquet(texts.out)
    assert emb.shape == (len(READABLE_IMAGES), 512)
    assert captions == [c for c in CAPTIONS if c.strip()] and text_emb.shape == (len(captions), 512)

    # The way open_clip's README does it, with the file as `pretrained`.
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=str(vit_checkpoint))
    model.eval()
    with torch.inference_mode():
        ref = model.encode_image(torch.stack([preprocess(Image.open(image_folder / p).convert("RGB")) for p in paths]))
        ref_text = model.encode_text(open_clip.get_tokenizer("ViT-B-32")(captions))
    np.testing.assert_allclose(emb, ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(text_emb, ref_text.numpy(), rtol=1e-4, atol=1e-4)

    meta = pq.read_schema(images.out).metadata
    assert meta[b"model"] == b"ViT-B-32"
    assert meta[b"checkpoint_sha256"].decode() == sha256_file(vit_checkpoint)
    preprocessing = json.loads(meta[b"preprocessing"])
    assert preprocessing["size"] == [224, 224] and preprocessing["interpolation"] == "bicubic"
    assert preprocessing["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert json.loads(pq.read_schema(texts.out).metadata[b"preprocessing"])["context_length"] == 77


def test_device_and_precision_choices():
    from gaussaudit.extract import runner

    cpu = torch.device("cpu")
    assert runner.resolve_device("cpu") == cpu and runner.resolve_precision("auto", cpu) == "fp32"
    assert runner.resolve_precision("bf16", cpu) == "bf16"
    if torch.cuda.is_available():
        assert runner.resolve_device("auto").type == "cuda"
        assert runner.resolve_precision("auto", torch.device("cuda")) in ("bf16", "fp16")
    else:
        assert runner.resolve_device("auto") == cpu
        with pytest.raises(GaussAuditError, match="CUDA is not available"):
            runner.resolve_device("cuda:0")
        with pytest.raises(GaussAuditError, match="precision='fp16' needs a GPU"):
            runner.resolve_precision("fp16", cpu)


def test_open_clip_rejects_a_checkpoint_of_another_model(simclr_checkpoints, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(GaussAuditError, match="garbage.pt: is not a readable checkpoint"):
        load_model("ViT-B-32", checkpoint=garbage)
    with pytest.raises(GaussAuditError, match="image tower of ViT-B-32 is incomplete"):
        load_model("ViT-B-32", checkpoint=simclr_checkpoints["bare_with_classifier"])
    with pytest.raises(GaussAuditError, match="either pretrained='TAG' or checkpoint='PATH'"):
        load_model("ViT-B-32", pretrained="openai", checkpoint=simclr_checkpoints["other"])


# -- determinism, resume, memory ------------------------------------------------------------


def test_same_inputs_same_embeddings_bit_for_bit(simclr_checkpoints, image_folder, tmp_path):
    ckpt = simclr_checkpoints["encoder_projector"]
    a = extract(model="simclr-resnet18", checkpoint=ckpt, data=image_folder, out=tmp_path / "a.npy",
                batch_size=4, workers=0)
    b = extract(model="simclr-resnet18", checkpoint=ckpt, data=image_folder, out=tmp_path / "b.parquet",
                batch_size=4, workers=2, shard_size=3)
    paths_b, emb_b = read_parquet(b.out)
    assert json.loads(a.sidecar.read_text())["paths"] == paths_b
    assert np.array_equal(np.load(a.out), emb_b)  # workers and shards change nothing


class StopAfter(ExtractProgress):
    """Interrupts a run (as Ctrl-C would) once ``shards`` shards are on disk."""

    def __init__(self, shards: int | None = None) -> None:
        self.stop_after, self.written, self.advanced = shards, [], 0

    def advance(self, n: int) -> None:
        self.advanced += n

    def shard_written(self, index: int) -> None:
        self.written.append(index)
        if self.stop_after is not None and len(self.written) == self.stop_after:
            raise KeyboardInterrupt


def test_resume_reuses_finished_shards_and_refuses_other_settings(simclr_checkpoints, image_folder, tmp_path):
    ckpt = simclr_checkpoints["state_dict_module"]
    common = dict(model="simclr-resnet18", data=image_folder, workers=0, shard_size=4)
    whole = extract(**common, checkpoint=ckpt, out=tmp_path / "whole.parquet", batch_size=4)

    out = tmp_path / "resumed.parquet"
    stop = StopAfter(shards=2)
    with pytest.raises(KeyboardInterrupt):
        extract(**common, checkpoint=ckpt, out=out, batch_size=4, progress=stop)
    store = ExtractStore(out)
    assert not out.exists() and store.finished_shards() == {0, 1}

    # Without --resume the finished work is neither lost nor silently reused.
    with pytest.raises(GaussAuditError, match="left 2 finished shards.*resume=True"):
        extract(**common, checkpoint=ckpt, out=out, batch_size=4)
    # Other weights: refused, naming what differs.
    with pytest.raises(GaussAuditError, match=r"other settings.*checkpoint \(SHA-256\) was [0-9a-f]{12}…, now [0-9a-f]{12}…"):
        extract(**common, checkpoint=simclr_checkpoints["other"], out=out, batch_size=4, resume=True)

    # Mark shard 0 so we can see whether it is reused or recomputed.
    shard0 = store.read_shard(0)
    store.write_shard(0, shard0.keys, np.full_like(shard0.embeddings, 7.0), shard0.skipped)

    again = StopAfter()
    # A different batch size does not change the embeddings, so it may differ on resume.
    resumed = extract(**common, checkpoint=ckpt, out=out, batch_size=3, resume=True, progress=again)
    n_items = len(ALL_IMAGES)
    assert again.written == [2] and again.advanced == n_items - 8 and resumed.encoded == n_items - 8
    assert resumed.plan.shards_done == 2 and not store.parts.exists()

    paths, emb = read_parquet(out)
    whole_paths, whole_emb = read_parquet(whole.out)
    assert paths == whole_paths
    in_shard0 = [i for i, p in enumerate(paths) if ALL_IMAGES.index(p) < 4]
    assert np.all(emb[in_shard0] == 7.0)  # reused as written, not recomputed
    rest = [i for i in range(len(paths)) if i not in in_shard0]
    np.testing.assert_allclose(emb[rest], whole_emb[rest], rtol=1e-5, atol=1e-5)
    assert sorted(k for k, _ in resumed.skipped) == sorted(UNREADABLE_IMAGES)  # incl. those of earlier shards


def test_out_of_memory_suggests_a_smaller_batch(image_folder, tmp_path):
    from gaussaudit.extract import runner
    from gaussaudit.extract.inputs import Collate, ImageFolderDataset
    from gaussaudit.extract.models import LoadedModel

    def exhausted(batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    fake = LoadedModel(name="fake", module=torch.nn.Identity(), encode=exhausted, preprocess=None,
                       modality="image", pretrained=None, checkpoint=None, checkpoint_sha256=None, preprocessing={})
    from torchvision import transforms

    tiny = transforms.Compose([transforms.Resize((8, 8)), transforms.ToTensor()])
    dataset = ImageFolderDataset(image_folder, READABLE_IMAGES, tiny)
    store = ExtractStore(tmp_path / "x.parquet")
    store.parts.mkdir()
    with pytest.raises(GaussAuditError, match=r"ran out of memory at batch_size=8; try batch_size=4.*resume=True"):
        runner.encode_shards(fake, dataset, Collate(), [(0, range(len(READABLE_IMAGES)))], shard_size=100,
                             keys=READABLE_IMAGES, store=store, device=torch.device("cpu"), precision="fp32",
                             batch_size=8, workers=0)


def test_scan_does_not_import_torch():
    code = ("import sys, gaussaudit, gaussaudit.cli, gaussaudit.extract, gaussaudit.report.extract; "
            "print(sorted(m for m in ('torch', 'open_clip', 'torchvision', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; this machine has no GPU")
def test_cuda_autocast_matches_cpu(simclr_checkpoints, vit_checkpoint, image_folder, tmp_path):
    for model, ckpt in (("simclr-resnet18", simclr_checkpoints["encoder_projector"]), ("ViT-B-32", vit_checkpoint)):
        cpu = extract(model=model, checkpoint=ckpt, data=image_folder, out=tmp_path / f"{model}-cpu.npy",
                      device="cpu", batch_size=4, workers=0)
        gpu = extract(model=model, checkpoint=ckpt, data=image_folder, out=tmp_path / f"{model}-gpu.npy",
                      device="cuda", batch_size=4, workers=2)
        assert gpu.plan.device.startswith("cuda") and gpu.plan.precision in ("bf16", "fp16")
        a, b = np.load(cpu.out), np.load(gpu.out)
        assert a.shape == b.shape and b.dtype == np.float32
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() > 0.99, f"{model}: GPU {gpu.plan.precision} embeddings differ from CPU fp32: {cosine}"
        fp32 = extract(model=model, checkpoint=ckpt, data=image_folder, out=tmp_path / f"{model}-gpu32.npy",
                       device="cuda", precision="fp32", batch_size=4, workers=0)
        np.testing.assert_allclose(np.load(fp32.out), a, rtol=1e-2, atol=1e-3)


def test_all_inputs_unreadable_writes_nothing_and_leaves_nothing(simclr_checkpoints, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for seed, name in enumerate(("a.png", "b.jpg", "c.webp")):
        (folder / name).write_bytes(np.random.default_rng(seed).bytes(500))
    out = tmp_path / "emb.parquet"
    with pytest.raises(GaussAuditError, match=r"none of the 3 inputs could be read.*a\.png: not an image"):
        extract(model="simclr-resnet18", checkpoint=simclr_checkpoints["other"], data=folder, out=out,
                workers=0, shard_size=2)
    assert not out.exists() and not ExtractStore(out).parts.exists()
    # A parts folder holding no finished shard (a run that failed early) is no work to lose: reused.
    ExtractStore(out).parts.mkdir()
    (folder / "d.png").write_bytes(b"")
    from extract_fixtures import _random_image

    _random_image(np.random.default_rng(0), (40, 40)).save(folder / "d.png")
    result = extract(model="simclr-resnet18", checkpoint=simclr_checkpoints["other"], data=folder, out=out, workers=0)
    assert result.rows == 1 and len(result.skipped) == 3


class _RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_that_would_run_code_are_refused_and_never_run(tmp_path):
    """torch.save'd and raw-pickled files whose loading runs code: refused with a
    message that says so and never advises weights_only=False; the code does not run."""
    import pickle

    import torch

    marker = tmp_path / "code-ran"
    saved = tmp_path / "saved.pt"
    torch.save({"state_dict": resnet18_state(0), "hook": _RunsCode(marker)}, saved)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"w": _RunsCode(marker)}, protocol=4))
    for path in (saved, raw):
        with pytest.raises(GaussAuditError) as info:
            load_model("simclr-resnet18", checkpoint=path)
        message = str(info.value)
        assert "was not loaded" in message and "could run code" in message, message
        assert not message.rstrip().endswith("weights_only=False") and "will likely succeed" not in message
        assert "system" in message, message  # the callable that would have run is named
    assert not marker.exists()


def test_a_protocol_4_pickle_of_plain_data_is_not_called_code(tmp_path):
    """torch's safe unpickler stops at protocol 4's FRAME opcode whatever the pickle
    holds; one naming only callables torch allows (OrderedDict) is not said to run code."""
    import collections
    import pickle

    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps(collections.OrderedDict(w=[1.0, 2.0]), protocol=4))
    with pytest.raises(GaussAuditError, match="is not a readable checkpoint") as info:
        load_model("simclr-resnet18", checkpoint=plain)
    assert "could run code" not in str(info.value)


def test_a_fifo_is_not_a_checkpoint(tmp_path):
    import os

    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    with pytest.raises(GaussAuditError, match="not a regular file"):
        load_model("simclr-resnet18", checkpoint=fifo)


def test_a_deeper_resnet_is_not_accepted_as_resnet18(tmp_path):
    """A ResNet-34 checkpoint holds every ResNet-18 key plus more blocks: it is
    refused as simclr-resnet18 (it once loaded, 98 tensors silently ignored),
    unless --allow-partial, which says what it ignored."""
    import torch
    import torchvision

    torch.manual_seed(0)
    state = {f"backbone.{k}": v for k, v in torchvision.models.resnet34().state_dict().items()}
    path = tmp_path / "resnet34.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(GaussAuditError) as info:
        load_model("simclr-resnet18", checkpoint=path)
    message = str(info.value)
    assert "have no place in simclr-resnet18" in message and "3/4/6/3 blocks" in message
    assert "allow_partial=True" in message
    loaded = load_model("simclr-resnet18", checkpoint=path, allow_partial=True)
    assert any(line.startswith("allow_partial=True: ignored") for line in loaded.report), loaded.report


@pytest.mark.parametrize("architecture,dim,classifier", [("resnet34", 512, "fc"), ("densenet121", 1024, "classifier")])
def test_supervised_baselines_embed_the_penultimate_layer(architecture, dim, classifier, image_folder, tmp_path):
    """The paper's supervised baselines: a torchvision classifier's checkpoint
    (random init here, saved as a user would save a trained one, with a
    10-class head), embedded at the penultimate layer exactly as the
    hand-written torchvision code gives."""
    import torchvision
    from PIL import Image
    from torchvision import transforms

    torch.manual_seed(5)
    model = getattr(torchvision.models, architecture)(weights=None, num_classes=10)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 90},
               tmp_path / "sup.ckpt")
    result = extract(model=architecture, checkpoint=tmp_path / "sup.ckpt", data=image_folder,
                     out=tmp_path / "sup.parquet", batch_size=3, workers=0)
    paths, emb = read_parquet(result.out)
    assert emb.shape == (len(paths), dim)
    report = result.plan.model.report
    assert any("penultimate layer" in line for line in report)
    assert any(f"{classifier}.weight" in line for line in report)  # the classifier, named as not used
    setattr(model, classifier, torch.nn.Identity())
    model.eval()
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.inference_mode():
        reference = model(torch.stack([tf(Image.open(image_folder / p).convert("RGB")) for p in paths])).numpy()
    np.testing.assert_allclose(emb, reference, rtol=1e-4, atol=1e-4)


def test_supervised_baselines_refuse_what_they_cannot_do(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pt")
    with pytest.raises(GaussAuditError, match=r"resnet18 needs weights: pass checkpoint='PATH' \(a torchvision state"):
        load_model("resnet18")
    with pytest.raises(GaussAuditError, match=r"head=True embeds through a SimCLR projection head; resnet18 is a "
                                              r"supervised classifier"):
        load_model("resnet18", checkpoint=tmp_path / "r34.pt", head=True)
    with pytest.raises(GaussAuditError, match=r"96 backbone tensors have no place in resnet18.*3/4/6/3 blocks"):
        load_model("resnet18", checkpoint=tmp_path / "r34.pt")
    with pytest.raises(GaussAuditError, match=r"none of its .* is a torchvision densenet121 backbone weight"):
        load_model("densenet121", checkpoint=tmp_path / "r34.pt")


def test_dino_vit_embeds_the_teachers_class_token(image_folder, tmp_path):
    """A DINO training checkpoint (student and teacher, DINO heads beside the
    backbones): the teacher's class token, as DINO's evaluation computes it
    with timm's ViT and its preprocessing (Resize 256 bicubic, CenterCrop 224)."""
    import timm
    from PIL import Image
    from torchvision import transforms

    torch.manual_seed(11)
    student = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    teacher = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).eval()
    checkpoint = {
        "student": {**{f"module.backbone.{k}": v for k, v in student.state_dict().items()},
                    "module.head.last_layer.weight_g": torch.ones(1, 1)},
        "teacher": {**{f"backbone.{k}": v for k, v in teacher.state_dict().items()},
                    "head.mlp.0.weight": torch.zeros(8, 384), "head.last_layer.weight_g": torch.ones(1, 1)},
        "epoch": 100,
    }
    torch.save(checkpoint, tmp_path / "dino.pth")
    result = extract(model="dino-vits16", checkpoint=tmp_path / "dino.pth", data=image_folder,
                     out=tmp_path / "dino.parquet", batch_size=4, workers=0)
    paths, emb = read_parquet(result.out)
    report = result.plan.model.report
    assert "loaded from checkpoint['teacher'], key prefix 'backbone.' stripped" in report[0]
    tf = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
                             transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.inference_mode():
        reference = teacher(torch.stack([tf(Image.open(image_folder / p).convert("RGB")) for p in paths])).numpy()
    assert emb.shape == (len(paths), 384)
    np.testing.assert_allclose(emb, reference, rtol=1e-4, atol=1e-4)
    # the released backbone weights: a bare state dict
    torch.save(teacher.state_dict(), tmp_path / "dino_deitsmall16_pretrain.pth")
    assert "from the file itself" in load_model("dino-vits16", checkpoint=tmp_path / "dino_deitsmall16_pretrain.pth").report[0]
    with pytest.raises(GaussAuditError, match=r"weights do not fit dino-vits8 .*another patch size"):
        load_model("dino-vits8", checkpoint=tmp_path / "dino_deitsmall16_pretrain.pth")
    with pytest.raises(GaussAuditError, match=r"dino-vits16 needs weights: pass checkpoint='PATH' \(a DINO checkpoint\)"):
        load_model("dino-vits16")
