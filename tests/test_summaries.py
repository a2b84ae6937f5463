"""The summary registry (gaussaudit.stats.summaries): each summary equals its
definition on the per-feature tests, and every consumer — the report's
attributes, the paper columns, the projections, the JSON report, the paper
table of the terminal, markdown and HTML, the null bands — takes it from there."""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from scipy import stats as sps

from gaussaudit import audit
from gaussaudit.analysis import BAND_METRICS
from gaussaudit.report.html import render_html
from gaussaudit.report.markdown import render_markdown
from gaussaudit.report.table import PAPER_ROWS
from gaussaudit.stats import feature_normality
from gaussaudit.stats.headline import ViewStatistics
from gaussaudit.stats.summaries import (
    DP_ALPHA,
    RULE_SUMMARIES,
    SUMMARIES,
    TABLE_SUMMARIES,
    paper_rule,
    summarise,
)


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.standard_normal((1500, 6)), rng.laplace(size=(1500, 4)), np.zeros((1500, 1))])
    return audit(x, calibrate=19, mv_sample=0, projections=16, pca_projections=4, threads=1)


def _get(tree: dict, key: str):
    for part in key.split("."):
        tree = tree[part]
    return tree


def test_each_summary_is_its_definition():
    """The registry's values against scipy on the same features (the constant one left out)."""
    rng = np.random.default_rng(0)
    x = np.vstack([rng.standard_normal((5, 400)), rng.exponential(size=(3, 400)), np.zeros((1, 400))])
    values = summarise(feature_normality(x, axis=1))
    rows = x[:8]
    method = {"method": "interpolate"} if "method" in inspect.signature(sps.anderson).parameters else {}
    a2 = np.array([sps.anderson(r, **method).statistic for r in rows])
    p = np.array([sps.normaltest(r).pvalue for r in rows])
    n = x.shape[1]
    expected = {
        "ad.mean": a2.mean(), "ad.median": np.median(a2),
        "ad.pass_fraction": np.mean(a2 * (1 + 0.75 / n + 2.25 / n**2) < 0.752),
        "dp.mean_p": p.mean(), "dp.median_p": np.median(p), "dp.pass_fraction": np.mean(p > DP_ALPHA),
        "moments.skewness.median": np.median(sps.skew(rows, axis=1)),
        "moments.skewness.median_abs": np.median(np.abs(sps.skew(rows, axis=1))),
        "moments.excess_kurtosis.median": np.median(sps.kurtosis(rows, axis=1)),
        "moments.excess_kurtosis.median_abs": np.median(np.abs(sps.kurtosis(rows, axis=1))),
    }
    assert set(values) == set(expected) == {s.key for s in SUMMARIES}
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key


def test_all_constant_features_give_nan_without_warnings():
    with np.errstate(all="raise"):
        values = summarise(feature_normality(np.ones((3, 50)), axis=1))
    assert all(np.isnan(v) for v in values.values())


def test_paper_rule_is_its_clauses():
    gaussian, clauses = paper_rule({"ad.mean": 0.5, "dp.mean_p": 0.2})
    assert gaussian and [s.key for s, _, _ in clauses] == ["ad.mean", "dp.mean_p"]
    assert not paper_rule({"ad.mean": 0.752, "dp.mean_p": 0.2})[0]  # strict: A² < 0.752
    assert not paper_rule({"ad.mean": 0.1, "dp.mean_p": 0.05})[0]  # strict: p > 0.05
    assert [s.key for s in RULE_SUMMARIES] == ["ad.mean", "dp.mean_p"]


