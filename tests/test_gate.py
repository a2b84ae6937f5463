"""The release gate as CI drives it: policies, baselines, checks, exit codes,
JUnit XML, GitHub annotations and step summaries, and the composite Action."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaussaudit.errors import GaussAuditError
from gaussaudit.gate import GATE_METRICS, find_policy, gate, load_policy, parse_policy

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
JUNIT_XSD = Path(__file__).parent / "data" / "junit.xsd"
N, D = 2000, 32

#: A policy as a team would write one: the raw question, absolute limits, tolerances.
POLICY = """\
[gate]
verdict = "test"

[scan]
normalize = false

[thresholds]
"dp.pass_fraction" = ">= 0.8"
"ad.mean" = "< 1.0"

[tolerances]
ad.mean = 0.3
"spectrum.participation_ratio" = "20%"
norm_cv = "50%"
"""


def _gaussian(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, D)).astype(np.float32)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A baseline release's embeddings and JSON report, a new release from the
    same law, and two degraded ones (heavier tails, clusters)."""
    root = tmp_path_factory.mktemp("gate")
    rng = np.random.default_rng(7)
    np.save(root / "baseline.npy", _gaussian(1))
    np.save(root / "same.npy", _gaussian(2))
    np.save(root / "heavy.npy", rng.standard_t(4, (N, D)).astype(np.float32))
    centres = 1.5 * rng.standard_normal((10, D))
    clusters = centres[rng.integers(0, 10, N)] + rng.standard_normal((N, D))
    np.save(root / "clusters.npy", clusters.astype(np.float32))
    (root / "gaussaudit.toml").write_text(POLICY)
    rc, out, err = run_cli("scan", "baseline.npy", "--no-normalize", "--json", "baseline.json", "-q", cwd=root)
    assert rc == 0, err
    return root


def _gate_json(root, *args, env=None):
    rc, out, err = run_cli("gate", *args, "--json", "-", cwd=root, env=env)
    assert "Traceback" not in err, err
    return rc, (json.loads(out) if rc in (0, 1) else None), err


def _failed(document) -> set[str]:
    return {c["name"] for c in document["checks"] if not c["passed"]}


def test_same_law_passes_every_check(release):
    rc, doc, err = _gate_json(release, "same.npy", "--baseline", "baseline.json")
    assert rc == 0, doc["checks"]
    assert doc["passed"] and not _failed(doc)
    names = [c["name"] for c in doc["checks"]]
    assert names == ["comparable", "verdict: headline test", "dp.pass_fraction >= 0.8", "ad.mean < 1",
                     "ad.mean vs baseline", "spectrum.participation_ratio vs baseline", "norm_cv vs baseline"]
    # the candidate was scanned with the baseline report's settings: the same rows tested, unnormalised
    assert doc["candidate"]["settings"]["normalize"] is False
    assert doc["candidate"]["input"]["n_used"] == doc["baseline"]["input"]["n_used"] == N
    assert doc["policy"].endswith("gaussaudit.toml")
    # the baseline's value, the candidate's and the change are all there
    tol = next(c for c in doc["checks"] if c["name"] == "ad.mean vs baseline")
    assert tol["baseline"] == pytest.approx(doc["baseline"]["metrics"]["ad"]["mean"])
    assert tol["candidate"] == pytest.approx(doc["candidate"]["metrics"]["ad"]["mean"])
    assert tol["delta"] == pytest.approx(tol["candidate"] - tol["baseline"])


def test_identical_candidate_passes_and_is_recognised(release):
    rc, doc, _ = _gate_json(release, "baseline.npy", "--baseline", "baseline.json")
    assert rc == 0 and doc["passed"]
    assert any("bit for bit the baseline's" in n for n in doc["notes"])
    assert doc["candidate"]["input"]["fingerprint"] == doc["baseline"]["input"]["fingerprint"]


@pytest.mark.parametrize("candidate, expected", [
    ("heavy.npy", {"verdict: headline test", "dp.pass_fraction >= 0.8", "ad.mean < 1", "ad.mean vs baseline",
                   "norm_cv vs baseline"}),
    ("clusters.npy", {"verdict: headline test", "dp.pass_fraction >= 0.8", "ad.mean < 1", "ad.mean vs baseline",
                      "spectrum.participation_ratio vs baseline"}),
])
def test_degraded_candidates_fail_the_right_checks(release, candidate, expected):
    rc, doc, _ = _gate_json(release, candidate, "--baseline", "baseline.json")
    assert rc == 1
    assert _failed(doc) == expected, doc["checks"]
    for check in doc["checks"]:
        assert check["message"], check


