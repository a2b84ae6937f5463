"""Reproductions of the paper's experiments with the project's own audit.

``run_synthetic`` trains a small encoder with InfoNCE on synthetic inputs (CPU,
seeded) and audits the inputs, the embeddings along training and a supervised
baseline. torch (the ``extract`` extra) is imported only when it runs.
"""
from gaussaudit.reproduce.synthetic import (
    INPUTS,
    STAGES,
    SyntheticResult,
    SyntheticRun,
    SyntheticSettings,
    run_synthetic,
)

__all__ = ["INPUTS", "STAGES", "SyntheticResult", "SyntheticRun", "SyntheticSettings", "run_synthetic"]
