"""Throughput of ``gaussaudit extract`` for open_clip ViT-B-32 on synthetic images.

Run by hand (not a test):

    python benchmarks/extract_bench.py                 # GPU if there is one, else CPU
    python benchmarks/extract_bench.py --device cpu --n 512

Defaults follow the README's numbers: batch 256; bf16 autocast on a GPU, fp32 on
the CPU. The weights are a random-init ViT-B-32 saved to a temporary checkpoint
(throughput does not depend on the values, and nothing is downloaded). The
images are synthetic JPEGs of 384×288 (about ImageNet's average size), so
decoding and resizing cost what they cost on real photos.

Three numbers are printed, and the ratio of the first to the third:

- end to end: the images/s ``extract`` reports — decoding in DataLoader
  workers, preprocessing, the model, writing shards — timed from the first batch
  to the last shard on disk (model loading and file assembly excluded);
- model only: forward passes on preprocessed tensors already on the device,
  after a warm-up batch, so a gap between the two shows the input pipeline is
  the bottleneck (add --workers);
- the bare loop a user would write instead: PIL open, the open_clip preprocess,
  ``torch.stack``, ``encode_image`` per batch in one process, ``np.save`` at the
  end (same model, batch, precision and preprocessing), timed end to end.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import numpy as np


def make_images(folder: str, n: int, size: tuple[int, int], seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    # A few base pictures with per-image noise: realistic JPEG sizes, quick to make.
    bases = [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(8)]
    for i in range(n):
        noise = rng.integers(-12, 13, size=(height, width, 3))
        pixels = np.clip(bases[i % 8].astype(np.int16) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"img_{i:06d}.jpg"), quality=90)


def model_only(model, device, precision: str, batch_size: int, repeats: int) -> float:
    """Images/s of the image tower alone on random preprocessed tensors."""
    import torch

    from gaussaudit.extract.runner import AUTOCAST_DTYPES

    model = model.to(device).eval()
    x = torch.randn(batch_size, 3, 224, 224, device=device)
    autocast = torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision]) if precision in AUTOCAST_DTYPES else None
    with torch.inference_mode():
        def run():
            if autocast is None:
                return model.encode_image(x)
            with autocast:
                return model.encode_image(x)

        run()  # warm-up: kernel selection, allocator
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(repeats):
            run()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return repeats * batch_size / (time.perf_counter() - started)


def bare_loop(model, preprocess, files: list[str], device, precision: str, batch_size: int, out: str) -> float:
    """Images/s of the plain open_clip loop, decoding included, to the saved array."""
    import torch
    from PIL import Image

    from gaussaudit.extract.runner import AUTOCAST_DTYPES

    model = model.to(device).eval()
    autocast = torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision]) if precision in AUTOCAST_DTYPES else None
    started = time.perf_counter()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(files), batch_size):
            batch = torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files[start : start + batch_size]])
            batch = batch.to(device)
            if autocast is None:
                features = model.encode_image(batch)
            else:
                with autocast:
                    features = model.encode_image(batch)
            parts.append(features.float().cpu().numpy())
    np.save(out, np.concatenate(parts))
    return len(files) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--n", type=int, default=None, help="images (default 8192 on GPU, 512 on CPU)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: extract's)")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()

    import open_clip
    import torch

    from gaussaudit.extract import extract
    from gaussaudit.extract.runner import resolve_device, resolve_precision

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    n = args.n or (8192 if device.type == "cuda" else 512)
    size = (384, 288)
    with tempfile.TemporaryDirectory() as tmp:
        images = os.path.join(tmp, "images")
        os.mkdir(images)
        started = time.perf_counter()
        make_images(images, n, size)
        made = time.perf_counter() - started
        torch.manual_seed(0)
        logging.disable(logging.WARNING)  # open_clip warns that the init is random: that is the point here
        model = open_clip.create_model("ViT-B-32", pretrained=None)
        logging.disable(logging.NOTSET)
        checkpoint = os.path.join(tmp, "vit_b32.pt")
        torch.save(model.state_dict(), checkpoint)

        result = extract(model="ViT-B-32", checkpoint=checkpoint, data=images, out=os.path.join(tmp, "emb.npy"),
                         device=args.device, precision=args.precision, batch_size=args.batch_size,
                         workers=args.workers)
        plan = result.plan
        forward = model_only(model, device, precision, args.batch_size, repeats=max(2, min(8, n // args.batch_size)))
        preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
        files = sorted(os.path.join(images, f) for f in os.listdir(images))
        bare = bare_loop(model, preprocess, files, device, plan.precision, plan.batch_size, os.path.join(tmp, "bare.npy"))
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
        workers = f"{plan.workers} worker{'s' if plan.workers != 1 else ''}"
        print(f"ViT-B-32 · {name} · {plan.precision} · batch {plan.batch_size} · {workers} · "
              f"{n:,} synthetic {size[0]}×{size[1]} JPEGs (made in {made:.0f} s)")
        print(f"end to end (decode + preprocess + model + write): {result.items_per_second:8.1f} images/s")
        print(f"model only (preprocessed tensors on the device):  {forward:8.1f} images/s")
        print(f"bare open_clip loop (PIL + preprocess + model):   {bare:8.1f} images/s")
        print(f"extract / bare loop: {result.items_per_second / bare:.2f}x")
        print(f"torch {torch.__version__}, open_clip {open_clip.__version__}")


if __name__ == "__main__":
    main()