def test_terminal_lists_every_check_and_says_why(release):
    rc, out, err = run_cli("gate", "heavy.npy", "--baseline", "baseline.json", cwd=release)
    assert rc == 1, err
    for name in ("comparable", "verdict: headline test", "ad.mean vs baseline", "norm_cv vs baseline"):
        assert name in out
    assert "✗ ad.mean vs baseline" in out and "worsened by" in out
    assert re.search(r"gate FAILED: \d of 7 checks failed", out)


def test_junit_validates_and_reads_as_ci_reads_it(release, tmp_path):
    xmlschema = pytest.importorskip("xmlschema")
    junitparser = pytest.importorskip("junitparser")
    out = tmp_path / "gate.xml"
    rc, _, err = run_cli("gate", "clusters.npy", "--baseline", "baseline.json", "--junit", out, "-q", cwd=release)
    assert rc == 1, err
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(out))
    suites = junitparser.JUnitXml.fromfile(str(out))
    cases = {case.name: case for suite in suites for case in suite}
    assert len(cases) == 7
    assert cases["comparable"].is_passed
    assert cases["ad.mean vs baseline"].result and not cases["ad.mean vs baseline"].is_passed
    assert "worsened by" in cases["ad.mean vs baseline"].result[0].message
    suite = next(iter(suites))
    assert (suite.tests, suite.failures, suite.errors) == (7, 5, 0)


def test_junit_schema_rejects_what_ci_would_not_read(tmp_path):
    """The schema is not a rubber stamp: a testcase without a name, or a count that is not a number, fails."""
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    bad = ('<testsuites><testsuite name="s" tests="one" failures="0" errors="0" time="0" '
           'timestamp="2026-01-01T00:00:00" hostname="h"><testcase classname="c" time="0"/></testsuite></testsuites>')
    assert not schema.is_valid(bad)


