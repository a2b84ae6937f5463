"""CLIP models through open_clip: any architecture of ``open_clip.list_models()``,
weights from a pretrained tag (fetched by open_clip from its hub) or a local
checkpoint file; the image tower with open_clip's own evaluation transform, or
the text tower with the model's tokenizer."""
from __future__ import annotations

import contextlib
import difflib
import logging

import open_clip

from gaussaudit.errors import GaussAuditError
from gaussaudit.extract.checkpoints import check_checkpoint_path, sha256_file, unreadable_checkpoint_message
from gaussaudit.extract.models import LoadedModel

#: Keys of a CLIP state dict that belong to neither tower.
_SHARED_KEYS = ("logit_scale", "logit_bias")


@contextlib.contextmanager
def _quiet_open_clip():
    # open_clip logs "No pretrained weights loaded … initialized randomly" through
    # the root logger while building the model; the weights are loaded right
    # after, so the warning would only mislead.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _json_able(cfg: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def _check_tag(name: str, tag: str) -> dict:
    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag.lower() in (t.lower() for t in tags):  # open_clip's tags are case-insensitive
        return open_clip.get_pretrained_cfg(name, tag)
    if not tags:
        raise GaussAuditError(
            f"--pretrained {tag}: open_clip has no pretrained weights for {name}; pass --checkpoint PATH."
        )
    near = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5)
    suggestion = f" Did you mean: {', '.join(near)}?" if near else ""
    raise GaussAuditError(f"--pretrained {tag}: not a tag of {name}.{suggestion} Tags of {name}: {', '.join(tags)}.")


def _fetch(name: str, tag: str, cfg: dict) -> str:
    from open_clip.pretrained import download_pretrained

    try:
        path = download_pretrained(cfg)
    except Exception as exc:  # hub errors come in many types; all mean "not fetched"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GaussAuditError(
            f"could not fetch the weights of {name} '{tag}' from open_clip's hub ({reason[:300]}). "
            "Offline? On a machine with network, run: python -c \"import open_clip; "
            f"open_clip.create_model('{name}', pretrained='{tag}')\", copy the downloaded file (it lands in the "
            "Hugging Face cache, ~/.cache/huggingface) here, and pass --checkpoint FILE instead of --pretrained."
        ) from None
    if not path:
        raise GaussAuditError(f"open_clip gave no download location for {name} '{tag}'; pass --checkpoint PATH.")
    return path


def _tower_keys(keys, modality: str) -> list[str]:
    if modality == "image":
        return [k for k in keys if k.startswith("visual.")]
    return [k for k in keys if not k.startswith("visual.") and k not in _SHARED_KEYS]


def load_open_clip(name: str, pretrained: str | None = None, checkpoint: str | None = None,
                   modality: str = "image") -> LoadedModel:
    """Build an open_clip model with real weights, ready to encode ``modality``.

    Parameters
    ----------
    name : str
        An architecture of ``open_clip.list_models()``.
    pretrained : str, optional
        A tag of ``open_clip.list_pretrained()``; its weights are fetched (or
        taken from the local cache) and its preprocessing and QuickGELU setting
        applied.
    checkpoint : path, optional
        A local open_clip state dict or training checkpoint (``state_dict``
        inside, ``module.`` prefixes are handled by open_clip).
    modality : {"image", "text"}

    Raises
    ------
    GaussAuditError
        No weights given, both given, unknown tag, weights not fetched, or a
        checkpoint that does not fill the tower being used.
    """
    if pretrained and checkpoint:
        raise GaussAuditError("give either --pretrained TAG or --checkpoint PATH, not both.")
    if not pretrained and not checkpoint:
        tags = open_clip.list_pretrained_tags_by_model(name)
        listing = f" (tags of {name}: {', '.join(tags[:8])}{' …' if len(tags) > 8 else ''})" if tags else ""
        raise GaussAuditError(
            f"{name} needs weights: pass --pretrained TAG{listing} or --checkpoint PATH; "
            "gaussaudit never embeds with random weights."
        )
    report = []
    if pretrained:
        cfg = _check_tag(name, pretrained)
        path = _fetch(name, pretrained, cfg)
        # The file is loaded directly (rather than by tag) so open_clip does not
        # go back to the hub; the tag's preprocessing and activation come along.
        try:
            with _quiet_open_clip():
                model, _, preprocess = open_clip.create_model_and_transforms(
                    name, pretrained=path, force_quick_gelu=bool(cfg.get("quick_gelu", False)),
                    image_mean=cfg.get("mean"), image_std=cfg.get("std"),
                    image_interpolation=cfg.get("interpolation"), image_resize_mode=cfg.get("resize_mode"),
                )
        except Exception as exc:
            raise GaussAuditError(unreadable_checkpoint_message(path, exc)) from None
        checkpoint_sha256 = sha256_file(path)
        report.append(f"weights: open_clip tag '{pretrained}' ({path})")
    else:
        check_checkpoint_path(checkpoint)
        with _quiet_open_clip():
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
        checkpoint_sha256 = sha256_file(checkpoint)
        expected = list(model.state_dict())
        try:
            incompatible = open_clip.load_checkpoint(model, str(checkpoint), strict=False)
        except RuntimeError as exc:
            if "size mismatch" in str(exc):
                first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
                raise GaussAuditError(
                    f"{checkpoint}: does not fit open_clip {name}: {first[:300]} Is it a checkpoint of another "
                    "architecture?"
                ) from None
            raise GaussAuditError(unreadable_checkpoint_message(checkpoint, exc)) from None
        except Exception as exc:
            raise GaussAuditError(unreadable_checkpoint_message(checkpoint, exc)) from None
        missing = set(getattr(incompatible, "missing_keys", []) or [])
        tower = _tower_keys(expected, modality)
        missing_tower = [k for k in tower if k in missing]
        if missing_tower:
            which = "image" if modality == "image" else "text"
            raise GaussAuditError(
                f"{checkpoint}: the {which} tower of {name} is incomplete: {len(missing_tower)} of its "
                f"{len(tower)} weights are missing (e.g. {', '.join(missing_tower[:3])}). Is it an open_clip "
                f"checkpoint of {name}? gaussaudit never embeds with random weights."
            )
        unexpected = list(getattr(incompatible, "unexpected_keys", []) or [])
        report.append(f"weights: checkpoint {checkpoint}: {len(tower)} {modality}-tower tensors loaded")
        if unexpected:
            report.append(f"ignored {len(unexpected)} tensors not in {name}: {', '.join(unexpected[:4])}")
    model.eval()

    if modality == "image":
        preprocessing = _json_able(open_clip.get_model_preprocess_cfg(model))
        encode = model.encode_image
        prepare = preprocess
    else:
        tokenizer = open_clip.get_tokenizer(name)
        preprocessing = {
            "tokenizer": type(tokenizer).__name__,
            "context_length": int(getattr(tokenizer, "context_length", 0) or 0) or None,
        }
        encode = model.encode_text
        prepare = tokenizer
    return LoadedModel(
        name=name,
        module=model,
        encode=encode,
        preprocess=prepare,
        modality=modality,
        pretrained=pretrained,
        checkpoint=str(checkpoint) if checkpoint else None,
        checkpoint_sha256=checkpoint_sha256,
        preprocessing=preprocessing,
        report=report,
    )

