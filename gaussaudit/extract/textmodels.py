"""Text encoders from a local model folder: ``st:PATH`` (a sentence-transformers
model: its own modules — transformer, pooling, dense, normalise — in order) and
``hf:PATH`` (a Hugging Face transformers encoder: the attention-masked mean of
its last hidden states, the pooling sentence-transformers uses by default, as
a plain transformers folder declares none).

Nothing is downloaded: the folder must hold the weights and the tokenizer
(``save_pretrained`` / ``SentenceTransformer.save``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from gaussaudit.errors import GaussAuditError
from gaussaudit.extract.checkpoints import sha256_file
from gaussaudit.extract.models import TEXT_MODEL_KINDS, LoadedModel

_INSTALL = "pip install 'gaussaudit[text]'"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class Tokenize:
    """Texts → one tensor, ``(2, n, T)``: token ids and attention mask, padded
    to the longest in the batch and truncated at ``max_length``. A class (not
    a closure) so DataLoader workers can pickle it."""

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding="longest", truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        return torch.stack([tokens["input_ids"], tokens["attention_mask"]])


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of each text's token states, padding left out."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def model_folder(name: str) -> Path:
    """The local folder a ``st:``/``hf:`` name points to, checked."""
    folder = Path(name.partition(":")[2])
    if not str(folder) or not folder.is_dir():
        raise GaussAuditError(f"{name}: {TEXT_MODEL_KINDS[name.partition(':')[0]]} models are read from a local "
                              f"folder (what save_pretrained / SentenceTransformer.save writes); '{folder}' is not one. "
                              "Nothing is downloaded.")
    return folder


def _weights_sha256(folder: Path) -> str | None:
    for name in _WEIGHT_FILES:
        found = sorted(folder.rglob(name))
        if found:
            return sha256_file(found[0])
    return None


def _import(module: str, distribution: str):
    try:
        return __import__(module)
    except ImportError:
        raise GaussAuditError(f"text models need {distribution}, which is not installed: {_INSTALL}.") from None


def _pooling_mode(model) -> str | None:
    """The pooling a sentence-transformers model's Pooling module says ("mean", "cls"…)."""
    pooling = next((m for m in model if type(m).__name__ == "Pooling"), None)
    if pooling is None:
        return None
    config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    if isinstance(config.get("pooling_mode"), str):
        return config["pooling_mode"]
    modes = [k[len("pooling_mode_"):].removesuffix("_tokens") for k, v in config.items()
             if k.startswith("pooling_mode_") and v is True]
    return "+".join(modes) or None


def _quiet_transformers() -> None:
    # loading bars and warnings of transformers would interleave with extract's own output
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def load_text_model(name: str) -> LoadedModel:
    """Load ``st:PATH`` or ``hf:PATH`` for ``--texts``, in eval mode, on the CPU."""
    kind = name.partition(":")[0]
    folder = model_folder(name)
    _import("transformers", "transformers")
    _quiet_transformers()
    try:
        if kind == "st":
            _import("sentence_transformers", "sentence-transformers")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
            tokenizer, max_length = model.tokenizer, int(model.max_seq_length)
            modules = [type(m).__name__ for m in model]
            mode = _pooling_mode(model)

            def encode(x: torch.Tensor) -> torch.Tensor:
                return model({"input_ids": x[0], "attention_mask": x[1]})["sentence_embedding"]

            preprocessing = {"tokenizer": type(tokenizer).__name__, "max_length": max_length, "modules": modules,
                             "pooling": mode}
            report = [f"sentence-transformers model {folder}: {' → '.join(modules)}"
                      + (f" (pooling: {mode})" if mode else "")]
            if "Normalize" in modules:
                report.append("its last module L2-normalises: every embedding has norm 1, so the norm CV says "
                              "nothing about the model")
        else:
            from transformers import AutoModel, AutoTokenizer

            model = AutoModel.from_pretrained(folder, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            positions = getattr(model.config, "max_position_embeddings", None) or 512
            max_length = int(min(tokenizer.model_max_length, positions))

            def encode(x: torch.Tensor) -> torch.Tensor:
                return masked_mean(model(input_ids=x[0], attention_mask=x[1]).last_hidden_state, x[1])

            preprocessing = {"tokenizer": type(tokenizer).__name__, "max_length": max_length, "pooling": "mean"}
            report = [f"transformers model {folder} ({type(model).__name__}): the attention-masked mean of the last "
                      "hidden states"]
    except GaussAuditError:
        raise
    except Exception as exc:  # OSError (no weights / tokenizer), ValueError (unknown architecture)…
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
        raise GaussAuditError(f"{folder}: cannot be loaded as a {TEXT_MODEL_KINDS[kind]} model ({first}).") from None
    model.eval()
    return LoadedModel(
        name=name,
        module=model,
        encode=encode,
        preprocess=Tokenize(tokenizer, max_length),
        modality="text",
        pretrained=None,
        checkpoint=str(folder),
        checkpoint_sha256=_weights_sha256(folder),
        preprocessing=preprocessing,
        report=report,
    )
