"""Damaged inputs: seeded mutants of valid .npy, .npz and parquet files (bytes
flipped in the header or footer or anywhere, truncations, insertions) must each
give a report or a GaussAuditError (the CLI's exit 2), never another exception,
and never a numpy warning on stderr."""
from __future__ import annotations

import collections
import warnings
from pathlib import Path

import numpy as np

from gaussaudit import audit
from gaussaudit.errors import GaussAuditError
from gaussaudit.io import write_npy, write_parquet

from conftest import run_cli_many

#: Mutants audited in-process (each a few milliseconds), and through the CLI.
MUTANTS, CLI_MUTANTS = 1500, 12


def _originals(root: Path) -> dict[str, bytes]:
    x = np.random.default_rng(0).standard_normal((60, 4)).astype(np.float32)
    write_npy(root / "a.npy", x)
    np.savez(root / "a.npz", emb=x)
    np.savez_compressed(root / "c.npz", emb=x)
    write_parquet(root / "a.parquet", x)
    write_parquet(root / "w.parquet", x, layout="wide")
    return {name: (root / name).read_bytes() for name in ("a.npy", "a.npz", "c.npz", "a.parquet", "w.parquet")}


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded mutant: flipped bytes (mostly in the first 200, where headers
    are, or the last 300, where zip directories and parquet footers are), a
    truncation, or an insertion."""
    b = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 9)):
            pos = rng.integers(min(len(b), 200)) if rng.random() < 0.6 else rng.integers(len(b))
            b[pos] = rng.integers(256)
    elif kind == 1:
        b = b[: rng.integers(len(b))]
    elif kind == 2:
        pos = rng.integers(len(b))
        b[pos:pos] = rng.integers(0, 256, rng.integers(1, 16)).astype(np.uint8).tobytes()
    else:
        for _ in range(rng.integers(1, 9)):
            b[len(b) - 1 - rng.integers(min(len(b), 300))] = rng.integers(256)
    return bytes(b)


def _mutant(originals, root: Path, seed: int) -> Path:
    name = list(originals)[seed % len(originals)]
    path = root / f"m{seed}{Path(name).suffix}"
    path.write_bytes(mutate(originals[name], np.random.default_rng(seed)))
    return path


def test_damaged_files_give_a_report_or_a_clean_error(tmp_path):
    originals = _originals(tmp_path)
    counts: collections.Counter = collections.Counter()
    crashes = []
    for seed in range(MUTANTS):
        path = _mutant(originals, tmp_path, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            try:
                audit(str(path), calibrate=0, projections=0, pca_projections=0, mv_sample=0, threads=1)
                counts["report"] += 1
            except GaussAuditError:
                counts["clean error"] += 1
            except Exception as exc:  # noqa: BLE001 - anything else is the bug this test looks for
                crashes.append(f"seed {seed} ({path.suffix}): {type(exc).__name__}: {str(exc)[:120]}")
        path.unlink()
    assert not crashes, f"{len(crashes)} of {MUTANTS} mutants crashed:\n" + "\n".join(crashes[:20])
    # the mutants exercise both outcomes: many fail cleanly, some still read
    assert counts["clean error"] > MUTANTS / 2 and counts["report"] > MUTANTS / 20, counts


def test_damaged_files_through_the_cli_exit_0_1_or_2_without_traceback(tmp_path):
    originals = _originals(tmp_path)
    # seeds apart from the in-process ones: other mutants
    paths = [_mutant(originals, tmp_path, seed) for seed in range(10_000, 10_000 + CLI_MUTANTS)]
    results = run_cli_many([["scan", p.name, "--calibrate", "0"] for p in paths], cwd=tmp_path)
    for path, (rc, out, err) in zip(paths, results):
        assert rc in (0, 2) and "Traceback" not in out + err and "Warning" not in err, (path.name, rc, err[-800:])
        if rc == 2:
            assert err.startswith("error:") and path.name in err, err
