"""Model loaders behind one interface: a name (an open_clip architecture or a
``simclr-resnet*``) plus weights in, a :class:`LoadedModel` out — the module, how
to encode a batch, the model's own preprocessing, and a description of exactly
which weights were loaded for the output's metadata."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.extract._deps import open_clip_available, require_extract_packages

#: SimCLR backbones: name → (torchvision architecture, embedding dimension).
SIMCLR_MODELS = {"simclr-resnet18": ("resnet18", 512), "simclr-resnet50": ("resnet50", 2048)}
#: Supervised torchvision classifiers, embedded at their penultimate layer (the
#: classifier dropped): the paper's supervised baselines.
SUPERVISED_MODELS = {"resnet18": ("resnet18", 512), "resnet34": ("resnet34", 512), "resnet50": ("resnet50", 2048),
                     "densenet121": ("densenet121", 1024)}
#: Every model built from a torchvision architecture and a local checkpoint.
TORCHVISION_MODELS = {**SIMCLR_MODELS, **SUPERVISED_MODELS}
#: DINO ViTs: name → (timm architecture, embedding dimension: the class token).
DINO_MODELS = {"dino-vits16": ("vit_small_patch16_224", 384), "dino-vits8": ("vit_small_patch8_224", 384),
               "dino-vitb16": ("vit_base_patch16_224", 768), "dino-vitb8": ("vit_base_patch8_224", 768)}
#: Image models from a local checkpoint only (no open_clip, no hub).
CHECKPOINT_MODELS = {**TORCHVISION_MODELS, **DINO_MODELS}
#: Text encoders from a local folder, ``st:PATH`` / ``hf:PATH``: the prefix and what it loads.
TEXT_MODEL_KINDS = {"st": "sentence-transformers", "hf": "transformers"}

MODALITIES = ("image", "text")


@dataclass
class LoadedModel:
    """A model ready to embed a modality.

    Attributes
    ----------
    name : str
        As the user gave it (``ViT-B-32``, ``simclr-resnet18``).
    module : torch.nn.Module
        Everything ``encode`` uses, in eval mode; the runner moves it to the device.
    encode : callable
        ``encode(batch) -> (n, dim) tensor``: the raw (not normalised) embedding.
    preprocess : callable
        Image models: PIL image → tensor (the model's own transform). Text
        models: list of str → token tensor.
    modality : {"image", "text"}
    pretrained, checkpoint, checkpoint_sha256 : str or None
        Where the weights came from; recorded in the output's metadata.
    preprocessing : dict
        JSON-able description of ``preprocess``.
    head : bool
        Embeddings come through a projection head (SimCLR ``--head``).
    report : list of str
        What was loaded and what was ignored, for the user to read.
    """

    name: str
    module: object
    encode: Callable
    preprocess: Callable
    modality: str
    pretrained: str | None
    checkpoint: str | None
    checkpoint_sha256: str | None
    preprocessing: dict
    head: bool = False
    report: list[str] = field(default_factory=list)
    channels_last: bool = False  # convolutional nets run faster in NHWC layout

    def describe(self) -> dict:
        """The model part of the output's metadata."""
        return {
            "model": self.name,
            "pretrained": self.pretrained,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "head": self.head,
            "modality": self.modality,
            "preprocessing": self.preprocessing,
        }


def check_checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint file must exist and be a file."""
    path = Path(path)
    if not path.exists():
        raise GaussAuditError(f"{path}: no such checkpoint file.")
    if path.is_dir():
        raise GaussAuditError(
            f"{path}: is a folder; {option_name('checkpoint')} takes a checkpoint file (.pt, .pth, .ckpt, .bin, .safetensors)."
        )
    if not path.is_file():
        raise GaussAuditError(f"{path}: is not a regular file (a FIFO, device or socket); {option_name('checkpoint')} takes a "
                              "checkpoint file.")
    return path


def is_simclr(name: str) -> bool:
    return name in SIMCLR_MODELS


def is_text_model(name: str) -> bool:
    """``st:PATH`` or ``hf:PATH``: a text encoder from a local folder."""
    kind, colon, path = name.partition(":")
    return bool(colon) and kind in TEXT_MODEL_KINDS


def needs_open_clip(name: str) -> bool:
    return not (name in CHECKPOINT_MODELS or is_text_model(name))


def is_torchvision(name: str) -> bool:
    """A SimCLR backbone or a supervised classifier: torchvision, a local checkpoint, no open_clip."""
    return name in TORCHVISION_MODELS


def known_models() -> list[str]:
    """Every model name ``extract`` accepts here (open_clip's only when it is installed)."""
    names = list(CHECKPOINT_MODELS)
    if open_clip_available():
        import open_clip

        names += open_clip.list_models()
    return names


def pretrained_tags(name: str) -> list[str]:
    """open_clip's pretrained tags of architecture ``name``, read without
    importing torch (open_clip's package imports it; its tag table does not).

    Empty when open_clip is absent or its table cannot be read this way.
    """
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return []
    # A private package over open_clip's folder, so its relative imports resolve
    # and the real open_clip is neither imported nor shadowed.
    alias = "_gaussaudit_open_clip_tags"
    package = types.ModuleType(alias)
    package.__path__ = list(spec.submodule_search_locations)
    # The table module tries these optional imports (safetensors.torch imports
    # torch); None in sys.modules makes them fail fast, as if absent.
    blocked = [key for key in ("safetensors.torch", "huggingface_hub") if key not in sys.modules]
    sys.modules.update({alias: package, **dict.fromkeys(blocked)})
    try:
        table = importlib.import_module(f"{alias}.pretrained")
        return list(table.list_pretrained_tags_by_model(name))
    except Exception:  # a future open_clip may lay its files out differently
        return []
    finally:
        for key in [k for k in sys.modules if k == alias or k.startswith(alias + ".")] + blocked:
            sys.modules.pop(key, None)


def check_model_name(name: str) -> None:
    """Fail on an unknown model, suggesting the nearest known names."""
    if is_text_model(name) or name in CHECKPOINT_MODELS:
        return  # without importing open_clip (seconds, with its transformers) to list its names
    names = known_models()
    if name in names:
        return
    lowered = {n.lower(): n for n in names}
    near = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.5)]
    suggestion = f" Did you mean: {', '.join(near)}?" if near else ""
    clip_hint = (
        "" if open_clip_available()
        else " (open_clip is not installed, so CLIP architectures are unavailable: pip install 'gaussaudit[extract]')"
    )
    raise GaussAuditError(
        f"unknown model '{name}'.{suggestion} Models: {', '.join(CHECKPOINT_MODELS)}, st:FOLDER / hf:FOLDER (a "
        f"local sentence-transformers / transformers text encoder), or any open_clip architecture{clip_hint} — "
        "python -c 'import open_clip; print(open_clip.list_models())' lists them."
    )


