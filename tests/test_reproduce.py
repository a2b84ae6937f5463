"""``gaussaudit reproduce synthetic`` as a user types it (``--quick`` mode)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from test_cli import STABLE_KEYS, _check_type, _get

from gaussaudit.report.table import format_number

from conftest import CLI_TIMEOUT, run_cli, run_cli_many

pytest.importorskip("torch")

INPUTS = ("laplace", "gmm", "binary")
QUICK_EPOCHS = 6  # SyntheticSettings.quick()
QUICK_AUDITED = [0, 2, 4, 6]  # init, epochs 2 and 4 (audit_every 2), trained
QUICK_AUDIT_ROWS = 1000


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Two independent quick runs: one writing JSON and a PNG (table on stdout),
    one writing JSON to stdout."""
    root = tmp_path_factory.mktemp("reproduce")
    (rc_a, out_a, err_a), (rc_b, out_b, err_b) = run_cli_many([
        ["reproduce", "synthetic", "--quick", "--json", root / "a.json", "--plot", root / "a.png"],
        ["reproduce", "synthetic", "--quick", "--json", "-"],
    ])
    assert rc_a == 0, err_a
    assert rc_b == 0, err_b
    return {"root": root, "table": out_a, "progress": err_a,
            "a": json.loads((root / "a.json").read_text()), "b": json.loads(out_b)}


def _metrics(doc):
    return [(r["input"], r["stage"], r["epoch"], r["metrics"]["norm_cv"], r["metrics"]["ad"]["mean"],
             r["metrics"]["ad"]["pass_fraction"], r["metrics"]["dp"]["mean_p"], r["metrics"]["dp"]["pass_fraction"])
            for r in doc["runs"]]


def _run(doc, kind, stage, epoch=None):
    found = [r for r in doc["runs"] if r["input"] == kind and r["stage"] == stage
             and (epoch is None or r["epoch"] == epoch)]
    assert len(found) == 1, (kind, stage, epoch, len(found))
    return found[0]


def test_json_has_every_input_and_stage_with_scan_report_fields(quick):
    doc = quick["a"]
    assert doc["schema"] == "gaussaudit.reproduce/2"
    assert doc["settings"]["epochs"] == QUICK_EPOCHS and doc["settings"]["encoder"] == "linear"
    # Appendix E.1: 1024-d inputs, linear encoder to 256, τ = 0.1
    # quick: 256-d inputs to a 64-d linear encoder (the full run: Appendix E.1's 1024 → 256), τ = 0.1
    assert (doc["settings"]["dim_in"], doc["settings"]["dim_out"], doc["settings"]["tau"]) == (256, 64, 0.1)
    assert doc["settings"]["epochs_per_input"] == {k: QUICK_EPOCHS for k in INPUTS}
    runs = doc["runs"]
    assert len(runs) == len(INPUTS) * (1 + len(QUICK_AUDITED) + 1)
    for kind in INPUTS:
        stages = [(r["stage"], r["epoch"]) for r in runs if r["input"] == kind]
        assert stages == [("input", None), ("init", 0), ("epoch", 2), ("epoch", 4), ("trained", QUICK_EPOCHS),
                          ("supervised", QUICK_EPOCHS)]
    for r in runs:
        assert r["input"] in INPUTS
        for key, kind in STABLE_KEYS.items():
            key = re.sub(r"^input\.", "dataset.", key)  # the scan report's input block
            _check_type(_get(r, key), kind, f"{r['input']}/{r['stage']}: {key}")
        assert r["schema"] == "gaussaudit.report/2"
        assert r["dataset"]["n_used"] == QUICK_AUDIT_ROWS
        assert r["dataset"]["dim"] == (256 if r["stage"] == "input" else 64)
        # the paper's rule is judged on the unnormalised rows, as in the paper's Table 1
        raw = r["metrics"]["paper_table"]["unnormalised"]
        assert r["verdict"]["gaussian"] == (raw["ad"]["mean"] < 0.752 and raw["dp"]["mean_p"] > 0.05)
    # Headline audits add projections; the per-epoch ones only the per-feature tests.
    assert _run(doc, "binary", "trained")["settings"]["pca_projections"] == 16
    assert _run(doc, "binary", "epoch", 2)["settings"]["projections"] == 0
    assert set(doc["final_infonce_loss"]) == set(INPUTS)


def test_two_runs_give_identical_numbers(quick):
    a, b = _metrics(quick["a"]), _metrics(quick["b"])
    assert a == b
    assert quick["a"]["final_infonce_loss"] == quick["b"]["final_infonce_loss"]
    assert quick["a"]["supervised_train_accuracy"] == quick["b"]["supervised_train_accuracy"]


