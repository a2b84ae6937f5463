"""Folders the user may not read or search, and outputs they may not write: a
clean exit 2 naming the path, never a traceback and never silently fewer rows.

CI runs as root, for whom permission bits do not bind; the CLI then runs under
``setpriv`` with the two capabilities that override them dropped (still uid 0,
so the owner bits of everything else, root's, let it through)."""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

from conftest import gaussian_embeddings, run_cli


def _cli_without_override() -> list[str]:
    if os.geteuid() != 0:
        return [sys.executable, "-m", "gaussaudit"]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): permission bits would not apply")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-m", "gaussaudit"]


@pytest.fixture
def tree(tmp_path):
    x = gaussian_embeddings(100, 4)
    for rel in ("locked/sub/a.npy", "mixed/a.npy", "mixed/inner/b.npy", "ok.npy"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / rel, x)
    (tmp_path / "out_locked").mkdir()
    (tmp_path / "read_only").mkdir()
    for rel, mode in (("locked", 0), ("mixed/inner", 0), ("out_locked", 0), ("read_only", 0o555)):
        os.chmod(tmp_path / rel, mode)
    yield tmp_path
    for rel in ("locked", "mixed/inner", "out_locked", "read_only"):
        os.chmod(tmp_path / rel, 0o755)


CASES = [
    (["scan", "locked/sub/a.npy"], ["locked/sub/a.npy", "permission denied"]),
    (["scan", "locked"], ["locked", "cannot be read", "only in part"]),
    (["scan", "mixed"], ["mixed/inner", "cannot be read", "only in part"]),  # never 100 rows instead of 200
    (["scan", "ok.npy", "--json", "out_locked/r.json"], ["out_locked/r.json", "permission denied"]),
    (["scan", "ok.npy", "--html", "read_only/r.html"], ["read_only/r.html", "no permission to write"]),
]


def test_unreadable_folders_and_unwritable_outputs_exit_2(tree):
    exe = _cli_without_override()
    for args, needles in CASES:
        rc, out, err = run_cli(*args, cwd=tree, exe=exe)
        assert rc == 2 and "Traceback" not in out + err and err.startswith("error:"), (args, rc, err[-1500:])
        for needle in needles:
            assert needle.lower() in err.lower(), (args, needle, err)
    rc, out, err = run_cli("scan", "ok.npy", "--calibrate", "0", cwd=tree, exe=exe)
    assert rc == 0, err  # the unprivileged CLI itself works