def test_every_consumer_reads_the_registry(report):
    d = report.to_dict()
    tested = ~report.features.constant
    assert not tested.all()  # the constant feature is left out of every summary
    for s in SUMMARIES:
        assert getattr(report, s.attr) == report.metrics[s.key]
        assert _get(d["metrics"], s.key) == pytest.approx(report.metrics[s.key], rel=0, abs=0)
        for name, column in report.paper_columns.items():
            assert getattr(column, s.attr) == column.metrics[s.key]
    assert report.metrics == summarise(report.features)
    for s in TABLE_SUMMARIES:
        for name, column in report.paper_columns.items():
            assert _get(d["metrics"]["paper_table"][name], s.key) == column.metrics[s.key]
        for p in (report.projections_random, report.projections_pca):
            assert getattr(p, s.attr) == summarise(p.tests)[s.key]
            assert _get(d["metrics"]["projections"][p.kind], s.key) == p.metrics[s.key]
    verdict = report.paper_columns["unnormalised"].verdict
    assert [c.name for c in verdict.conditions] == [s.rule_name for s in RULE_SUMMARIES] == ["AD mean A²", "DP mean p"]


def test_every_table_summary_is_a_row_of_every_view(report):
    labels = [row.label for row in PAPER_ROWS]
    assert labels == ["CV", "AD Avg. (< 0.752)", "AD Norm. Feat.", "DP Avg. (> 0.05)", "DP Norm. Feat.",
                      "Gaussian?", "Headline test"]
    markdown = render_markdown([("x", report)])
    html = render_html([("x", report)], images=[[]])
    for s in TABLE_SUMMARIES:
        assert s.table_label in markdown
        assert s.table_label.replace("<", "&lt;").replace(">", "&gt;") in html


def test_bands_name_summaries_the_surrogates_give():
    view_fields = {f.name for f in dataclasses.fields(ViewStatistics)}
    assert set(BAND_METRICS.values()) <= view_fields
    assert set(BAND_METRICS) == {"dp.mean_p", "dp.pass_fraction", "skewness.median_abs", "excess_kurtosis.median_abs"}


def test_unknown_attribute_is_an_attribute_error(report):
    with pytest.raises(AttributeError, match="no attribute 'ad_maen'"):
        report.ad_maen
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(report)).ad_mean == copy.copy(report).ad_mean == report.ad_mean


#: A statistic added the way a maintainer would: one entry in the registry's source.
NEW_ENTRY = '''    Summary("dp.min_p", "dp_min_p", lambda f: f.dp.pvalue, lambda v: float(np.min(v)), label="DP Min.",
            short="DP Min.", reference="≈ 1/(d+1)", table=True),
'''

ADD_AND_SCAN = r'''
import importlib.abc, importlib.machinery, sys
ANCHOR = "SUMMARIES: tuple[Summary, ...] = (\n"

class EditedRegistry(importlib.abc.Loader):
    # gaussaudit.stats.summaries from its file, with the new entry in its source
    def __init__(self, origin):
        self.origin = origin
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        source = open(self.origin).read()
        assert ANCHOR in source
        exec(compile(source.replace(ANCHOR, ANCHOR + sys.argv[1]), self.origin, "exec"), module.__dict__)

class Finder:
    def find_spec(self, name, path, target=None):
        if name != "gaussaudit.stats.summaries":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = EditedRegistry(spec.origin)
        return spec

sys.meta_path.insert(0, Finder())
from gaussaudit.cli import main
sys.argv = ["gaussaudit", *sys.argv[2:]]
main()
'''


def test_a_new_summary_reaches_every_view(tmp_path):
    """Adding one Summary entry (and nothing else) puts it in the JSON report,
    the report's attributes and the paper table of terminal and markdown."""
    import json
    import subprocess
    import sys

    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((500, 16)))

    def scan(*args):
        proc = subprocess.run([sys.executable, "-c", ADD_AND_SCAN, NEW_ENTRY, "scan", "x.npy", "--calibrate", "0",
                               "--mv-sample", "0", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    report = json.loads(scan("--json", "-", "-q"))
    p = audit(np.load(tmp_path / "x.npy"), calibrate=0, mv_sample=0).features.dp.pvalue
    assert report["metrics"]["dp"]["min_p"] == pytest.approx(float(np.min(p)), rel=1e-12)
    assert set(report["metrics"]["paper_table"]["normalised"]["dp"]) == {"mean_p", "pass_fraction", "min_p"}
    assert "min_p" in report["metrics"]["projections"]["random"]["dp"]
    assert any(line.lstrip().startswith("DP Min.") for line in scan().splitlines())
    assert "| DP Min. |" in scan("--markdown", "-", "-q")
