"""SimCLR ResNets: a torchvision ResNet without its classifier, loading SimCLR
checkpoints in the layouts people have.

Checkpoints differ in wrapping (``state_dict``, ``model``…), key prefixes
(``module.``, ``backbone.``, ``encoder.``, ``model.``, ``convnet.``, and
combinations such as ``module.encoder.``) and in what sits beside the backbone
(a projection head, a classifier, a momentum copy). Rather than a list of known
prefixes, the loader tries every prefix of every key and keeps the one under
which the most torchvision backbone keys are found; whatever is left is
reported as ignored, and a projection head among it can be used with ``head``.
A backbone tensor that is missing or has the wrong shape is an error: the
model never runs with random weights.
"""
from __future__ import annotations

import re
from collections import Counter

import torch
from torch import nn

from gaussaudit.errors import GaussAuditError, option_set
from gaussaudit.extract.checkpoints import find_state_dict, read_checkpoint, sha256_file
from gaussaudit.extract.models import TORCHVISION_MODELS, LoadedModel

#: torchvision's ImageNet evaluation preprocessing, which SimCLR ResNets use.
RESIZE, CROP = 256, 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Names that mark a momentum / target copy, preferred less when two prefixes
#: hold a whole backbone each (MoCo's encoder_q/encoder_k, BYOL online/target).
_SECONDARY = ("momentum", "target", "encoder_k", "teacher", "ema")
_HEAD_WORDS = ("proj", "head", "fc", "mlp")
_HEAD_KEY = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)\.(?P<param>weight|bias|running_mean|running_var|num_batches_tracked)$")