def test_infonce_gaussianises_binary_inputs_and_supervised_features_fail(quick):
    doc = quick["a"]
    raw = _run(doc, "binary", "input")["metrics"]
    trained = _run(doc, "binary", "trained")["metrics"]
    # Raw bits are two-valued: every feature fails, A² in the hundreds.
    assert raw["ad"]["mean"] > 100 and raw["ad"]["pass_fraction"] == 0
    assert trained["ad"]["mean"] < raw["ad"]["mean"] / 100
    assert trained["dp"]["mean_p"] > 0.05 > raw["dp"]["mean_p"]
    # Laplace: the raw input fails, the InfoNCE embeddings pass the paper's rule.
    assert not _run(doc, "laplace", "input")["verdict"]["gaussian"]
    lap = _run(doc, "laplace", "trained")
    assert lap["verdict"]["gaussian"] and lap["metrics"]["ad"]["mean"] < 0.5
    # Supervised features of the mixture: class clusters, far further from normal than the inputs.
    sup = _run(doc, "gmm", "supervised")
    assert not sup["verdict"]["gaussian"]
    assert sup["metrics"]["ad"]["mean"] > 2 * _run(doc, "gmm", "input")["metrics"]["ad"]["mean"]
    # The loss fell from chance level (log batch = 5.5) well below it.
    assert all(loss < 2.0 for loss in doc["final_infonce_loss"].values())


def test_table_shows_each_input_by_stage(quick):
    table = quick["table"]
    doc = quick["a"]
    for kind in INPUTS:
        header = next(line for line in table.splitlines() if line.startswith(kind) and "raw input" in line)
        assert header.split()[1:] == ["raw", "input", "init", "(E0)", "InfoNCE", f"E{QUICK_EPOCHS}", "supervised"]
    # The binary table's AD row holds the JSON's values, stage by stage.
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("binary") and "raw input" in line)
    ad_row = next(line for line in lines[start:] if line.startswith("AD Avg."))
    expected = [format_number(_run(doc, "binary", s)["metrics"]["paper_table"]["unnormalised"]["ad"]["mean"])
                for s in ("input", "init", "trained", "supervised")]
    assert ad_row.split()[-4:] == expected
    assert "along InfoNCE training" in table
    # Table 1 as measured, the paper's value under each number; the binary input at E0, mid-way and trained.
    lines = table.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("Table 1, measured here"))
    assert lines[top + 1].split() == ["Metric", "Laplace", "GMM", "Binary", "E0", "Binary", "E2", "Binary", "E6"]
    assert lines[top + 2].split()[0] == "CV" and lines[top + 3].split() == ["0.08", "0.08", "0.36", "0.12", "0.09"]
    columns = doc["table"]
    assert [(c["column"], c["input"], c["stage"], c["epoch"]) for c in columns] == [
        ("Laplace", "laplace", "trained", 6), ("GMM", "gmm", "trained", 6), ("Binary E0", "binary", "init", 0),
        ("Binary E2", "binary", "epoch", 2), ("Binary E6", "binary", "trained", 6)]
    assert [format_number(c["measured"]["cv"]) for c in columns] == lines[top + 2].split()[1:]
    assert columns[2]["paper"] == {"cv": 0.36, "ad_mean": 1.64, "ad_pass": 0.30, "dp_mean_p": 0.02, "dp_pass": 0.15,
                                   "gaussian": False}
    for c in columns:
        run = _run(doc, c["input"], c["stage"], c["epoch"])
        unnormalised = run["metrics"]["paper_table"]["unnormalised"]
        assert c["measured"]["unnormalised"]["ad_mean"] == unnormalised["ad"]["mean"]
        assert c["measured"]["unnormalised"]["gaussian"] == run["verdict"]["gaussian"]
    assert "binary: supervised baseline trained" in quick["progress"]
    # A supervised baseline that passes is named, with the reason where one is known.
    passing = [kind for kind in INPUTS if _run(doc, kind, "supervised")["verdict"]["gaussian"]]
    flat = " ".join(table.split())
    assert ("central limit theorem" in flat) == ("laplace" in passing)
    others = [kind for kind in passing if kind != "laplace"]
    assert (f"the supervised baseline passes for {', '.join(others)} in this short run" in flat) == bool(others)


