"""Preparation: row norms, L2 normalisation, seeded sampling."""
from gaussaudit.prep.normalize import l2_normalize, row_norms
from gaussaudit.prep.sampling import sample_indices

__all__ = ["l2_normalize", "row_norms", "sample_indices"]
