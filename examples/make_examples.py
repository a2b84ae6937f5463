"""Make the small example files shipped in examples/ (seeded, deterministic).

    python examples/make_examples.py

contrastive_like.npy       4,000 x 128 float32. A random linear encoder applied
                           to Laplace inputs (the paper's synthetic "linear,
                           Laplace" setting, untrained): each feature sums 512
                           independent inputs, so it is near Gaussian. Expected
                           verdict: Gaussian.
supervised_like.parquet    2,000 x 128 float32 in a fixed_size_list column
                           `embedding` beside a `label` column: ten class
                           clusters passed through a ReLU, like penultimate
                           features of a supervised classifier. Expected
                           verdict: not Gaussian.
"""
from pathlib import Path

import numpy as np

from gaussaudit.io import write_npy, write_parquet

HERE = Path(__file__).resolve().parent


def contrastive_like(rng: np.random.Generator, n: int = 4000, d_in: int = 512, d_out: int = 128) -> np.ndarray:
    inputs = rng.laplace(size=(n, d_in))
    encoder = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
    return (inputs @ encoder).astype(np.float32)


def supervised_like(rng: np.random.Generator, n: int = 2000, d: int = 128, classes: int = 10):
    labels = rng.integers(0, classes, size=n)
    centres = 2.0 * rng.standard_normal((classes, d))
    features = np.maximum(centres[labels] + rng.standard_normal((n, d)), 0.0)
    return features.astype(np.float32), labels


def main() -> None:
    rng = np.random.default_rng(2026)
    write_npy(HERE / "contrastive_like.npy", contrastive_like(rng), overwrite=True)
    features, labels = supervised_like(rng)
    write_parquet(HERE / "supervised_like.parquet", features, extra_columns={"label": labels}, overwrite=True)


if __name__ == "__main__":
    main()