def test_plot_is_a_png(quick):
    data = (quick["root"] / "a.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 800 and height > 500


def test_bad_options_exit_2_without_traceback(tmp_path):
    existing = tmp_path / "exists.json"
    existing.write_text("{}")
    cases = [
        (["--epochs", "0"], "--epochs"),
        (["--encoder", "cnn"], "--encoder must be one of linear, mlp"),
        (["--input", "uniform"], "--input must be among"),
        (["--n", "10"], "--n must be"),
        (["--json", existing], "already exists"),
        (["--plot", tmp_path / "missing" / "x.png"], "does not exist"),
    ]
    cases += [
        (["--dims", "32,x"], "--dims takes whole numbers"),
        (["--batch-sizes", "1"], "--batch-sizes values must be ≥ 2"),
        (["--dims", "32", "--input", "gmm"], "sweep the Laplace experiment"),
        (["--batch-sizes", "4000"], "larger than the 2,000 training rows"),
    ]
    results = run_cli_many([["reproduce", "synthetic", "--quick", *args] for args, _ in cases])
    for (args, message), (rc, out, err) in zip(cases, results):
        assert rc == 2, (args, rc, err)
        assert message in err, (args, err)
        assert "Traceback" not in err and out == "", (args, out, err)
    assert existing.read_text() == "{}"


def test_without_torch_names_the_extra(tmp_path):
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no torch here')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fake.parent), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "gaussaudit", "reproduce", "synthetic", "--quick"],
                          capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'gaussaudit[extract]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    # And the rest of the CLI does not need torch.
    proc = subprocess.run([sys.executable, "-m", "gaussaudit", "reproduce", "synthetic", "--help"],
                          capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT)
    assert proc.returncode == 0 and "--quick" in proc.stdout and "--plot" in proc.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_output_into_a_fifo_is_written_into_not_replaced(tmp_path):
    """`--json /dev/null --overwrite` must not replace a device or pipe with a
    plain file (the atomic rename did, for /dev/null, machine-wide)."""
    import stat
    import threading

    from gaussaudit.io.writers import write_text_atomic

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    write_text_atomic(fifo, '{"runs": []}\n', overwrite=True)
    reader.join(timeout=10)
    assert received == ['{"runs": []}\n']
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary file left


def test_reproduce_digits_quick(tmp_path):
    """Real images offline: the same MLP and initialisation trained with InfoNCE
    and with cross-entropy on scikit-learn's digits; both audited along training."""
    pytest.importorskip("sklearn")
    rc, out, err = run_cli("reproduce", "digits", "--quick", "--json", tmp_path / "d.json", "--plot", tmp_path / "d.png")
    assert rc == 0 and "Traceback" not in err, err
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["schema"] == "gaussaudit.reproduce-digits/1"
    assert doc["n_train"] + doc["n_test"] == 1797 and 530 <= doc["n_test"] <= 545
    stages = [(r["input"], r["stage"], r["epoch"]) for r in doc["runs"]]
    assert stages == [("pixels", "input", None), ("contrastive", "init", 0), ("contrastive", "epoch", 3),
                      ("contrastive", "trained", 6), ("supervised", "init", 0), ("supervised", "epoch", 3),
                      ("supervised", "trained", 6)]
    by = {(r["input"], r["stage"]): r for r in doc["runs"]}
    # one initialisation for both models: their init audits are the same numbers
    assert by[("contrastive", "init")]["metrics"] == by[("supervised", "init")]["metrics"]
    assert doc["supervised_test_accuracy"] > 0.6 and doc["infonce_loss"][-1] < doc["infonce_loss"][0]
    # the paper's contrast on these seeds: cross-entropy features depart further from normal than InfoNCE's
    ad = {m: by[(m, "trained")]["metrics"]["paper_table"]["unnormalised"]["ad"]["mean"] for m in ("contrastive", "supervised")}
    assert ad["supervised"] > 1.5 * ad["contrastive"], ad
    assert "gaussaudit reproduce digits" in out and "CE E6" in out


def test_sweep_over_dimension_and_batch_size(tmp_path):
    """--dims × --batch-sizes: one Laplace encoder per grid point, measured on held-out pairs."""
    from gaussaudit.stats.pairs import uniform_sphere_uniformity

    rc, out, err = run_cli("reproduce", "synthetic", "--quick", "--epochs", "2", "--dims", "16,32",
                           "--batch-sizes", "16,64", "--json", tmp_path / "s.json", "--plot", tmp_path / "s.png")
    assert rc == 0 and "Traceback" not in err, err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["schema"] == "gaussaudit.reproduce-sweep/1"
    assert [(p["dim"], p["batch"]) for p in doc["points"]] == [(16, 16), (16, 64), (32, 16), (32, 64)]
    for p in doc["points"]:
        assert sum(p["positive_hist"]) == sum(p["negative_hist"]) == QUICK_AUDIT_ROWS
        assert p["uniformity_reference"] == pytest.approx(uniform_sphere_uniformity(p["dim"], 10.0), rel=1e-12)
        assert -1 <= p["alignment"] <= 1 and p["epochs"] == 2
        # trained pairs align better than negatives: most positive cosines sit in the top half of [−1, 1]
        assert sum(p["positive_hist"][20:]) > sum(p["negative_hist"][20:])
    rows = [line.split() for line in out.splitlines() if re.match(r"\s*(16|32)\s+(16|64)\s", line)]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(16, 16), (16, 64), (32, 16), (32, 64)]
    assert [float(r[5]) for r in rows] == [round(p["alignment"], 3) for p in doc["points"]]
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_positive_views_follow_appendix_e1():
    """The pair constructions of Appendix E.1, measured on many draws."""
    import numpy as np
    import torch

    from gaussaudit.reproduce.synthetic import SyntheticSettings, input_law, make_inputs, positive_views

    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    s = SyntheticSettings()
    law = input_law("laplace", 256, rng)
    x, y = make_inputs(law, 4000, rng)
    assert np.var(x) == pytest.approx(2.0, rel=0.02)  # Laplace(0, 1)
    bare = SyntheticSettings(jitter_noise_std=0.0, jitter_dropout=0.0, jitter_log_scale_std=0.0)
    first, second = positive_views(torch, law, bare, torch.from_numpy(x), torch.from_numpy(y), gen)
    assert torch.equal(first, torch.from_numpy(x))
    a, b = x.ravel(), second.numpy().ravel()
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(0.6, abs=0.005)  # x′ = A·x + √(1 − A²)·ε, A = 0.6
    assert np.var(b) == pytest.approx(2.0, rel=0.02)
    # jitter: dropout p = 0.1, per-row scale exp(N(0, 0.1²)), additive N(0, 0.2²)
    noise_only = SyntheticSettings(jitter_dropout=0.0, jitter_log_scale_std=0.0)
    first, _ = positive_views(torch, law, noise_only, torch.from_numpy(x), torch.from_numpy(y), gen)
    assert np.std(first.numpy() - x) == pytest.approx(0.2, rel=0.01)
    drop_only = SyntheticSettings(jitter_noise_std=0.0, jitter_log_scale_std=0.0)
    first, _ = positive_views(torch, law, drop_only, torch.from_numpy(x), torch.from_numpy(y), gen)
    assert np.mean(first.numpy() == 0) == pytest.approx(0.1, abs=0.003)
    scale_only = SyntheticSettings(jitter_noise_std=0.0, jitter_dropout=0.0)
    first, _ = positive_views(torch, law, scale_only, torch.from_numpy(x), torch.from_numpy(y), gen)
    log_ratio = np.log(first.numpy()[:, 0] / x[:, 0])
    assert np.std(log_ratio) == pytest.approx(0.1, rel=0.05)
    assert np.allclose(np.log(first.numpy() / x), log_ratio[:, None], atol=1e-5)  # one scale per row
    # GMM: a positive is an independent draw from the row's own component
    law = input_law("gmm", 64, rng)
    x, y = make_inputs(law, 20000, rng)
    assert set(np.unique(y)) == set(range(25))
    _, second = positive_views(torch, law, s, torch.from_numpy(x), torch.from_numpy(y), gen)
    residual = second.numpy() - law.means[y]
    assert abs(residual.mean()) < 0.01 and residual.std() == pytest.approx(1.0, rel=0.01)
    assert abs(np.corrcoef(residual.ravel(), (x - law.means[y]).ravel())[0, 1]) < 0.01
    # binary: 0.1 % of the zeros flipped to one, every one kept
    law = input_law("binary", 1024, rng, binary_p=0.005)
    x, y = make_inputs(law, 4000, rng)
    assert x.mean() == pytest.approx(0.005, rel=0.05)
    first, second = positive_views(torch, law, s, torch.from_numpy(x), torch.from_numpy(y), gen)
    assert torch.equal(first, torch.from_numpy(x))
    flipped = (second.numpy() == 1) & (x == 0)
    assert np.all(second.numpy()[x == 1] == 1)
    assert flipped.sum() / (x == 0).sum() == pytest.approx(0.001, rel=0.05)
