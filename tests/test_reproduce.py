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
    assert doc["schema"] == "gaussaudit.reproduce/1"
    assert doc["settings"]["epochs"] == QUICK_EPOCHS and doc["settings"]["encoder"] == "linear"
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
        assert r["dataset"]["n_used"] == 2000
        assert r["dataset"]["dim"] == 128
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
    # Supervised features of the mixture: class clusters, far from the rule.
    sup = _run(doc, "gmm", "supervised")
    assert not sup["verdict"]["gaussian"]
    assert sup["metrics"]["ad"]["mean"] > 2 * _run(doc, "gmm", "trained")["metrics"]["ad"]["mean"]
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
    assert re.search(r"Laplace\s+CV 0\.08", table)  # the paper's numbers beside ours
    assert "binary: supervised baseline trained" in quick["progress"]
    # A short run whose supervised baseline passes says it does not show the contrast, naming the inputs.
    passing = [kind for kind in INPUTS if _run(doc, kind, "supervised")["verdict"]["gaussian"]]
    flat = " ".join(table.split())
    assert ("does not show the paper's contrast" in flat) == bool(passing)
    if passing:
        assert f"the supervised baseline passes for {', '.join(passing)} in this short run" in flat


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
    rc, out, err = run_cli("reproduce", "digits", "--quick", "--json", tmp_path / "d.json")
    assert rc == 0 and "Traceback" not in err, err
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