def test_github_actions_annotations_and_step_summary(release, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    rc, out, err = run_cli("gate", "heavy.npy", "--baseline", "baseline.json", "-q", cwd=release, env=env)
    assert rc == 1, err
    errors = [line for line in out.splitlines() if line.startswith("::error ")]
    assert len(errors) == 5
    assert any(line.startswith("::error title=gaussaudit gate%3A ad.mean vs baseline::") for line in errors)
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, nothing lost
    assert "| ad.mean vs baseline |" in text and "gate FAILED" in text
    # outside GitHub Actions: no annotations
    rc, out, _ = run_cli("gate", "heavy.npy", "--baseline", "baseline.json", "-q", cwd=release,
                         env={"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None})
    assert rc == 1 and "::error" not in out


def test_markdown_output(release, tmp_path):
    rc, out, err = run_cli("gate", "same.npy", "--baseline", "baseline.json", "--markdown", "-", "-q", cwd=release)
    assert rc == 0, err
    assert out.startswith("### gaussaudit gate")
    assert "| check | baseline | candidate | delta | limit | |" in out
    assert "**gate passed: 7 of 7 checks**" in out


def test_two_reports_not_measured_alike_are_flagged(release, tmp_path):
    rc, _, err = run_cli("scan", "same.npy", "--no-normalize", "--sample", "1000", "--json", tmp_path / "small.json",
                         "-q", cwd=release)
    assert rc == 0, err
    rc, doc, _ = _gate_json(release, str(tmp_path / "small.json"), "--baseline", "baseline.json")
    assert rc == 1
    comparable = doc["checks"][0]
    assert comparable["name"] == "comparable" and not comparable["passed"]
    assert "sample 10000 vs 1000" in comparable["message"] and "rows tested 2000 vs 1000" in comparable["message"]
    warn = tmp_path / "warn.toml"
    warn.write_text(POLICY.replace('verdict = "test"', 'verdict = "test"\ncomparable = "warn"'))
    rc, doc, _ = _gate_json(release, str(tmp_path / "small.json"), "--baseline", "baseline.json", "--policy", warn)
    comparable = doc["checks"][0]
    assert comparable["passed"] and comparable["warning"]


def test_no_policy_gates_on_the_headline_test(tmp_path):
    np.save(tmp_path / "gauss.npy", _gaussian(3))
    np.save(tmp_path / "heavy.npy", np.random.default_rng(3).standard_t(3, (N, D)).astype(np.float32))
    rc, doc, _ = _gate_json(tmp_path, "gauss.npy")
    assert rc == 0 and doc["policy"] is None
    assert [c["name"] for c in doc["checks"]] == ["verdict: headline test"]
    rc, doc, _ = _gate_json(tmp_path, "heavy.npy")
    assert rc == 1 and _failed(doc) == {"verdict: headline test"}


def test_paper_rule_verdict(tmp_path):
    np.save(tmp_path / "heavy.npy", np.random.default_rng(3).standard_t(3, (N, D)).astype(np.float32))
    (tmp_path / "gaussaudit.toml").write_text('[gate]\nverdict = "paper"\n')
    rc, doc, _ = _gate_json(tmp_path, "heavy.npy")
    assert rc == 1
    check = doc["checks"][0]
    assert check["name"] == "verdict: paper rule" and check["candidate"] == "not Gaussian"
    assert "a heuristic, not a test" in check["message"]


# ----------------------------------------------------------------------------
# policies: found, read, and every mistake named with its file and line


def test_policy_found_upward_from_the_working_directory(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_policy(nested) is None or not str(find_policy(nested)).startswith(str(tmp_path))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.gaussaudit.thresholds]\nnorm_cv = "< 0.2"\n')
    assert find_policy(nested) == tmp_path / "pyproject.toml"
    policy = load_policy(search_from=nested)
    assert [(t.metric.name, t.limit) for t in policy.thresholds] == [("norm_cv", "< 0.2")]
    (tmp_path / "a" / "gaussaudit.toml").write_text('[gate]\nverdict = "paper"\n')
    assert find_policy(nested) == tmp_path / "a" / "gaussaudit.toml"
    assert load_policy(search_from=nested).verdict == "paper"


def test_pyproject_without_our_table_is_not_a_policy(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.ruff]\nline-length = 100\n')
    found = find_policy(tmp_path)
    assert found is None or not str(found).startswith(str(tmp_path))


@pytest.mark.parametrize("text, where, says", [
    ('[thresholds]\n"ad.meen" = "< 0.6"\n', ":2:", "unknown metric"),
    ('[thresholds]\n\n"ad.mean" = "0.6"\n', ":3:", "must be a comparison and a number"),
    ('[thresholds]\nnorm_cv = "< 15%"\n', ":2:", "is not a share"),
    ('[tolerances]\nad.mean = -1\n', ":2:", "must be 0 or more"),
    ('[tolerances]\nad.mean = "a lot"\n', ":2:", "must be a number"),
    ('[treshold]\nnorm_cv = "< 1"\n', ":1:", "unknown table or key 'treshold'"),
    ('[gate]\nverdict = "strict"\n', ":2:", "must be one of 'test', 'paper', 'none'"),
    ('[gate]\nverdict = "test"\n[scan]\ncalibrate = 0\n', ":4:", "turns off the headline test"),
    ('[scan]\nsample = 5\n', ":2:", "sample must be 0 or at least 20"),
    ('[scan]\nsampel = 5\n', ":2:", "unknown scan option"),
    ('[drift]\nenabled = true\nalpha = 0.01\npermutations = 19\n', ":4:", "cannot reach a p-value of 0.01"),
    ('[drift]\nalpha = 2\n', ":2:", "between 0 and 1"),
    ('[gate\nverdict = 1\n', "", "is not valid TOML"),
])
def test_policy_mistakes_are_named_with_file_and_line(tmp_path, text, where, says):
    path = tmp_path / "gaussaudit.toml"
    path.write_text(text)
    with pytest.raises(GaussAuditError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"{path}{where}"), message
    assert says in message


def test_policy_mistake_through_the_cli_is_exit_2(release, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[thresholds]\n"ad.meen" = "< 0.6"\n')
    rc, out, err = run_cli("gate", "same.npy", "--policy", bad, cwd=release)
    assert rc == 2 and "Traceback" not in err
    assert f"{bad}:2: [thresholds] ad.meen: unknown metric" in " ".join(err.split())


def test_pyproject_policy_errors_name_the_tool_table(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.gaussaudit.thresholds]\nnorm_cv = "<< 1"\n')
    with pytest.raises(GaussAuditError, match=r"pyproject.toml:5: \[tool.gaussaudit.thresholds\] norm_cv"):
        load_policy(path)


def test_every_gate_metric_is_in_a_default_report():
    """Each metric a policy may name is where GATE_METRICS says in the JSON
    report of a default scan (with projections and calibration)."""
    from gaussaudit import audit

    document = audit(_gaussian(5)[:500]).to_dict()
    missing = [name for name, metric in GATE_METRICS.items() if metric.value(document) is None]
    assert missing == [], missing


@pytest.mark.parametrize("args, says", [
    (["gate", "nope.npy"], "nope.npy"),
    (["gate", "same.npy", "--baseline", "missing.json"], "missing.json: no such JSON report"),
    (["gate", "same.npy", "--baseline", "garbage.json"], "is not valid JSON"),
    (["gate", "same.npy", "--baseline", "other.json"], "is not a gaussaudit scan report"),
    (["gate", "same.npy", "baseline.json"], "give one JSON report, or embeddings"),
    (["gate", "baseline.json", "--html", "x.html"], "is a JSON report"),
    (["gate", "same.npy", "--junit", "same.npy"], "is one of the inputs"),
])
def test_bad_gate_input_is_a_message_and_exit_2(release, args, says):
    (release / "garbage.json").write_text("{not json")
    (release / "other.json").write_text('{"schema": "something/1"}')
    rc, out, err = run_cli(*args, "--policy", release / "gaussaudit.toml", cwd=release)
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    assert says in " ".join(err.split())


def test_tolerances_without_a_baseline_is_an_error(release):
    rc, _, err = run_cli("gate", "same.npy", cwd=release)
    assert rc == 2
    assert "sets tolerances against a baseline" in err


def test_gate_library_api_without_files():
    rng = np.random.default_rng(0)
    # raw rows: normalised rows of 16 dimensions have Beta-shaped coordinates, which fail per-coordinate limits
    policy = parse_policy({"scan": {"normalize": False}, "thresholds": {"ad.pass_fraction": ">= 90%"},
                           "tolerances": {"dp.pass_fraction": 0.2}})
    result = gate(rng.standard_normal((1500, 16)), rng.standard_normal((1500, 16)), policy=policy)
    assert result.passed and len(result.checks) == 4
    assert json.loads(json.dumps(result.to_dict()))["schema"] == "gaussaudit.gate/1"


# ----------------------------------------------------------------------------
# the composite GitHub Action, its shell steps run here as the runner would run them


def _action_steps():
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "action.yml").read_text())


def _expand(text: str, inputs: dict) -> str:
    return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: inputs[m.group(1)], text)


def test_action_runs_locally(release, tmp_path):
    action = _action_steps()
    inputs = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    inputs.update(candidate=str(release / "heavy.npy"), baseline=str(release / "baseline.json"),
                  policy=str(release / "gaussaudit.toml"))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    output, summary = workspace / "github_output", workspace / "step_summary"
    bin_dir = Path(sys.executable).parent
    base_env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_ACTION_PATH": str(ROOT), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    statuses = {}
    for step in action["runs"]["steps"]:
        if "uses" in step:
            # actions/upload-artifact cannot run here: the files it uploads must exist
            paths = [p.strip() for p in _expand(step["with"]["path"], inputs).splitlines() if p.strip()]
            assert all((workspace / p).is_file() for p in paths), paths
            continue
        env = {**base_env, **{k: _expand(str(v), inputs) for k, v in step.get("env", {}).items()}}
        script = step["run"]
        if step["id"] == "install":
            # installing would replace this test environment's gaussaudit: ask pip what it would do instead
            env.update(PIP_DRY_RUN="1", PIP_NO_DEPS="1", PIP_NO_BUILD_ISOLATION="0", PIP_NO_INDEX="1")
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=workspace, env=env, capture_output=True, text=True,
                              timeout=300)
        statuses[step["id"]] = proc.returncode
        if step["id"] == "install":
            assert proc.returncode == 0, proc.stderr
            assert "Would install gaussaudit" in proc.stdout, proc.stdout
    assert statuses["gate"] == 1  # the heavy-tailed release fails its gate, and the step fails
    assert "passed=false" in output.read_text() and "json=gaussaudit-gate.json" in output.read_text()
    assert "gate FAILED" in summary.read_text()
    document = json.loads((workspace / "gaussaudit-gate.json").read_text())
    assert document["passed"] is False
    assert (workspace / inputs["html"]).read_text().lstrip().lower().startswith("<!doctype html")


