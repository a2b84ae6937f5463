"""Shared helpers for the gaussaudit tests: run the CLI as a user would, and
make small seeded data sets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

#: Seconds one CLI run may take before the test fails instead of hanging.
CLI_TIMEOUT = 120


def run_cli(*args, cwd: str | os.PathLike | None = None, exe: list[str] | None = None,
            env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    """Run ``python -m gaussaudit ARGS`` (or ``exe ARGS``) and return
    ``(returncode, stdout, stderr)`` as text. ``env`` sets environment
    variables on top of this process's (``None`` removes one)."""
    cmd = list(exe) if exe is not None else [sys.executable, "-m", "gaussaudit"]
    environ = None
    if env is not None:
        environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    proc = subprocess.run(
        [*cmd, *map(str, args)],
        cwd=None if cwd is None else str(cwd),
        capture_output=True,
        timeout=CLI_TIMEOUT,
        env=environ,
    )
    return (
        proc.returncode,
        proc.stdout.decode("utf-8", errors="replace"),
        proc.stderr.decode("utf-8", errors="replace"),
    )


def run_cli_many(arg_lists, cwd: str | os.PathLike | None = None) -> list[tuple[int, str, str]]:
    """Run several CLI invocations concurrently (they are independent); results
    in the order given. Saves wall time: most of a run is interpreter start-up."""
    workers = max(2, min(len(arg_lists), os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda a: run_cli(*a, cwd=cwd), arg_lists))


def scan_json(*args, cwd: str | os.PathLike | None = None) -> dict:
    """``gaussaudit scan ARGS --json -``: the parsed report; fails the test on a
    non-zero exit or anything but JSON on stdout."""
    rc, out, err = run_cli("scan", *args, "--json", "-", cwd=cwd)
    assert rc == 0, f"exit {rc}\nstderr: {err}\nstdout: {out[:2000]}"
    return json.loads(out)


def make_embeddings(n: int = 3000, d: int = 24, seed: int = 12345, dtype=np.float32) -> np.ndarray:
    """A seeded n x d matrix that is clearly not Gaussian in most features
    (Gaussian, Laplace and skewed gamma thirds, unequal scales, an offset), so
    every reported number is far from a trivial value."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, d))
    a, b = d // 3, 2 * d // 3
    x[:, :a] = rng.standard_normal((n, a))
    x[:, a:b] = rng.laplace(size=(n, b - a))
    x[:, b:] = rng.gamma(4.0, size=(n, d - b)) - 4.0
    x *= rng.uniform(0.5, 2.0, size=d)
    x += 0.3
    return x.astype(dtype)


def gaussian_embeddings(n: int = 2000, d: int = 128, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """Isotropic Gaussian rows: the paper's rule says Gaussian (also after L2
    normalisation, which at d = 128 barely changes the marginals)."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(dtype)


def laplace_embeddings(n: int = 2000, d: int = 32, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """I.i.d. Laplace features: clearly not Gaussian."""
    return np.random.default_rng(seed).laplace(size=(n, d)).astype(dtype)


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture."""
    return run_cli


def save_npy(path: str | os.PathLike, array) -> Path:
    """``np.save`` that returns the path (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


# The extract tests' fixtures (images, checkpoints) live in their own module;
# importing them here registers them once for the whole session.
from extract_fixtures import (  # noqa: E402,F401
    captions_file,
    image_folder,
    many_images,
    resnet_states,
    simclr_checkpoints,
    vit_checkpoint,
)