def weights_needed_message(name: str) -> str:
    """A CLIP model asked for without weights: which tags it has, or --checkpoint."""
    tags = pretrained_tags(name)
    listing = f" (tags of {name}: {', '.join(tags[:8])}{' …' if len(tags) > 8 else ''})" if tags else ""
    return (f"{name} needs weights: pass {option_set('pretrained', 'TAG')}{listing} or {option_set('checkpoint', 'PATH')}; "
            "gaussaudit never embeds with random weights.")


def check_model_request(
    name: str,
    *,
    pretrained: str | None = None,
    checkpoint: str | None = None,
    head: bool = False,
    modality: str = "image",
) -> None:
    """Reject combinations of model and options that cannot work, without torch.

    Runs before anything heavy is imported or loaded, so a mistake in the
    command line fails at once.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}; got {modality!r}")
    if is_text_model(name):
        if modality != "text":
            raise GaussAuditError(f"{name} is a text encoder: give {option_set('texts', 'FILE')} (one text a line), "
                                  f"not {option_name('data')}.")
        if pretrained is not None or checkpoint is not None or head:
            given = option_name("pretrained" if pretrained is not None else "checkpoint" if checkpoint else "head")
            raise GaussAuditError(f"{given} does not apply to {name}: the folder after '{name.partition(':')[0]}:' "
                                  "holds the weights.")
        return
    if name in CHECKPOINT_MODELS:
        kind = ("a SimCLR checkpoint" if is_simclr(name) else "a DINO checkpoint" if name in DINO_MODELS
                else "a torchvision state dict, e.g. torch.save(model.state_dict(), 'model.pt')")
        if modality == "text":
            raise GaussAuditError(f"{option_name('texts')} needs a CLIP model with a text tower or a text encoder "
                                  f"(st:FOLDER, hf:FOLDER); {name} embeds images only.")
        if pretrained is not None:
            raise GaussAuditError(
                f"{option_name('pretrained')} names open_clip weights; {name} loads {kind}: pass "
                f"{option_set('checkpoint', 'PATH')}."
            )
        if checkpoint is None:
            raise GaussAuditError(
                f"{name} needs weights: pass {option_set('checkpoint', 'PATH')} ({kind}); "
                "gaussaudit never embeds with random weights."
            )
        if head and not is_simclr(name):
            what = ("a DINO ViT, embedded at its class token" if name in DINO_MODELS
                    else "a supervised classifier, embedded at its penultimate layer")
            raise GaussAuditError(f"{option_set('head')} embeds through a SimCLR projection head; {name} is {what}.")
    else:
        if head:
            raise GaussAuditError(f"{option_set('head')} embeds through a SimCLR projection head; {name} is a CLIP model.")
        if pretrained and checkpoint:
            raise GaussAuditError(f"give either {option_set('pretrained', 'TAG')} or {option_set('checkpoint', 'PATH')}, "
                                  "not both.")
        if not pretrained and not checkpoint:
            raise GaussAuditError(weights_needed_message(name))
    if checkpoint is not None:
        check_checkpoint_path(checkpoint)


def load_model(
    name: str,
    *,
    pretrained: str | None = None,
    checkpoint: str | None = None,
    head: bool = False,
    modality: str = "image",
    allow_partial: bool = False,
) -> LoadedModel:
    """Build ``name`` with real weights, in eval mode, on the CPU.

    Parameters
    ----------
    name : str
        ``simclr-resnet18``, ``simclr-resnet50``, a supervised torchvision
        classifier (``resnet18``, ``resnet34``, ``resnet50``, ``densenet121``:
        the penultimate layer), a DINO ViT (``dino-vits16``/``vits8``/``vitb16``/``vitb8``:
        the class token; a training checkpoint's teacher), a local text encoder (``st:FOLDER`` for
        sentence-transformers, ``hf:FOLDER`` for transformers: masked mean
        pooling) or an open_clip architecture (``open_clip.list_models()``).
    pretrained : str, optional
        open_clip pretrained tag (``open_clip.list_pretrained()``), fetched by
        open_clip from its hub.
    checkpoint : path, optional
        A local checkpoint file (open_clip state dict or checkpoint; SimCLR
        or torchvision checkpoint in any common layout).
    head : bool
        SimCLR only: embed through the checkpoint's projection head.
    modality : {"image", "text"}
        Which tower to use; ``"text"`` needs a CLIP model.
    allow_partial : bool
        Accept a checkpoint whose backbone (tower) has weights the model has no
        place for (a deeper network's layers): by default an error, as it means
        the checkpoint is of another architecture. Missing weights are always an
        error.

    Raises
    ------
    GaussAuditError
        Unknown model or tag, missing or unreadable weights, weights that do not
        fit the architecture. Never falls back to random weights.
    """
    require_extract_packages(open_clip=needs_open_clip(name))
    check_model_name(name)
    check_model_request(name, pretrained=pretrained, checkpoint=checkpoint, head=head, modality=modality)
    if is_text_model(name):
        from gaussaudit.extract.textmodels import load_text_model

        return load_text_model(name)
    if name in DINO_MODELS:
        from gaussaudit.extract.dino import load_dino

        return load_dino(name, checkpoint)
    if is_torchvision(name):
        from gaussaudit.extract.simclr import load_simclr

        return load_simclr(name, checkpoint, head=head, allow_partial=allow_partial)
    from gaussaudit.extract.openclip import load_open_clip

    return load_open_clip(name, pretrained=pretrained, checkpoint=checkpoint, modality=modality,
                          allow_partial=allow_partial)