# ----------------------------------------------------------------------------
# drift: the same model on new data


@pytest.fixture(scope="module")
def drift_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(11)
    scale = np.linspace(2.0, 0.5, 24)
    np.save(root / "reference.npy", (rng.standard_normal((3000, 24)) * scale).astype(np.float32))
    np.save(root / "today.npy", (rng.standard_normal((3000, 24)) * scale).astype(np.float32))
    moved = rng.standard_normal((3000, 24)) * scale
    moved[:, :3] *= 1.3  # the leading directions spread out
    np.save(root / "moved.npy", moved.astype(np.float32))
    return root


def test_drift_cli_same_law_and_moved(drift_sets):
    rc, out, err = run_cli("drift", "reference.npy", "today.npy", "--json", "-", "--check", cwd=drift_sets)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "gaussaudit.drift/1" and doc["drifted"] is False and doc["rows"] == "unnormalised"
    assert doc["frechet"]["p_value"] > 0.05 and doc["frechet"]["distance"] <= doc["frechet"]["null_quantile"]
    # no drift: the KL of the fits is what estimation error alone gives
    assert doc["kl"]["reference_to_current"] == pytest.approx(doc["kl"]["null_mean"]["reference_to_current"], rel=0.5)
    assert doc["gaussianity"]["both_gaussian"] is True
    assert "holds its level" in doc["notes"][0]
    rc, out, err = run_cli("drift", "reference.npy", "moved.npy", "--check", cwd=drift_sets)
    assert rc == 1, err
    assert "DRIFT" in out


