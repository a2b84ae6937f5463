"""CLIP models through open_clip: any architecture of ``open_clip.list_models()``,
weights from a pretrained tag (fetched by open_clip from its hub) or a local
checkpoint file; the image tower with open_clip's own evaluation transform, or
the text tower with the model's tokenizer."""
from __future__ import annotations

import contextlib
import difflib
import logging
import os
import socket
import urllib.parse

import open_clip

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.extract.checkpoints import check_checkpoint_path, sha256_file, unreadable_checkpoint_message
from gaussaudit.extract.models import LoadedModel, weights_needed_message

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
            f"{option_set('pretrained', tag)}: open_clip has no pretrained weights for {name}; pass "
            f"{option_set('checkpoint', 'PATH')}."
        )
    near = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5)
    suggestion = f" Did you mean: {', '.join(near)}?" if near else ""
    raise GaussAuditError(f"{option_set('pretrained', tag)}: not a tag of {name}.{suggestion} Tags of {name}: {', '.join(tags)}.")


def _hub_files(cfg: dict) -> tuple[str, list[str]] | None:
    """The Hugging Face repo and the file names (safetensors first, as open_clip
    tries them) a tag's weights come from; None for a tag fetched by URL."""
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    repo, filename = os.path.split(hub)
    filename = filename or HF_WEIGHTS_NAME
    names = [HF_SAFE_WEIGHTS_NAME] if filename == HF_WEIGHTS_NAME else []
    if filename.endswith(".bin") and filename != HF_WEIGHTS_NAME:
        names.append(filename[: -len(".bin")] + ".safetensors")
    return repo, [*names, filename]


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url``'s host accepts a connection within ``timeout`` seconds:
    offline, the hub client would otherwise retry for a minute and a half."""
    parsed = urllib.parse.urlparse(url)
    try:
        port = parsed.port or (80 if parsed.scheme == "http" else 443)
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _offline_message(name: str, tag: str, why: str, copy_step: str) -> str:
    fetch = f"python -c \"import open_clip; open_clip.create_model('{name}', pretrained='{tag}')\""
    return (f"the weights of {name} '{tag}' are not cached here and {why}. "
            f"On a machine with network run: {fetch}; then {copy_step}. Or pass that downloaded file as "
            f"{option_set('checkpoint', 'FILE')} instead of {option_name('pretrained')}.")


def _fetch(name: str, tag: str, cfg: dict) -> str:
    """Local path of a tag's weights: from the cache if there, else downloaded;
    offline, one message saying where to put the file, without the hub's retries."""
    from open_clip.pretrained import download_pretrained

    hub = _hub_files(cfg)
    if hub is not None:
        from huggingface_hub import constants, try_to_load_from_cache

        repo, names = hub
        for filename in names:
            cached = try_to_load_from_cache(repo, filename)
            if isinstance(cached, str):
                return cached
        cache_folder = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"))
        if constants.HF_HUB_OFFLINE or not _reachable(constants.ENDPOINT):
            why = ("HF_HUB_OFFLINE is set, so nothing is downloaded" if constants.HF_HUB_OFFLINE
                   else f"{constants.ENDPOINT} cannot be reached (offline?)")
            copy_step = (f"copy its cache folder ~/.cache/huggingface/hub/{os.path.basename(cache_folder)} to "
                         f"{cache_folder} here and run again with HF_HUB_OFFLINE=1")
            raise GaussAuditError(_offline_message(name, tag, why, copy_step))
    else:
        url = cfg.get("url", "")
        target = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if url and not os.path.isfile(target) and not _reachable(url):
            copy_step = f"copy ~/.cache/clip/{os.path.basename(url)} from there to {target} here and run again"
            why = f"{urllib.parse.urlparse(url).hostname} cannot be reached (offline?)"
            raise GaussAuditError(_offline_message(name, tag, why, copy_step))
    try:
        path = download_pretrained(cfg)
    except Exception as exc:  # hub errors come in many types; all mean "not fetched"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise GaussAuditError(
            f"could not fetch the weights of {name} '{tag}' from open_clip's hub: {reason} "
            f"On a machine with network, run: python -c \"import open_clip; open_clip.create_model('{name}', "
            f"pretrained='{tag}')\" and pass the downloaded file as {option_set('checkpoint', 'FILE')} instead of "
            f"{option_name('pretrained')}."
        ) from None
    if not path:
        raise GaussAuditError(f"open_clip gave no download location for {name} '{tag}'; pass {option_set('checkpoint', 'PATH')}.")
    return path


def _tower_keys(keys, modality: str) -> list[str]:
    if modality == "image":
        return [k for k in keys if k.startswith("visual.")]
    return [k for k in keys if not k.startswith("visual.") and k not in _SHARED_KEYS]


def load_open_clip(name: str, pretrained: str | None = None, checkpoint: str | None = None,
                   modality: str = "image", allow_partial: bool = False) -> LoadedModel:
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
        raise GaussAuditError(f"give either {option_set('pretrained', 'TAG')} or {option_set('checkpoint', 'PATH')}, not both.")
    if not pretrained and not checkpoint:
        raise GaussAuditError(weights_needed_message(name))
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
        extra_tower = _tower_keys(unexpected, modality)
        if extra_tower and not allow_partial:
            raise GaussAuditError(
                f"{checkpoint}: {len(extra_tower)} tensors of its {modality} tower have no place in {name} (e.g. "
                f"{', '.join(extra_tower[:3])}): it is a checkpoint of another architecture. Pass {option_set('allow_partial')} "
                f"to embed with the {name} subset of its weights anyway."
            )
        report.append(f"weights: checkpoint {checkpoint}: {len(tower)} {modality}-tower tensors loaded")
        if unexpected:
            partial = f" ({option_set('allow_partial')})" if extra_tower else ""
            report.append(f"ignored {len(unexpected)} tensors not in {name}{partial}: {', '.join(unexpected[:4])}")
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

