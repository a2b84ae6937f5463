"""Reproductions of the paper's experiments with the project's own audit.

``run_synthetic`` trains a linear encoder with InfoNCE on the paper's synthetic
inputs (Appendix E.1; CPU, seeded) and audits the inputs, the embeddings along
training and a supervised baseline; ``run_sweep`` retrains it over embedding
dimensions and batch sizes. torch (the ``extract`` extra) is imported only when
they run.
"""
from gaussaudit.reproduce.synthetic import (
    INPUTS,
    STAGES,
    SweepResult,
    SyntheticResult,
    SyntheticRun,
    SyntheticSettings,
    run_sweep,
    run_synthetic,
)

__all__ = ["INPUTS", "STAGES", "SweepResult", "SyntheticResult", "SyntheticRun", "SyntheticSettings", "run_sweep",
           "run_synthetic"]