def test_drift_of_non_gaussian_sets_says_the_closed_forms_are_bounds(tmp_path):
    rng = np.random.default_rng(4)
    np.save(tmp_path / "a.npy", rng.standard_t(3, (2000, 16)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.standard_t(3, (2000, 16)).astype(np.float32))
    rc, out, err = run_cli("drift", "a.npy", "b.npy", "--json", "-", cwd=tmp_path)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["gaussianity"]["both_gaussian"] is False
    assert "only a lower bound" in doc["notes"][0] and "Gelbrich" in doc["notes"][0]
    rc, out, err = run_cli("drift", "a.npy", "b.npy", "--normalize", "--json", "-", cwd=tmp_path)
    assert "L2-normalised" in json.loads(out)["notes"][0]


def test_gate_drift_check_from_the_policy(drift_sets, tmp_path):
    policy = tmp_path / "drift.toml"
    policy.write_text("[gate]\nverdict = \"none\"\n\n[drift]\nenabled = true\nalpha = 0.05\npermutations = 39\n")
    rc, doc, err = _gate_json(drift_sets, "today.npy", "--baseline", "reference.npy", "--policy", policy)
    assert rc == 0, err
    assert [c["name"] for c in doc["checks"]] == ["drift: Fréchet distance"]
    assert doc["drift"]["n_reference"] == 3000
    rc, doc, err = _gate_json(drift_sets, "moved.npy", "--baseline", "reference.npy", "--policy", policy)
    assert rc == 1 and _failed(doc) == {"drift: Fréchet distance"}
    # drift compares rows: a JSON report cannot stand in for them
    rc, _, err = run_cli("gate", "today.npy", "--baseline", "x.json", "--policy", policy, cwd=drift_sets)
    assert rc == 2 and "compares the rows themselves" in err


def test_gate_drift_check_size_by_simulation():
    """Undrifted candidates (the same law as the baseline, Gaussian and heavy-tailed)
    fail the gate's one drift check at about alpha: 400 replicates each."""
    from scipy.stats import binomtest

    from gaussaudit.gate.drift import drift_checks

    policy = parse_policy({"gate": {"verdict": "none"}, "drift": {"enabled": True, "permutations": 19, "sample": 0},
                           "scan": {"calibrate": 0, "projections": 0, "pca_projections": 0, "mv_sample": 0}})
    for law in ("gaussian", "t3"):
        failures = 0
        reps = 400
        for r in range(reps):
            rng = np.random.default_rng([r, 7])
            draw = (lambda n: rng.standard_normal((n, 4))) if law == "gaussian" else (lambda n: rng.standard_t(3, (n, 4)))
            result = gate(draw(60), draw(80), policy=policy)
            failures += not result.passed
            assert [c.name for c in result.checks][-1] == drift_checks(result.drift)[0].name
        low, high = binomtest(failures, reps).proportion_ci()
        assert low <= 0.05 <= high, (law, failures)
