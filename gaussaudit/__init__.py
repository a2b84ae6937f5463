"""gaussaudit: audit whether embeddings are Gaussian.

>>> from gaussaudit import audit
>>> report = audit("embeddings.npy")          # doctest: +SKIP
>>> report.verdict.gaussian, report.norm_cv   # doctest: +SKIP
"""
from gaussaudit.audit import AuditConfig, AuditReport, audit
from gaussaudit.errors import GaussAuditError

__version__ = "0.1.0"

__all__ = ["AuditConfig", "AuditReport", "GaussAuditError", "__version__", "audit"]
