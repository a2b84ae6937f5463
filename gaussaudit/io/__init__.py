"""Sources and sinks: the only part of gaussaudit that reads or writes embeddings
and reports (the extract loaders open images and checkpoints themselves)."""
from gaussaudit.io.extract_store import ExtractStore
from gaussaudit.io.sources import SUPPORTED_SUFFIXES, Dataset, open_dataset, resolve_paths
from gaussaudit.io.validation import MIN_ROWS, check_dtype, check_shape
from gaussaudit.io.writers import write_npy, write_parquet, write_text_atomic

__all__ = [
    "MIN_ROWS",
    "SUPPORTED_SUFFIXES",
    "Dataset",
    "ExtractStore",
    "check_dtype",
    "check_shape",
    "open_dataset",
    "resolve_paths",
    "write_npy",
    "write_parquet",
    "write_text_atomic",
]
