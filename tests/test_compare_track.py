"""``gaussaudit compare`` and ``gaussaudit track`` as a user types them."""
from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
from test_cli import SCAN_OPTIONS, STABLE_KEYS, _check_type, _get

from gaussaudit.io.writers import write_parquet

from conftest import gaussian_embeddings, laplace_embeddings, run_cli_many, save_npy

PAPER_ROWS = ("CV", "AD Avg. (< 0.752)", "AD Norm. Feat.", "DP Avg. (> 0.05)", "DP Norm. Feat.", "**Gaussian?**", "Headline test")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    np.save(root / "gauss.npy", gaussian_embeddings(2000, 128))
    np.save(root / "laplace.npy", laplace_embeddings(2000, 32))
    return root


def _markdown_table(text: str) -> dict[str, list[str]]:
    """``{first cell: other cells}`` of the pipe table at the top of ``text``."""
    rows = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_help_lists_every_scan_option():
    results = run_cli_many([["compare", "--help"], ["track", "--help"], ["--help"]])
    for (rc, out, err), extra in zip(results[:2], (["--label", "--markdown", "--html", "--plots"], ["--plot"])):
        assert rc == 0, err
        for option in (*SCAN_OPTIONS, *extra):
            assert option in out, option
    assert "compare" in results[2][1] and "track" in results[2][1]


def test_compare_json_columns_in_order_with_labels_and_markdown(files, tmp_path):
    (rc, out, err), (rc2, out2, err2) = run_cli_many(
        [["compare", "laplace.npy", "gauss.npy", "--label", "sup|ervised", "--label", "contrastive",
          "--json", tmp_path / "cmp.json", "--markdown", "-", "--sample", "1500", "--seed", "4"],
         ["compare", "gauss.npy", "laplace.npy"]],
        cwd=files,
    )
    assert rc == 0 and err == "", err
    doc = json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))
    assert doc["schema"] == "gaussaudit.compare/1" and list(doc) == ["schema", "reports"]
    assert [r["label"] for r in doc["reports"]] == ["sup|ervised", "contrastive"]
    assert [r["input"]["paths"] for r in doc["reports"]] == [["laplace.npy"], ["gauss.npy"]]
    for r in doc["reports"]:  # each entry is a whole scan report
        for key, kind in STABLE_KEYS.items():
            _check_type(_get(r, key), kind, key)
        assert r["settings"]["sample"] == 1500 and r["settings"]["seed"] == 4 and r["input"]["n_used"] == 1500
    lap, gauss = doc["reports"]
    assert lap["verdict"]["gaussian"] is False and gauss["verdict"]["gaussian"] is True

    # --markdown - : stdout is the markdown and nothing else (no terminal table)
    assert out.startswith("# gaussaudit compare · sup\\|ervised, contrastive\n\n"
                          "| Metric | sup\\|ervised | contrastive |\n|---|---:|---:|\n")
    table = _markdown_table(out.split("\n\n", 1)[1])
    assert list(table)[2:] == list(PAPER_ROWS)
    assert table["**Gaussian?**"] == ["✗", "✓"]
    # the table shows the unnormalised rows, the ones the paper's rule is judged on
    assert table["AD Avg. (< 0.752)"][1] == f"{gauss['metrics']['paper_table']['unnormalised']['ad']['mean']:.3f}"
    assert table["AD Norm. Feat."][0] == f"{100 * lap['metrics']['paper_table']['unnormalised']['ad']['pass_fraction']:.1f}%"
    assert [cell.split()[0] for cell in table["Headline test"]] == [
        "✓" if r["verdict"]["test"]["gaussian"] else "✗" for r in (lap, gauss)]
    assert table["CV"][1] == f"{gauss['metrics']['norm_cv']:.3f}"
    assert "n = 1,500 rows tested" in out and "- **sup\\|ervised**, paper rule: AD mean A²" in out

    # the terminal table: default labels are the file names, columns in the order given
    assert rc2 == 0, err2
    header = next(line for line in out2.splitlines() if line.startswith("Metric"))
    assert header.index("gauss.npy") < header.index("laplace.npy")
    verdict = next(line for line in out2.splitlines() if line.startswith("Gaussian?"))
    assert verdict.split()[1:] == ["✓", "✗"]


