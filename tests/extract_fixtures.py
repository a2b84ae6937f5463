"""Fixtures for the extract tests (a pytest plugin, so session-scoped ones are
built once): small generated images, including unreadable ones; a random-init
open_clip ViT-B-32 saved locally; random-init ResNet-18s saved in the layouts
SimCLR checkpoints come in. Nothing is downloaded."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaussaudit.io.sources import natural_key

#: Readable images of the folder, in the order find_images must give them
#: (natural order: img2 before img10; sub/ after the top-level files).
READABLE_IMAGES = [
    "img2.png", "img10.jpg", "photo.JPEG", "pic.webp", "sub/deep/g.gif", "sub/a.bmp", "sub/b.tiff", "sub/c.png",
]
#: Unreadable files with image suffixes: skipped, counted and listed.
UNREADABLE_IMAGES = ["corrupt.png", "fake.jpg", "truncated.jpg"]
ALL_IMAGES = sorted(READABLE_IMAGES + UNREADABLE_IMAGES, key=lambda p: (natural_key(p), p))
CAPTIONS = ["a photo of a cat", "a dog on the beach", "", "the sea at night", "  ", "a red car"]


def _random_image(rng, size):
    from PIL import Image

    h, w = size
    # Smooth gradients plus noise: different images give clearly different embeddings.
    base = np.linspace(0, 255, w)[None, :, None] * rng.uniform(0.2, 1.0, size=3)
    pixels = np.clip(base + rng.normal(0, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def make_image_folder(root: Path, seed: int = 0) -> Path:
    """The READABLE_IMAGES (assorted formats and sizes, nested folders), the
    UNREADABLE_IMAGES (random bytes, text named .jpg, a truncated JPEG), a
    text file and hidden files that must not be picked up."""
    rng = np.random.default_rng(seed)
    for i, rel in enumerate(READABLE_IMAGES):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image = _random_image(rng, (60 + 7 * i, 80 - 3 * i))
        if rel.endswith(".gif"):
            image = image.convert("P")
        image.save(path, format={"jpg": "JPEG", "jpeg": "JPEG", "tiff": "TIFF"}.get(path.suffix[1:].lower()))
    (root / "corrupt.png").write_bytes(rng.bytes(3000))
    (root / "fake.jpg").write_text("this is not a picture\n")
    full = root / "full.jpg"
    _random_image(rng, (64, 64)).save(full, format="JPEG")
    data = full.read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    full.unlink()
    (root / "notes.txt").write_text("not an image, not an image suffix\n")
    (root / ".hidden.png").write_bytes(rng.bytes(100))
    (root / ".cache").mkdir()
    _random_image(rng, (32, 32)).save(root / ".cache" / "thumb.png")
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def many_images(tmp_path_factory) -> Path:
    """24 readable images: enough rows for ``--scan`` (which needs 20)."""
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(1)
    for i in range(24):
        _random_image(rng, (48, 48)).save(root / f"im{i:02d}.png")
    return root


@pytest.fixture(scope="session")
def captions_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "captions.txt"
    path.write_text("\n".join(CAPTIONS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def vit_checkpoint(tmp_path_factory) -> Path:
    """A random-init open_clip ViT-B-32 saved as a state dict, once per session.

    Saved in float16 (300 MB instead of 600: released CLIP weights often are);
    loading casts it into the float32 model, for gaussaudit and the reference alike.
    """
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = tmp_path_factory.mktemp("vit") / "vit_b32_random.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    return path


def resnet18_state(seed: int) -> dict:
    """State dict of a random-init torchvision resnet18, classifier included."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None)
    # Random running statistics too, so BatchNorm buffers must really be loaded.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.state_dict()


