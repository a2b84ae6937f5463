"""DINO ViTs (Caron et al., 2021): timm's ViT with the weights of a DINO
checkpoint, embedding the class token of the last layer after its norm, as
DINO's own evaluation does.

A DINO training checkpoint holds ``student`` and ``teacher`` networks (keys
under ``module.backbone.`` / ``backbone.``, beside the DINO head); the teacher
is what DINO evaluates and what is used here when present. The released
backbone weights (``dino_deitsmall16_pretrain.pth``) are a bare state dict.
"""
from __future__ import annotations

from torch import nn

from gaussaudit.errors import GaussAuditError
from gaussaudit.extract.checkpoints import find_state_dict, read_checkpoint, sha256_file
from gaussaudit.extract.models import DINO_MODELS, LoadedModel
from gaussaudit.extract.simclr import IMAGENET_MEAN, IMAGENET_STD, _choose_prefix, _sample

#: DINO's evaluation preprocessing: Resize(256, bicubic), CenterCrop(224), ImageNet normalisation.
RESIZE, CROP = 256, 224


def dino_preprocess():
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(RESIZE, interpolation=transforms.InterpolationMode.BICUBIC, antialias=True),
        transforms.CenterCrop(CROP),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def vit(architecture: str) -> nn.Module:
    """A randomly initialised timm ViT without a classifier: its output is the
    class token after the last norm."""
    import timm

    return timm.create_model(architecture, pretrained=False, num_classes=0, global_pool="token")


def _network(checkpoint: dict, source: str) -> tuple[dict, str]:
    """The teacher's state dict of a training checkpoint (else the student's),
    or the checkpoint's state dict."""
    if isinstance(checkpoint, dict):
        for name in ("teacher", "student"):
            inner = checkpoint.get(name)
            if isinstance(inner, dict):
                state, where = find_state_dict(inner, source)
                return state, f"checkpoint['{name}']" + ("" if where == "the file itself" else where[len("checkpoint"):])
    return find_state_dict(checkpoint, source)


def load_dino(name: str, checkpoint: str) -> LoadedModel:
    """Load a DINO checkpoint into timm's ViT of ``name``'s size."""
    architecture, dim = DINO_MODELS[name]
    source = str(checkpoint)
    try:
        model = vit(architecture)
    except ImportError:
        raise GaussAuditError(f"{name} needs timm, which is not installed: pip install timm.") from None
    state, where = _network(read_checkpoint(checkpoint), source)
    expected = model.state_dict()
    prefix, matched, _ = _choose_prefix(state.keys(), set(expected))
    if matched == 0:
        raise GaussAuditError(f"{source}: none of its {len(state)} tensors (in {where}) is a weight of timm's "
                              f"{architecture} (its keys: {_sample(state)}). gaussaudit never embeds with random weights.")
    loaded = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix):] in expected}
    missing = [k for k in expected if k not in loaded]
    if missing:
        raise GaussAuditError(f"{source}: the {name} backbone is incomplete: {len(missing)} of its {len(expected)} "
                              f"weights are missing under the prefix '{prefix}' (e.g. {_sample(missing, 3)}). gaussaudit "
                              "never embeds with random weights.")
    wrong = [(k, v.shape, expected[k].shape) for k, v in loaded.items() if v.shape != expected[k].shape]
    if wrong:
        key, got, want = wrong[0]
        raise GaussAuditError(f"{source}: {len(wrong)} weights do not fit {name} ({architecture}): '{prefix}{key}' is "
                              f"{tuple(got)} in the checkpoint, {tuple(want)} in the model (another patch size or "
                              "width? dino-vits16/vits8/vitb16/vitb8).")
    model.load_state_dict(loaded)
    model.eval()
    ignored = [k for k in state if not (k.startswith(prefix) and k[len(prefix):] in expected)]
    report = [f"backbone: {len(loaded)} tensors of timm {architecture} loaded from {where}"
              + (f", key prefix '{prefix}' stripped" if prefix else ""),
              f"embeddings: the class token after the last norm ({dim} features), as DINO evaluates"]
    if ignored:
        report.append(f"ignored {len(ignored)} other tensors (the DINO head…): {_sample(ignored)}")
    return LoadedModel(
        name=name,
        module=model,
        encode=model,
        preprocess=dino_preprocess(),
        modality="image",
        pretrained=None,
        checkpoint=source,
        checkpoint_sha256=sha256_file(checkpoint),
        preprocessing={"resize": RESIZE, "interpolation": "bicubic", "center_crop": CROP, "mean": list(IMAGENET_MEAN),
                       "std": list(IMAGENET_STD), "mode": "RGB"},
        report=report,
    )