def resnet_preprocess():
    """Resize 256 (bilinear, antialiased), centre-crop 224, ImageNet normalisation."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(RESIZE, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
        transforms.CenterCrop(CROP),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def resnet_preprocessing_description() -> dict:
    return {
        "resize": RESIZE, "interpolation": "bilinear", "center_crop": CROP,
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "mode": "RGB",
    }


def backbone(architecture: str) -> nn.Module:
    """A randomly initialised torchvision network whose classifier (a ResNet's
    ``fc``, a DenseNet's ``classifier``) is the identity: its output is the
    penultimate layer."""
    import torchvision

    model = getattr(torchvision.models, architecture)(weights=None)
    if architecture.startswith("densenet"):
        model.classifier = nn.Identity()
    else:
        model.fc = nn.Identity()
    return model


def _choose_prefix(keys, expected: set[str]) -> tuple[str, int, list[str]]:
    """The prefix under which most backbone keys are found.

    Returns ``(prefix, matches, other_full_prefixes)``: the last lists other
    prefixes that also hold a complete backbone (a momentum copy, say).
    """
    counts: Counter = Counter()
    for key in keys:
        if key in expected:
            counts[""] += 1
        for i, ch in enumerate(key):
            if ch == "." and key[i + 1 :] in expected:
                counts[key[: i + 1]] += 1
    if not counts:
        return "", 0, []
    best = max(counts.values())
    tied = [p for p, c in counts.items() if c == best]
    # Prefer the main network over a momentum copy, then the shortest prefix;
    # the name itself breaks remaining ties so the choice is deterministic.
    tied.sort(key=lambda p: (any(w in p.lower() for w in _SECONDARY), len(p), p))
    return tied[0], best, tied[1:]


def _infer_head(state: dict, candidates: list[str], in_features: int):
    """A projection head among the keys the backbone did not use, or None.

    A head is keys ``P<i>.weight``/``.bias`` (Linear, 2-D weight) and
    ``P<i>.running_mean``… (BatchNorm1d) under one prefix ``P`` naming a head
    (proj…, head, fc, mlp), whose first Linear takes the backbone's output.
    Indices without parameters (``0, 2``: the 1 between) are parameter-free
    layers; SimCLR heads put ReLU there, and so does this.

    Returns ``(prefix, module, description)``.
    """
    groups: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
    for key in candidates:
        match = _HEAD_KEY.match(key)
        if not match:
            continue
        prefix = match.group("prefix")
        if not prefix.endswith(".") or not any(w in prefix.lower() for w in _HEAD_WORDS):
            continue
        groups.setdefault(prefix, {}).setdefault(int(match.group("index")), {})[match.group("param")] = state[key]
    for prefix in sorted(groups, key=len):
        built = _build_head(groups[prefix], in_features)
        if built is not None:
            return prefix, *built
    return None


def _build_head(layers: dict[int, dict[str, torch.Tensor]], in_features: int):
    modules: list[nn.Module] = []
    parts: list[str] = []
    width = in_features
    indices = sorted(layers)
    for position, index in enumerate(indices):
        params = layers[index]
        weight = params.get("weight")
        if weight is not None and weight.ndim == 2:
            out_features, fan_in = weight.shape
            if fan_in != width:
                return None
            linear = nn.Linear(fan_in, out_features, bias="bias" in params)
            linear.load_state_dict({k: v for k, v in params.items() if k in ("weight", "bias")})
            modules.append(linear)
            parts.append(f"Linear({fan_in}→{out_features})")
            width = out_features
        elif "running_mean" in params:
            affine = weight is not None
            norm = nn.BatchNorm1d(params["running_mean"].shape[0], affine=affine)
            if params["running_mean"].shape[0] != width:
                return None
            norm.load_state_dict({k: v for k, v in params.items()}, strict=False)
            modules.append(norm)
            parts.append(f"BatchNorm1d({width})")
        else:
            return None
        following = indices[position + 1] if position + 1 < len(indices) else None
        if following is not None and following > index + 1:
            modules.append(nn.ReLU())
            parts.append("ReLU")
    if not any(isinstance(m, nn.Linear) for m in modules):
        return None
    return nn.Sequential(*modules).eval(), " → ".join(parts)


def _shape(t: torch.Tensor) -> str:
    return "×".join(map(str, t.shape))


def _sample(keys, n: int = 4) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:n])
    return shown + (f" … ({len(keys)} in all)" if len(keys) > n else "")


#: Keys of a torchvision backbone: a ResNet's stem and residual stages, a DenseNet's features.
_BACKBONE_KEY = re.compile(r"^(conv1|bn1|layer\d+|features)\.")
#: Blocks per stage of the torchvision ResNets, to name the architecture a checkpoint is of.
_RESNET_BLOCKS = {(2, 2, 2, 2): "resnet18", (3, 4, 6, 3): "resnet34 or resnet50", (3, 4, 23, 3): "resnet101",
                  (3, 8, 36, 3): "resnet152"}


def _blocks_per_stage(keys) -> tuple[int, ...]:
    blocks: dict[int, set[int]] = {}
    for key in keys:
        m = re.match(r"^layer(\d+)\.(\d+)\.", key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return tuple(len(blocks[s]) for s in sorted(blocks))


def load_simclr(name: str, checkpoint: str, head: bool = False, allow_partial: bool = False) -> LoadedModel:
    """Load a SimCLR checkpoint into torchvision's ``resnet18``/``resnet50``
    backbone, or a supervised classifier's into its architecture (``resnet18/34/50``,
    ``densenet121``: the classifier is dropped and reported, the embedding is
    the penultimate layer).

    Parameters
    ----------
    name : {"simclr-resnet18", "simclr-resnet50", "resnet18", "resnet34", "resnet50", "densenet121"}
    checkpoint : path
        Bare state dict, or one under ``state_dict``/``model``/…; key prefixes
        stripped, projection-head and classifier keys ignored (and reported).
    head : bool
        Embed through the checkpoint's projection head instead of the backbone.
    allow_partial : bool
        Accept backbone tensors the architecture has no place for (by default an
        error: a ResNet-34's extra blocks mean it is not a ResNet-18).

    Raises
    ------
    GaussAuditError
        The backbone's weights are not all there, do not fit the architecture,
        or (without ``allow_partial``) the checkpoint's backbone has more.
    """
    architecture, dim = TORCHVISION_MODELS[name]
    family = "simclr-" if name.startswith("simclr-") else ""
    source = str(checkpoint)
    state, where = find_state_dict(read_checkpoint(checkpoint), source)
    model = backbone(architecture)
    expected = model.state_dict()
    # BatchNorm step counters are not weights; older checkpoints lack them.
    required = [k for k in expected if not k.endswith("num_batches_tracked")]

    prefix, matched, other_full = _choose_prefix(state.keys(), set(expected))
    if matched == 0:
        raise GaussAuditError(
            f"{source}: none of its {len(state)} tensors (in {where}) is a torchvision {architecture} backbone "
            f"weight, so there is nothing to load (its keys: {_sample(state)}). gaussaudit never embeds with "
            "random weights."
        )
    loaded = {key[len(prefix):]: value for key, value in state.items()
              if key.startswith(prefix) and key[len(prefix):] in expected}
    missing = [k for k in required if k not in loaded]
    if missing:
        hint = ""
        if architecture == "resnet50" and not any(".conv3." in k for k in loaded):
            hint = (f" The checkpoint has no conv3 layers: it looks like a resnet18/34; try {family}resnet18"
                    + ("." if family else " or resnet34."))
        raise GaussAuditError(
            f"{source}: the {name} backbone is incomplete: {len(missing)} of its {len(required)} weights are "
            f"missing under the prefix '{prefix}' (e.g. {_sample(missing, 3)}).{hint} gaussaudit never embeds "
            "with random weights."
        )
    wrong = [(k, v, expected[k]) for k, v in loaded.items() if v.shape != expected[k].shape]
    if wrong:
        key, got, want = wrong[0]
        hint = ""
        if any(k.endswith(".conv3.weight") for k in (p[len(prefix):] for p in state)) and architecture in ("resnet18",
                                                                                                         "resnet34"):
            hint = f" The checkpoint has conv3 layers (bottleneck blocks): it looks like a resnet50; try {family}resnet50."
        elif key == "conv1.weight" and got.shape[-1] == 3:
            hint = (" Its conv1 is 3×3, a CIFAR-style stem; gaussaudit builds torchvision's ImageNet ResNet "
                    "(7×7 conv1, max-pool, 224-px inputs) and cannot load it.")
        raise GaussAuditError(
            f"{source}: {len(wrong)} backbone weights do not fit torchvision {architecture}: "
            f"'{prefix}{key}' is {_shape(got)} in the checkpoint, {_shape(want)} in the model.{hint}"
        )
    extra = [k for k in state if k.startswith(prefix) and k[len(prefix):] not in expected
             and _BACKBONE_KEY.match(k[len(prefix):])]
    if extra and not allow_partial:
        blocks = _blocks_per_stage(k[len(prefix):] for k in state if k.startswith(prefix))
        looks = _RESNET_BLOCKS.get(blocks)
        hint = (f" Its stages hold {'/'.join(map(str, blocks))} blocks" + (f", as a {looks} does." if looks else ".")
                if blocks else "")
        raise GaussAuditError(
            f"{source}: {len(extra)} backbone tensors have no place in {name} (e.g. {_sample(extra, 3)}): the "
            f"checkpoint is of a deeper network.{hint} Pass {option_set('allow_partial')} to embed with the {architecture} "
            "subset of its weights anyway."
        )
    model.load_state_dict(loaded, strict=False)  # strictness checked above, counters aside
    model.eval()

    used = {prefix + k for k in loaded}
    ignored = [k for k in state if k not in used]
    report = [
        f"backbone: {len(loaded)} tensors of torchvision {architecture} loaded from {where}"
        + (f", key prefix '{prefix}' stripped" if prefix else "")
    ]
    if other_full:
        report.append(f"also a complete backbone under '{other_full[0]}' (not used: a momentum/target copy?)")

    # a supervised classifier's fc/classifier is its output layer, not a projection head
    found_head = _infer_head(state, ignored, dim) if family else None
    if not family:
        report.append(f"embeddings: the penultimate layer ({dim} features); the classifier is not used")
    head_keys: list[str] = []
    if found_head is not None:
        head_prefix, head_module, head_text = found_head
        head_keys = [k for k in ignored if k.startswith(head_prefix) and _HEAD_KEY.match(k)]
        report.append(
            f"projection head '{head_prefix}*' ({head_text}): "
            + (f"used ({option_set('head')})" if head else f"ignored; {option_set('head')} embeds through it")
        )
    elif head:
        raise GaussAuditError(
            f"{source}: {option_set('head')}: no projection head found beside the backbone (looked for Linear/BatchNorm "
            f"layers under a prefix naming proj/head/fc/mlp whose first layer takes {dim} features). "
            f"Keys not in the backbone: {_sample(ignored) if ignored else 'none'}."
        )
    rest = [k for k in ignored if k not in head_keys and k not in extra]
    if extra:
        report.append(f"{option_set('allow_partial')}: ignored {len(extra)} backbone tensors {name} has no place for: "
                      f"{_sample(extra)}")
    if rest:
        report.append(f"ignored {len(rest)} other tensors: {_sample(rest)}")

    if head and found_head is not None:
        module = nn.Sequential(model, head_module).eval()
    else:
        module = model
    return LoadedModel(
        name=name,
        module=module,
        encode=module,
        preprocess=resnet_preprocess(),
        modality="image",
        pretrained=None,
        checkpoint=source,
        checkpoint_sha256=sha256_file(checkpoint),
        preprocessing=resnet_preprocessing_description(),
        head=head,
        report=report,
        channels_last=True,
    )
