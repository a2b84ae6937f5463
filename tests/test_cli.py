"""The command line as a user types it."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

import gaussaudit

from conftest import gaussian_embeddings, laplace_embeddings, run_cli, run_cli_many

TABLE_ROWS = ("CV", "AD Avg.", "AD Norm. Feat.", "DP Avg.", "DP Norm. Feat.", "Gaussian?")
SCAN_OPTIONS = (
    "--sample", "--seed", "--normalize", "--no-normalize", "--key", "--column", "--drop-nonfinite",
    "--json", "--per-feature", "--overwrite", "--check", "--quiet", "--threads",
)
GAUSSIAN_D, LAPLACE_D = 128, 32


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    np.save(root / "gauss.npy", gaussian_embeddings(2000, GAUSSIAN_D))
    np.save(root / "laplace.npy", laplace_embeddings(2000, LAPLACE_D))
    return root


def _table_row(stdout: str, label: str) -> str:
    rows = [line for line in stdout.splitlines() if line.lstrip().startswith(label)]
    assert rows, f"no table row {label!r} in:\n{stdout}"
    return rows[0]


def test_version_and_help():
    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3) = run_cli_many(
        [["--version"], ["--help"], ["scan", "--help"]]
    )
    assert rc == 0, err
    assert out.strip() == f"gaussaudit {gaussaudit.__version__}"
    assert rc2 == 0, err2
    assert "scan" in out2 and "Usage" in out2
    assert rc3 == 0, err3
    for option in SCAN_OPTIONS:
        assert option in out3, f"scan --help does not mention {option}"
    assert ".npy" in out3 and ".parquet" in out3  # what PATHS may be


def test_no_arguments_prints_help_not_traceback():
    rc, out, err = run_cli()
    assert "Traceback" not in out + err
    assert "scan" in out + err
    assert rc in (0, 2)


def test_table_and_exit_status_without_check(files):
    (rc, out, err), (rc2, out2, err2) = run_cli_many(
        [["scan", "gauss.npy"], ["scan", "laplace.npy"]], cwd=files
    )
    assert rc == 0, err
    assert rc2 == 0, err2  # no --check: a non-Gaussian verdict is still exit 0
    assert err == "" and err2 == ""
    for stdout in (out, out2):
        for label in TABLE_ROWS:
            _table_row(stdout, label)
    # the verdict mark and the numbers in the table
    assert "✓" in _table_row(out, "Gaussian?") and "✗" not in _table_row(out, "Gaussian?")
    assert "✗" in _table_row(out2, "Gaussian?") and "✓" not in _table_row(out2, "Gaussian?")
    assert "verdict: Gaussian" in out and "verdict: not Gaussian" in out2
    ad = float(re.search(r"AD Avg\.[^0-9]*[0-9.]+\)\s+([0-9.]+)", _table_row(out, "AD Avg.")).group(1))
    assert 0 < ad < 0.752
    assert re.search(r"\d+\.\d%", _table_row(out2, "AD Norm. Feat."))
    assert "gauss.npy" in out and f"dim {GAUSSIAN_D}" in out and "2,000" in out


def test_check_exit_status(files):
    (rc, out, err), (rc2, out2, err2) = run_cli_many(
        [["scan", "gauss.npy", "--check"], ["scan", "laplace.npy", "--check"]], cwd=files
    )
    assert rc == 0, err
    assert rc2 == 1, f"exit {rc2}\n{err2}"
    assert "Gaussian?" in out2 and "Traceback" not in err2  # the report is still shown


def _check_type(value, kind, where):
    if kind is float:  # JSON numbers; a whole float may come back as an int
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {value!r}"
    elif kind is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
    else:
        assert isinstance(value, kind), f"{where}: {value!r}"


STABLE_KEYS = {
    "schema": str,
    "input.paths": list,
    "input.n_total": int,
    "input.n_used": int,
    "input.dim": int,
    "input.constant_features": int,
    "settings.normalize": bool,
    "settings.sample": int,
    "settings.seed": int,
    "metrics.norm_cv": float,
    "metrics.ad.mean": float,
    "metrics.ad.pass_fraction": float,
    "metrics.ad.critical_value": float,
    "metrics.dp.mean_p": float,
    "metrics.dp.pass_fraction": float,
    "metrics.dp.alpha": float,
    "verdict.gaussian": bool,
    "verdict.rule": str,
    "verdict.reasons": list,
}


def _get(d, dotted):
    for part in dotted.split("."):
        assert isinstance(d, dict) and part in d, f"missing key {dotted}"
        d = d[part]
    return d


def test_json_to_stdout_is_pure_json_with_stable_keys(files):
    (rc, out, err), (rc2, out2, err2) = run_cli_many(
        [["scan", "laplace.npy", "--json", "-", "--sample", "500", "--seed", "7"],
         ["scan", "gauss.npy", "--json", "-"]],
        cwd=files,
    )
    for code, stderr in ((rc, err), (rc2, err2)):
        assert code == 0, stderr
    rep, rep2 = json.loads(out), json.loads(out2)  # the whole of stdout is JSON
    for r in (rep, rep2):
        for key, kind in STABLE_KEYS.items():
            _check_type(_get(r, key), kind, key)
        assert r["schema"] == "gaussaudit.report/2"
        assert all(isinstance(p, str) for p in r["input"]["paths"])
        assert all(isinstance(s, str) and s for s in r["verdict"]["reasons"]) and r["verdict"]["reasons"]
        assert r["verdict"]["rule"] == "paper"
        assert r["metrics"]["ad"]["critical_value"] == 0.752 and r["metrics"]["dp"]["alpha"] == 0.05
        assert 0 <= r["metrics"]["ad"]["pass_fraction"] <= 1 and 0 <= r["metrics"]["dp"]["pass_fraction"] <= 1
    assert rep["input"]["paths"] == ["laplace.npy"]
    assert rep["input"]["n_total"] == 2000 and rep["input"]["n_used"] == 500 and rep["input"]["dim"] == LAPLACE_D
    assert rep["settings"] == {**rep["settings"], "normalize": True, "sample": 500, "seed": 7}
    assert rep["verdict"]["gaussian"] is False and rep["metrics"]["ad"]["mean"] > 0.752
    assert rep2["verdict"]["gaussian"] is True and rep2["input"]["n_used"] == 2000
    assert rep2["settings"]["sample"] == 10000 and rep2["settings"]["seed"] == 0
    assert "features" not in rep2  # per-feature lists only on request


def test_json_file_keeps_the_table_and_quiet_prints_nothing(files, tmp_path):
    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3) = run_cli_many(
        [["scan", files / "gauss.npy", "--json", tmp_path / "a.json"],
         ["scan", files / "gauss.npy", "--json", tmp_path / "b.json", "--quiet"],
         ["scan", files / "laplace.npy", "-q", "--check"]],
    )
    assert rc == 0, err
    for label in TABLE_ROWS:
        _table_row(out, label)
    a = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert a["input"]["dim"] == GAUSSIAN_D
    assert rc2 == 0, err2
    assert out2 == "" and err2 == ""
    b = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert a["metrics"] == b["metrics"]
    assert rc3 == 1 and out3 == "", err3  # --quiet still sets the --check status


def test_per_feature_lists(files):
    rc, out, err = run_cli("scan", "laplace.npy", "--json", "-", "--per-feature", "--sample", "1000", cwd=files)
    assert rc == 0, err
    feats = json.loads(out)["features"]
    for name in ("ad_statistic", "ad_pvalue", "dp_statistic", "dp_pvalue", "skewness", "excess_kurtosis"):
        assert name in feats, name
    for name, values in feats.items():
        assert isinstance(values, list) and len(values) == LAPLACE_D, name
        assert all(v is None or isinstance(v, (int, float)) for v in values), name
    rep = json.loads(out)
    assert np.mean(feats["ad_statistic"]) == pytest.approx(rep["metrics"]["ad"]["mean"], rel=1e-12)
    assert np.mean(feats["dp_pvalue"]) == pytest.approx(rep["metrics"]["dp"]["mean_p"], rel=1e-12)


def _without_timing(text: str) -> str:
    stripped, count = re.subn(r',\s*"timing":\s*\{[^{}]*\}', "", text)
    assert count == 1, text[-300:]
    return stripped


def test_deterministic_and_no_normalize(files):
    args = ["scan", "laplace.npy", "--json", "-", "--sample", "700", "--seed", "3", "--per-feature"]
    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3) = run_cli_many(
        [args, args, [*args, "--no-normalize"]], cwd=files
    )
    assert rc == rc2 == rc3 == 0, err + err2 + err3
    assert _without_timing(out) == _without_timing(out2)
    a, c = json.loads(out), json.loads(out3)
    assert a["settings"]["normalize"] is True and c["settings"]["normalize"] is False
    assert c["metrics"]["ad"]["mean"] != a["metrics"]["ad"]["mean"]
    assert c["metrics"]["norm_cv"] == pytest.approx(a["metrics"]["norm_cv"], rel=1e-12)  # raw-row norms either way
    assert c["input"]["n_used"] == a["input"]["n_used"] == 700


def test_installed_console_script(files):
    exe = shutil.which("gaussaudit")
    assert exe, "the console script 'gaussaudit' is not on PATH"
    rc, out, err = run_cli("--version", exe=[exe])
    assert rc == 0 and out.strip() == f"gaussaudit {gaussaudit.__version__}", err
    rc, out, err = run_cli("scan", "laplace.npy", "--check", "--sample", "500", exe=[exe], cwd=files)
    assert rc == 1, err
    assert "Gaussian?" in out and "✗" in _table_row(out, "Gaussian?")
    rc, out, err = run_cli("scan", "missing.npy", exe=[exe], cwd=files)
    assert rc == 2 and out == "" and "missing.npy" in err and "Traceback" not in err


def _patched_cli(cwd, patch: str, argv: list[str]):
    """The CLI run as ``gaussaudit ARGV`` in a fresh interpreter after ``patch``
    (source run first, with os, signal, sys and time imported): a fault injected
    at a known point of a real run."""
    import subprocess
    import sys

    # Ctrl-C as a terminal user has it: a shell's background job (nohup, `cmd &`) starts with SIGINT ignored
    code = ("import os, signal, sys, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + patch
            + "from gaussaudit.cli import main\n"
            f"sys.argv = ['gaussaudit', *{argv!r}]\nmain()\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_sigterm_while_writing_leaves_no_temporary(tmp_path):
    """SIGTERM arriving while a report is being written (here: just before the
    temporary is renamed into place) removes the temporary, writes nothing, and
    exits like Ctrl-C (130), as SIGINT always did."""
    np.save(tmp_path / "x.npy", gaussian_embeddings(300, 8))
    proc = _patched_cli(tmp_path, "import gaussaudit.io.writers as w\n"
                                  "def replace(src, dst):\n"
                                  "    os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
                                  "w.os.replace = replace\n",
                        ["scan", "x.npy", "--calibrate", "0", "-q", "--markdown", "r.md"])
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]  # no r.md, no .r.md.*.tmp


def test_ctrl_c_during_the_tests_exits_130_and_writes_nothing(tmp_path):
    """SIGINT in the middle of the per-feature tests (the long stage) ends the
    run at once with 130; no report, no temporary."""
    np.save(tmp_path / "x.npy", gaussian_embeddings(400, 16))
    proc = _patched_cli(tmp_path, "import gaussaudit.analysis as a\n"
                                  "real = a.feature_normality\n"
                                  "def interrupted(*args, **kwargs):\n"
                                  "    os.kill(os.getpid(), signal.SIGINT)\n"
                                  "    return real(*args, **kwargs)\n"
                                  "a.feature_normality = interrupted\n",
                        ["scan", "x.npy", "--json", "r.json", "--html", "r.html"])
    assert proc.returncode == 130 and "Traceback" not in proc.stderr and "interrupted" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


@pytest.mark.parametrize("failure,message", [
    ("MemoryError", "error: x.npy: ran out of memory; lower --sample"),
    ("RuntimeError(\"can't start new thread\")", "error: x.npy: could not start a worker thread"),
])
def test_resource_limits_name_the_input_and_what_to_lower(tmp_path, failure, message):
    """What a tight memory or process limit raises mid-audit: exit 2 naming the
    file and the option to lower (a worker thread that cannot start was a traceback)."""
    np.save(tmp_path / "x.npy", gaussian_embeddings(300, 8))
    proc = _patched_cli(tmp_path, "import gaussaudit.analysis as a\n"
                                  "def fails(*args, **kwargs):\n"
                                  f"    raise {failure}\n"
                                  "a.feature_normality = fails\n",
                        ["scan", "x.npy"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr


def test_cli_defaults_are_the_library_defaults():
    """scan's options take their defaults from AuditConfig: a scan typed with no
    options and audit() with none run the same audit."""
    import dataclasses

    from gaussaudit.audit import AuditConfig
    from gaussaudit.cli import _SCAN_OPTIONS

    library = AuditConfig()
    config_options = [(name, option) for name, _, option, to in _SCAN_OPTIONS if to == "config"]
    assert {name for name, _ in config_options} == {f.name for f in dataclasses.fields(AuditConfig)} - {"rule"}
    for name, option in config_options:
        expected = None if name == "exclude" else getattr(library, name)  # the CLI takes "A,B"; () means none
        assert option.default == expected, (name, option.default, expected)
