"""Embeddings from models: CLIP (open_clip) and SimCLR ResNets, over a folder of
images or a file of captions, written as the file ``gaussaudit scan`` reads.

>>> from gaussaudit.extract import extract
>>> result = extract(model="simclr-resnet18", checkpoint="simclr.ckpt",
...                  data="images/", out="emb.parquet")           # doctest: +SKIP
>>> result.rows, result.dim, result.items_per_second              # doctest: +SKIP

Importing this package does not import torch (``gaussaudit scan`` stays fast
and works without the extract extra); the loaders import it when called.
"""
from gaussaudit.extract.api import (
    DEFAULT_SHARD_SIZE,
    ExtractConfig,
    ExtractPlan,
    ExtractProgress,
    ExtractResult,
    extract,
)
from gaussaudit.extract.inputs import IMAGE_SUFFIXES, find_images
from gaussaudit.extract.models import DINO_MODELS, SIMCLR_MODELS, SUPERVISED_MODELS, LoadedModel, load_model

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "ExtractConfig",
    "ExtractPlan",
    "ExtractProgress",
    "ExtractResult",
    "IMAGE_SUFFIXES",
    "LoadedModel",
    "DINO_MODELS",
    "SIMCLR_MODELS",
    "SUPERVISED_MODELS",
    "extract",
    "find_images",
    "load_model",
]

