"""``extract(config) -> ExtractResult``: embeddings of a folder of images (or of
captions) from a CLIP or SimCLR model, written as the file ``scan`` reads.

This module imports no torch at load time: ``gaussaudit scan`` must stay fast
and must work without the extract extra.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from gaussaudit.config import check_choice, check_int_option, configured
from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.extract._deps import require_extract_packages
from gaussaudit.extract.inputs import (
    Collate,
    ImageFolderDataset,
    TextDataset,
    find_images,
    images_fingerprint,
    texts_fingerprint,
)
from gaussaudit.extract.models import check_model_name, check_model_request, load_model, needs_open_clip
from gaussaudit.extract.webdataset import WebDatasetImages, index_shards, is_webdataset_spec
from gaussaudit.io.extract_store import ExtractStore, read_texts

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: Output layouts: one file (.parquet or .npy), or clip-retrieval's folder
#: (img_emb/img_emb_0.npy or text_emb/text_emb_0.npy, metadata/metadata_0.parquet).
LAYOUTS = ("file", "clip-retrieval")

#: Inputs per shard: a killed run loses at most this many, and --resume skips
#: every finished shard. ~40 s of a GPU's work at 256 images/s, a few minutes on a CPU.
DEFAULT_SHARD_SIZE = 10_000


def default_output(data: str | None, texts: str | None, layout: str = "file") -> Path:
    """Where ``extract`` writes without ``--out``: beside its input, named after it
    (a folder ``….embeddings`` for the clip-retrieval layout).

    Examples
    --------
    >>> str(default_output("photos/", None)), str(default_output(None, "data/captions.txt"))
    ('photos.embeddings.parquet', 'data/captions.embeddings.parquet')
    >>> str(default_output("shards/{000..009}.tar", None)), str(default_output("x/one.tar", None, "clip-retrieval"))
    ('shards.embeddings.parquet', 'x/one.embeddings')
    """
    if layout == "clip-retrieval":
        return default_output(data, texts).with_suffix("")
    if data is not None and not Path(data).is_dir():
        from gaussaudit.extract.webdataset import is_webdataset_spec

        if is_webdataset_spec(data):
            if str(data).lower().endswith(".tar") and "{" not in str(data) and not (set("*?[") & set(str(data))):
                single = Path(data)
                return single.with_name(f"{single.stem}.embeddings.parquet")
            data = str(Path(data).parent)  # shards/{…}.tar, shards/*.tar: named after their folder
    if data is not None:
        folder = Path(data)
        if folder.name in ("", ".", ".."):  # "." or "..": name it after the folder it means
            folder = folder.resolve()
        return folder.parent / f"{folder.name}.embeddings.parquet"
    source = Path(texts)
    return source.with_name(f"{source.stem}.embeddings.parquet")


@dataclass(frozen=True)
class ExtractConfig:
    """Options of an extraction; the CLI's flags map one to one onto these fields.

    Parameters
    ----------
    model : str
        An open_clip architecture (``open_clip.list_models()``),
        ``simclr-resnet18`` / ``simclr-resnet50``, a supervised torchvision
        classifier (``resnet18``/``34``/``50``, ``densenet121``: its penultimate
        layer), a DINO ViT (``dino-vits16``/``vits8``/``vitb16``/``vitb8``), or a
        local text encoder for ``texts`` (``st:FOLDER``, ``hf:FOLDER``).
    out : path, optional
        ``.parquet`` (``path``/``text`` and ``embedding`` columns) or ``.npy``
        (with a JSON sidecar ``OUT.json`` listing the paths). Default
        (:func:`default_output`): ``DIR.embeddings.parquet`` beside the image
        folder, ``FILE.embeddings.parquet`` beside the captions file.
    data : path, optional
        Folder of images, read recursively in sorted order; or webdataset tar
        shards (``shards/{00000..00009}.tar``, a glob, one ``.tar``, or a
        folder of ``.tar`` files), each tar a shard of the run.
    texts : path, optional
        Texts to embed instead of images (CLIP's text tower, or a text
        encoder): a ``.txt`` file (one a line), ``.jsonl`` (a field of each
        record) or ``.parquet`` (a column).
    text_column : str, optional
        The ``.jsonl`` field or parquet column of the texts (default: text,
        sentence, caption or content, else the only text field).
    pretrained : str, optional
        open_clip pretrained tag.
    checkpoint : path, optional
        Local checkpoint file.
    head : bool
        SimCLR: embed through the projection head.
    device : {"auto", "cpu", "cuda", "cuda:N"}
    precision : {"auto", "fp32", "fp16", "bf16"}
        ``auto``: bf16 autocast on GPUs (fp16 where bf16 is unsupported), fp32 on CPU.
    batch_size : int, optional
        Default 256 on a GPU, 32 on the CPU.
    workers : int, optional
        Image-decoding processes (default: up to 8 with a GPU; on the CPU none
        below 8 cores, as they would compete with the model's threads).
    limit : int, optional
        Embed only the first N inputs (in sorted order).
    shard_size : int
        Inputs per shard (the unit of work that ``resume`` never redoes).
    resume : bool
        Continue an interrupted run from the shards it finished.
    overwrite : bool
        Replace an existing OUT.
    strict : bool
        Fail at the first unreadable image instead of skipping it.
    allow_partial : bool
        Accept a checkpoint whose backbone has weights the model has no place
        for (a deeper network's); by default an error.
    layout : {"file", "clip-retrieval"}
        ``file``: OUT is one .parquet or .npy file. ``clip-retrieval``: OUT is a
        folder laid out as clip-retrieval writes it (float16 rows, L2-normalised).
    """

    model: str | None = None
    out: str | None = None
    data: str | None = None
    texts: str | None = None
    text_column: str | None = None
    pretrained: str | None = None
    checkpoint: str | None = None
    head: bool = False
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None
    workers: int | None = None
    limit: int | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    resume: bool = False
    overwrite: bool = False
    strict: bool = False
    allow_partial: bool = False
    layout: str = "file"

    def validated(self) -> "ExtractConfig":
        if not self.model:
            raise GaussAuditError(f"{option_name('model')} is required (an open_clip architecture, simclr-resnet18/50, "
                                  "resnet18/34/50, densenet121, dino-vits16/…, or st:FOLDER / hf:FOLDER for texts).")
        if (self.data is None) == (self.texts is None):
            raise GaussAuditError(
                f"give {option_set('data', 'DIR')} (a folder of images) or {option_set('texts', 'FILE')} "
                "(.txt, .jsonl or .parquet texts)" + (", not both." if self.data is not None else ".")
            )
        if self.text_column is not None and self.texts is None:
            raise GaussAuditError(f"{option_name('text_column')} picks the field of {option_name('texts')}; "
                                  "no texts were given.")
        check_choice("layout", self.layout, LAYOUTS)
        if not self.out:
            return replace(self, out=str(default_output(self.data, self.texts, self.layout))).validated()
        device = self.device.strip().lower()
        if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
            raise GaussAuditError(f"{option_name('device')} must be auto, cpu, cuda or cuda:N; got '{self.device}'.")
        check_choice("precision", self.precision, PRECISIONS)
        for name, value, minimum in (("batch_size", self.batch_size, 1), ("workers", self.workers, 0),
                                     ("limit", self.limit, 1), ("shard_size", self.shard_size, 1)):
            if value is not None:
                check_int_option(name, value, minimum=minimum)
        return self

    @property
    def modality(self) -> str:
        return "text" if self.texts is not None else "image"


@dataclass
class ExtractPlan:
    """What a run is about to do; handed to ``ExtractProgress.start``."""

    model: object  # LoadedModel
    device: str
    precision: str
    batch_size: int
    workers: int
    unit: str  # "images" or "texts"
    n_items: int
    n_shards: int
    shards_done: int
    items_done: int
    out: Path


@dataclass
class ExtractResult:
    """What a run did.

    ``encoded`` and ``items_per_second`` count this run only: on ``resume``,
    inputs of shards finished earlier are neither encoded nor counted.
    """

    plan: ExtractPlan
    out: Path
    sidecar: Path | None
    rows: int
    dim: int
    skipped: list[tuple[str, str]]
    encoded: int
    seconds: float
    metadata: dict = field(default_factory=dict)
    #: Things the user should know about the run (a stale lock taken over…).
    notes: list[str] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else float("nan")


class ExtractProgress:
    """Hooks the runner calls as it goes; this base class does nothing.

    The CLI draws a progress bar with them; tests use ``shard_written`` to
    interrupt a run at a known point.
    """

    def start(self, plan: ExtractPlan) -> None:
        """Called once the model is loaded and the finished shards are known."""

    def advance(self, n: int) -> None:
        """``n`` more inputs were processed (encoded or skipped)."""

    def shard_written(self, index: int) -> None:
        """Shard ``index`` is safely on disk."""

    def finish(self) -> None:
        """Every shard is done (called before OUT is assembled)."""


def extract(config: ExtractConfig | None = None, *, progress: ExtractProgress | None = None, **options) -> ExtractResult:
    """Embed a folder of images (or captions) with a CLIP or SimCLR model.

    Parameters
    ----------
    config : ExtractConfig, optional
        Options; keyword arguments override its fields
        (``extract(model="ViT-B-32", data="imgs", out="emb.parquet", checkpoint="vit.pt")``).
    progress : ExtractProgress, optional
        Hooks called as the run goes.

    Returns
    -------
    ExtractResult

    Raises
    ------
    GaussAuditError
        Bad options, missing extra, unknown model, unreadable or unfit weights,
        no inputs, CUDA asked for but absent, out of memory — with a message a
        user can act on.
    """
    config = configured(config, ExtractConfig, options, "extract")
    require_extract_packages(open_clip=needs_open_clip(config.model))

    # Checks that need no torch come first: a typo fails in a blink, not after
    # seconds of importing torch and open_clip.
    check_model_request(config.model, pretrained=config.pretrained, checkpoint=config.checkpoint,
                        head=config.head, modality=config.modality)
    key_column = "text" if config.modality == "text" else "path"
    store = ExtractStore(config.out, key_column=key_column, overwrite=config.overwrite, layout=config.layout)
    with store.lock() as stale:
        result = _extract_locked(config, store, key_column, progress)
    if stale:
        result.notes.append(f"a lock left by an earlier run that ended without finishing ({stale}) was taken over")
    return result


def _extract_locked(config: ExtractConfig, store: ExtractStore, key_column: str,
                    progress: ExtractProgress | None) -> ExtractResult:
    """The run, while this process holds OUT's lock."""
    store.check_targets(resume=config.resume)

    wds_index = None
    if config.modality == "image" and is_webdataset_spec(config.data):
        # Each tar is one shard: the unit a killed run loses and --resume skips.
        wds_index = index_shards(config.data, limit=config.limit, captions=config.layout == "clip-retrieval")
        keys = wds_index.keys
        fingerprint = wds_index.fingerprint()
        unit = "images"
    elif config.modality == "image":
        keys = find_images(config.data, limit=config.limit)
        fingerprint = images_fingerprint(config.data, keys)
        unit = "images"
    else:
        if str(config.texts).lower().endswith(".tar") or "{" in str(config.texts):
            raise GaussAuditError(f"{config.texts}: {option_name('texts')} takes a .txt, .jsonl or .parquet file; "
                                  f"the captions of webdataset tars are not embedded (their images are, with "
                                  f"{option_name('data')}).")
        keys = read_texts(config.texts, config.text_column)[: config.limit]
        if not keys:
            raise GaussAuditError(f"{config.texts}: holds no captions (every line is blank).")
        fingerprint = texts_fingerprint(keys)
        unit = "texts"

    check_model_name(config.model)
    from gaussaudit.extract import runner  # imports torch

    device = runner.resolve_device(config.device)
    precision = runner.resolve_precision(config.precision, device)
    batch_size = config.batch_size or runner.default_batch_size(device)
    # Tokenising is cheap and needs no parallel decoding; images do.
    workers = 0 if config.modality == "text" else (
        config.workers if config.workers is not None else runner.default_workers(device))

    loaded = load_model(config.model, pretrained=config.pretrained, checkpoint=config.checkpoint,
                        head=config.head, modality=config.modality, allow_partial=config.allow_partial)
    described = loaded.describe()
    # Everything that changes the embeddings; a resumed run must match it exactly.
    # (The checkpoint's path may change; its hash may not. Batch size, workers
    # and device do not change the embeddings beyond rounding.)
    settings = {k: v for k, v in described.items() if k != "checkpoint"}
    if wds_index is not None:
        settings.update(precision=precision, inputs_sha256=fingerprint, n_items=len(keys), shard_size="per tar")
        shards = wds_index.ranges
    else:
        settings.update(precision=precision, inputs_sha256=fingerprint, n_items=len(keys),
                        shard_size=config.shard_size)
        shards = runner.shard_ranges(len(keys), config.shard_size)
    done = store.open_parts({"settings": settings, "n_shards": len(shards)}, resume=config.resume)
    todo = [(index, positions) for index, positions in enumerate(shards) if index not in done]
    plan = ExtractPlan(
        model=loaded, device=str(device), precision=precision, batch_size=batch_size, workers=workers,
        unit=unit, n_items=len(keys), n_shards=len(shards), shards_done=len(shards) - len(todo),
        items_done=len(keys) - sum(len(p) for _, p in todo), out=store.out,
    )
    if wds_index is not None:
        dataset, collate = WebDatasetImages(wds_index, loaded.preprocess), Collate()
    elif config.modality == "image":
        dataset, collate = ImageFolderDataset(config.data, keys, loaded.preprocess), Collate()
    else:
        dataset, collate = TextDataset(keys), Collate(prepare=loaded.preprocess)
    progress = progress or ExtractProgress()
    try:
        progress.start(plan)
        encoded, seconds = runner.encode_shards(
            loaded, dataset, collate, todo, shard_size=config.shard_size, keys=keys, store=store, device=device,
            precision=precision, batch_size=batch_size, workers=workers, strict=config.strict, progress=progress,
            # texts batched by length, as sentence-transformers does: short texts are not padded to long ones
            length=(lambda p: len(keys[p])) if config.texts is not None else None,
        )
        progress.finish()
    except BaseException:
        # Finished shards are kept for --resume; a folder with none is just clutter.
        store.remove_parts_if_empty()
        raise

    from gaussaudit import __version__

    metadata = {
        "gaussaudit_version": __version__,
        **described,
        "precision": precision,
        "source": str(config.data if config.modality == "image" else config.texts),
        "key": key_column,
    }
    if wds_index is not None:
        metadata["shards"] = len(shards)
    if config.layout != "file":
        metadata["layout"] = config.layout
    assembled = store.assemble(len(shards), metadata, captions=wds_index.captions if wds_index is not None else None)
    store.remove_parts()
    return ExtractResult(
        plan=plan, out=assembled.out, sidecar=assembled.sidecar, rows=assembled.rows, dim=assembled.dim,
        skipped=assembled.skipped, encoded=encoded, seconds=seconds, metadata=metadata,
    )