def test_compare_check_default_labels_and_bad_labels(files):
    (rc, out, err), (rc2, out2, err2), (rc3, _, err3), (rc4, _, err4), (rc5, _, err5) = run_cli_many(
        [["compare", "gauss.npy", "laplace.npy", "--json", "-", "--check", "--no-normalize", "-n", "500"],
         ["compare", "gauss.npy", "--check", "-q"],
         ["compare", "gauss.npy", "laplace.npy", "--label", "only-one"],
         ["compare", "gauss.npy", "laplace.npy", "--label", "x", "--label", "x"],
         ["compare", "gauss.npy", "missing.npy"]],
        cwd=files,
    )
    assert rc == 1, err  # --check: one input is not Gaussian
    doc = json.loads(out)
    assert [r["label"] for r in doc["reports"]] == ["gauss.npy", "laplace.npy"]
    assert all(r["settings"]["normalize"] is False and r["input"]["n_used"] == 500 for r in doc["reports"])
    assert rc2 == 0 and out2 == "", err2
    for code, stderr, words in ((rc3, err3, ["--label", "1 times", "2 inputs"]), (rc4, err4, ["'x'", "two inputs"]),
                                (rc5, err5, ["missing.npy", "no such file"])):
        assert code == 2 and "Traceback" not in stderr, stderr
        for w in words:
            assert w in stderr, (w, stderr)


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    """A run along training: laplace early, Gaussian later, one broken step,
    names whose lexical order is not their numeric order."""
    root = tmp_path_factory.mktemp("track") / "run"
    save_npy(root / "emb_step2.npy", laplace_embeddings(1200, 32, seed=2))
    save_npy(root / "emb_step10.npy", gaussian_embeddings(1200, 128, seed=10))
    save_npy(root / "emb_step100.npy", gaussian_embeddings(1200, 128, seed=100))
    write_parquet(root / "emb_step1.parquet", laplace_embeddings(1200, 32, seed=1))
    (root / "emb_step7.npy").write_bytes(b"\x93NUMPY\x01\x00 this is not an array")
    (root / "_SUCCESS").write_text("")
    return root


def test_track_folder_numeric_order_and_a_broken_step_skipped(steps, tmp_path):
    (rc, out, err), (rc2, out2, err2) = run_cli_many(
        [["track", steps, "--json", "-"],
         ["track", steps / "emb_step100.npy", steps / "emb_step10.npy", steps / "emb_step2.npy",
          "--plot", tmp_path / "along.png", "--check", "--json", tmp_path / "t.json"]],
    )
    assert rc == 0, err  # a step that fails to load is not fatal
    doc = json.loads(out)
    assert list(doc) == ["schema", "points", "skipped"] and doc["schema"] == "gaussaudit.track/1"
    assert [p["step"] for p in doc["points"]] == [1, 2, 10, 100]
    assert [p["path"].rsplit("/", 1)[-1] for p in doc["points"]] == [
        "emb_step1.parquet", "emb_step2.npy", "emb_step10.npy", "emb_step100.npy"]
    for p in doc["points"]:  # scan report fields beside step and path
        for key, kind in STABLE_KEYS.items():
            _check_type(_get(p, key), kind, key)
        assert p["input"]["paths"] == [p["path"]]
    assert [p["verdict"]["gaussian"] for p in doc["points"]] == [False, False, True, True]
    assert len(doc["skipped"]) == 1 and doc["skipped"][0]["step"] == 7
    assert "emb_step7.npy" in doc["skipped"][0]["error"] and "not a valid .npy" in doc["skipped"][0]["error"]
    assert "step 7 skipped" in err and "emb_step7.npy" in err and "Traceback" not in err

    # files in any order, --check judges the last step (Gaussian): exit 0
    assert rc2 == 0, err2
    assert [p["step"] for p in json.loads((tmp_path / "t.json").read_text())["points"]] == [2, 10, 100]
    lines = out2.splitlines()
    step_rows = [line.split()[0] for line in lines if re.match(r"\s*\d+\s+\d", line)]
    assert step_rows == ["2", "10", "100"], out2
    png = (tmp_path / "along.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 500


def test_track_exit_status_and_bad_names(steps, tmp_path):
    save_npy(tmp_path / "final.npy", np.zeros((30, 4)))
    save_npy(tmp_path / "dup" / "a_step3.npy", np.zeros((30, 4)))
    save_npy(tmp_path / "dup" / "b_step3.npy", np.zeros((30, 4)))
    results = run_cli_many(
        [["track", steps / "emb_step2.npy", steps / "emb_step1.parquet", "--check", "-q"],
         ["track", tmp_path / "final.npy"],
         ["track", tmp_path / "dup"],
         ["track", steps / "emb_step7.npy"]],
    )
    (rc, out, err), *errors = results
    assert rc == 1 and out == "", err  # --check judges the last step, 2, which is not Gaussian
    for (code, stdout, stderr), words in zip(errors, (["final.npy", "no step number"], ["step 3", "a_step3.npy"],
                                                      ["none of the 1 steps", "emb_step7.npy"])):
        assert code == 2 and stdout == "" and "Traceback" not in stderr, stderr
        for w in words:
            assert w in stderr, (w, stderr)
