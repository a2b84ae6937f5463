"""The batched runner: inputs → DataLoader → model on the device → shards.

Speed on a GPU comes from keeping it busy: DataLoader worker processes decode
and preprocess images in parallel, batches land in pinned memory so the copy to
the GPU is asynchronous, the forward pass runs under autocast (bf16/fp16), and
outputs stay on the GPU until a shard is complete, so the loop never waits for
the device between batches. Batches never straddle a shard, so every shard is
written (atomically) the moment its last batch is done.
"""
from __future__ import annotations

import bisect
import contextlib
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.extract.api import PRECISIONS
from gaussaudit.extract.inputs import Batch

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(requested: str) -> torch.device:
    """:func:`gaussaudit.stats.gpu.resolve_device` as a ``torch.device``."""
    from gaussaudit.stats.gpu import resolve_device as resolve

    return torch.device(resolve(requested))


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto`` → bf16 on GPUs that support it (else fp16), fp32 on the CPU."""
    if requested not in PRECISIONS:
        raise GaussAuditError(f"{option_name('precision')} must be one of {', '.join(PRECISIONS)}; got '{requested}'.")
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return "bf16" if bf16_ok else "fp16"
        if requested == "bf16" and not bf16_ok:
            raise GaussAuditError(f"{option_set('precision', 'bf16')}: this GPU does not support bfloat16; use fp16 or fp32.")
        return requested
    if requested == "auto":
        return "fp32"
    if requested == "fp16":
        raise GaussAuditError(f"{option_set('precision', 'fp16')} needs a GPU; on the CPU use fp32 (the default) or bf16.")
    return requested


def default_batch_size(device: torch.device) -> int:
    return 256 if device.type == "cuda" else 32


def default_workers(device: torch.device) -> int:
    """Image-decoding processes: enough to feed a GPU; few on the CPU.

    On the CPU the model's threads already use every core, and worker processes
    compete with them: ViT-B-32 on 2 cores ran at 22 images/s decoding in the
    main process and at 13 with one worker. Workers only pay where there are
    cores to spare.
    """
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        return min(8, cores)
    return max(0, min(4, (cores - 4) // 4))


def shard_ranges(n_items: int, shard_size: int) -> list[range]:
    """Consecutive blocks of ``shard_size`` input positions (the last may be shorter)."""
    return [range(start, min(start + shard_size, n_items)) for start in range(0, n_items, shard_size)]


def batches_within(shards: list[range], batch_size: int, length=None) -> list[list[int]]:
    """Batches of positions that never cross a shard boundary; with ``length``
    (position → size, e.g. a text's characters), each shard's inputs are
    batched longest first, so a batch pads to about its own length (rows are
    written back in input order)."""
    ordered = [sorted(shard, key=lambda p: -length(p)) if length else list(shard) for shard in shards]
    return [shard[i : i + batch_size] for shard in ordered for i in range(0, len(shard), batch_size)]


@dataclass
class _OpenShard:
    index: int
    size: int
    seen: int = 0

    def __post_init__(self) -> None:
        self.outputs: list[torch.Tensor] = []
        self.positions: list[int] = []
        self.failed: list[tuple[int, str]] = []


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def encode_shards(
    loaded,
    dataset,
    collate,
    shards: list[tuple[int, range]],
    *,
    shard_size: int,
    keys: list[str],
    store,
    device: torch.device,
    precision: str,
    batch_size: int,
    workers: int,
    strict: bool = False,
    progress=None,
    length=None,
) -> tuple[int, float]:
    """Encode the inputs of ``shards`` (``(index, positions)`` pairs, shard ``i``
    holding consecutive positions: ``i*shard_size …`` for a folder, one tar's
    samples for webdataset input) and write each shard as it completes.

    Returns ``(items processed, seconds)`` — seconds from the first batch
    requested to the last shard written, so data loading counts.

    Raises
    ------
    GaussAuditError
        Out of memory (with a smaller batch size to try), or, with ``strict``,
        the first input that cannot be read. Shards already written stay, for
        ``--resume``.
    """
    if not shards:
        return 0, 0.0
    # A shard without inputs (a tar with no images) is finished as it stands.
    for index, positions in shards:
        if not len(positions):
            store.write_shard(index, [], np.empty((0, 1), dtype=np.float32), [])
            if progress is not None:
                progress.shard_written(index)
    shards = [(index, positions) for index, positions in shards if len(positions)]
    if not shards:
        return 0, 0.0
    # Shards are consecutive blocks of positions, of any sizes (one a tar for
    # webdataset input): a batch's shard is the last one starting at or before it.
    starts = [positions.start for _, positions in shards]
    indices = [index for index, _ in shards]
    try:
        module = loaded.module.to(device)
    except Exception as exc:
        if _is_out_of_memory(exc):
            raise GaussAuditError(
                f"{loaded.name} does not fit in the memory of {device}; use a larger GPU, or {option_set('device', 'cpu')}."
            ) from None
        raise
    # Convolutions in NHWC layout are much faster with cuDNN (tensor cores) and
    # with oneDNN on the CPU (7x for a ResNet-18 on a 2-core AVX-512 machine).
    channels_last = loaded.channels_last
    if channels_last:
        module.to(memory_format=torch.channels_last)
    autocast = (
        torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])
        if precision in AUTOCAST_DTYPES else contextlib.nullcontext()
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches_within([positions for _, positions in shards], batch_size, length),
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    open_shards = {index: _OpenShard(index, len(positions)) for index, positions in shards}
    processed = 0
    started = time.perf_counter()
    # Inputs all have one size: let cuDNN time its kernels once and keep the
    # fastest. A process-wide flag, so it is put back afterwards.
    benchmark_before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda" or benchmark_before
    try:
        with torch.inference_mode():
            for batch in loader:
                batch: Batch
                current = open_shards[indices[bisect.bisect_right(starts, batch.positions[0]) - 1]]
                if batch.failed and strict:
                    position, reason = batch.failed[0]
                    raise GaussAuditError(
                        f"{keys[position]}: cannot be read ({reason}). {option_set('strict')} stops at the first unreadable "
                        "input; without it such files are skipped, counted and listed."
                    )
                if batch.inputs is not None:
                    inputs = batch.inputs.to(
                        device, non_blocking=True,
                        **({"memory_format": torch.channels_last} if channels_last else {}),
                    )
                    with autocast:
                        current.outputs.append(loaded.encode(inputs))
                    current.positions.extend(batch.encoded_positions)
                current.failed.extend(batch.failed)
                current.seen += len(batch.positions)
                processed += len(batch.positions)
                if current.seen == current.size:
                    _write(current, keys, store)
                    del open_shards[current.index]
                    if progress is not None:
                        progress.advance(len(batch.positions))
                        progress.shard_written(current.index)
                elif progress is not None:
                    progress.advance(len(batch.positions))
    except Exception as exc:
        if _is_out_of_memory(exc):
            where = "GPU" if device.type == "cuda" else "machine"
            smaller = max(1, batch_size // 2)
            raise GaussAuditError(
                f"the {where} ran out of memory at {option_set('batch_size', batch_size)}; try "
                f"{option_set('batch_size', smaller)}. "
                f"Finished shards are kept: add {option_set('resume')} to continue."
            ) from None
        raise
    finally:
        torch.backends.cudnn.benchmark = benchmark_before
    return processed, time.perf_counter() - started


def _write(shard: _OpenShard, keys: list[str], store) -> None:
    # .cpu() waits for the GPU: once per shard, not once per batch.
    order = np.argsort(shard.positions, kind="stable")  # input order, however the batches ran
    if shard.outputs:
        embeddings = torch.cat(shard.outputs).float().cpu().numpy()[order]
    else:
        embeddings = np.empty((0, 1), dtype=np.float32)
    store.write_shard(
        shard.index,
        [keys[shard.positions[i]] for i in order],
        embeddings,
        [(keys[p], reason) for p, reason in shard.failed],
    )