def projection_head_state(prefix: str, seed: int, batchnorm: bool = False) -> dict:
    """A SimCLR MLP head: Linear(512, 512) · ReLU · Linear(512, 128) — with
    BatchNorm1d after the first Linear when ``batchnorm`` (solo-learn / lightly)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    state = {f"{prefix}0.weight": torch.randn(512, 512, generator=g) * 0.05,
             f"{prefix}0.bias": torch.randn(512, generator=g) * 0.05}
    last = 2
    if batchnorm:
        state.update({
            f"{prefix}1.weight": torch.rand(512, generator=g) + 0.5, f"{prefix}1.bias": torch.randn(512, generator=g) * 0.1,
            f"{prefix}1.running_mean": torch.randn(512, generator=g) * 0.1,
            f"{prefix}1.running_var": torch.rand(512, generator=g) + 0.5,
            f"{prefix}1.num_batches_tracked": torch.tensor(7),
        })
        last = 3
    state[f"{prefix}{last}.weight"] = torch.randn(128, 512, generator=g) * 0.05
    return state


def backbone_only(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def simclr_layouts(state: dict) -> dict[str, object]:
    """The same backbone wrapped the ways SimCLR checkpoints come: name → object to torch.save."""
    bare = backbone_only(state)
    no_counters = {k: v for k, v in bare.items() if not k.endswith("num_batches_tracked")}
    return {
        # torchvision-style, classifier included (ignored)
        "bare_with_classifier": dict(state),
        # DataParallel training script: {'state_dict': {'module.…'}, 'epoch', 'optimizer'…}
        "state_dict_module": {"state_dict": {f"module.{k}": v for k, v in bare.items()}, "epoch": 100,
                              "arch": "resnet18"},
        # sthalles/SimCLR: the head replaces fc inside the backbone
        "backbone_fc_head": {"state_dict": {**{f"backbone.{k}": v for k, v in bare.items()},
                                            **projection_head_state("backbone.fc.", 3)}},
        # Spijkervet/SimCLR: encoder + projector, saved bare
        "encoder_projector": {**{f"encoder.{k}": v for k, v in bare.items()}, **projection_head_state("projector.", 3)},
        # Lightning: {'state_dict': {'model.…'}} with hyper-parameters beside it
        "lightning_model": {"state_dict": {f"model.{k}": v for k, v in no_counters.items()},
                            "hyper_parameters": {"lr": 0.3}, "global_step": 1000},
        # {'model': {'convnet.…'}}, BatchNorm head, counters missing (older torch)
        "model_convnet_bnhead": {"model": {**{f"convnet.{k}": v for k, v in no_counters.items()},
                                           **projection_head_state("head.", 3, batchnorm=True)}},
        # MoCo-style: a momentum copy beside the main encoder
        "module_encoder_q_k": {"state_dict": {**{f"module.encoder_q.{k}": v for k, v in bare.items()},
                                              **{f"module.encoder_k.{k}": v * 0 for k, v in bare.items()}}},
    }


@pytest.fixture(scope="session")
def resnet_states():
    """Two different random-init resnet18 state dicts."""
    return resnet18_state(1), resnet18_state(2)


@pytest.fixture(scope="session")
def simclr_checkpoints(tmp_path_factory, resnet_states) -> dict[str, Path]:
    """Checkpoint files of the first resnet18 in every layout, plus ``other``: the
    second resnet18 (in the 'encoder_projector' layout) for "different weights,
    different embeddings"."""
    import torch

    root = tmp_path_factory.mktemp("simclr")
    paths = {}
    for name, obj in simclr_layouts(resnet_states[0]).items():
        paths[name] = root / f"{name}.ckpt"
        torch.save(obj, paths[name])
    paths["other"] = root / "other.ckpt"
    torch.save(simclr_layouts(resnet_states[1])["encoder_projector"], paths["other"])
    return paths


def run_cli_env(*args, cwd=None, env: dict | None = None, timeout: int = 180) -> tuple[int, str, str]:
    """``python -m gaussaudit ARGS`` with extra environment variables."""
    proc = subprocess.run(
        [sys.executable, "-m", "gaussaudit", *map(str, args)],
        cwd=None if cwd is None else str(cwd), capture_output=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
