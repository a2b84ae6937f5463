"""What a user sees: markdown, the self-contained HTML report (checked in a real
headless browser), PNG figures, the terminal's inline histograms, and the
figure options without matplotlib."""
from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import CLI_TIMEOUT, gaussian_embeddings, laplace_embeddings, run_cli, run_cli_many

# scans run random and principal projections by default, so their QQ figures come too; the
# covariance they need gives the eigen-spectrum figure
FIGURES = ("qq", "qq_random", "qq_pca", "norms", "pvalues", "ad_null", "spectrum")
#: Every section a default scan computes, in report order.
SECTIONS = ("headline", "effect_sizes", "projections", "joint", "uniformity", "spectrum", "null_bands", "notes")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A pixel is "in colour" when its channels differ by more than this: the
#: figures' bars and points are; text, rules and the white page are not.
SATURATION = 60


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    np.save(root / "gauss.npy", gaussian_embeddings(2000, 128))
    np.save(root / "laplace.npy", laplace_embeddings(2000, 32))
    return root


@pytest.fixture(scope="module")
def rendered(files, tmp_path_factory):
    """One scan and one compare with every output, run once for the module."""
    out = tmp_path_factory.mktemp("rendered")
    results = run_cli_many(
        [["scan", "gauss.npy", "--html", out / "scan.html", "--plots", out / "figs", "--json", out / "scan.json"],
         ["compare", "laplace.npy", "gauss.npy", "--label", "supervised", "--label", "contrastive",
          "--html", out / "compare.html", "--plots", out / "cmp_figs", "-q"]],
        cwd=files,
    )
    for rc, stdout, stderr in results:
        assert rc == 0, stderr
    return out, results


def read_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes into an (h, w, channels) uint8 array."""
    import io

    import matplotlib.image as mpimg

    assert data[:8] == PNG_SIGNATURE
    return np.round(mpimg.imread(io.BytesIO(data), format="png") * 255).astype(np.uint8)


def _image_stats(pixels: np.ndarray) -> tuple[int, int]:
    """(distinct colours, pixels in colour). A page of text and tables has a few
    hundred colours (anti-aliasing) and a few hundred coloured pixels (the green
    and red of the verdict); each figure adds tens of thousands."""
    rgb = pixels[..., :3].reshape(-1, 3).astype(np.int32)
    distinct = len(np.unique(rgb @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)))
    coloured = int(((rgb.max(axis=1) - rgb.min(axis=1)) > SATURATION).sum())
    return distinct, coloured


def test_scan_html_is_self_contained_with_every_figure(rendered):
    out, _ = rendered
    page = (out / "scan.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing to fetch: no remote src/href, no stylesheet links, no scripts
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page.lower() and "<script" not in page.lower() and "@import" not in page
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', page)
    assert len(images) == len(FIGURES) == page.count("<img")
    for data, alt in images:
        pixels = read_png(base64.b64decode(data))
        assert pixels.shape[1] >= 500, alt
    # the paper table with the JSON's numbers, and the verdict
    report = json.loads((out / "scan.json").read_text(encoding="utf-8"))
    assert f"<td>{report['metrics']['paper_table']['unnormalised']['ad']['mean']:.3f}</td>" in page.replace(' class="pass"', "")
    for label in ("CV", "AD Avg. (&lt; 0.752)", "AD Norm. Feat.", "DP Avg. (&gt; 0.05)", "DP Norm. Feat.", "Gaussian?"):
        assert f"<td>{label}</td>" in page, label
    assert "<strong>Gaussian</strong>" in page and "@media print" in page


def test_plots_folder_has_each_figure_and_refuses_to_overwrite(rendered, files):
    out, _ = rendered
    assert sorted(p.name for p in (out / "figs").iterdir()) == sorted(f"{f}.png" for f in FIGURES)
    for name in FIGURES:
        distinct, coloured = _image_stats(read_png((out / "figs" / f"{name}.png").read_bytes()))
        assert distinct > 50 and coloured > 2000, (name, distinct, coloured)  # drawn, not blank
    assert sorted(p.name for p in (out / "cmp_figs").iterdir()) == sorted(
        f"{label}-{f}.png" for label in ("supervised", "contrastive") for f in FIGURES)
    before = (out / "figs" / "qq.png").stat().st_mtime_ns
    (rc, stdout, err), (rc2, _, err2), (rc3, _, err3), (rc4, _, err4), (rc5, _, err5) = run_cli_many(
        [["scan", "gauss.npy", "--plots", out / "figs"],
         ["scan", "gauss.npy", "--html", out / "scan.html", "-q"],
         ["scan", "gauss.npy", "--plots", out / "figs", "--overwrite", "-q", "-n", "500"],
         ["scan", "gauss.npy", "--plots", out / "scan.json"],
         ["scan", "gauss.npy", "--html", out / "same.out", "--markdown", out / "same.out"]],
        cwd=files,
    )
    assert rc == 2 and stdout == "" and "already exists" in err and "--overwrite" in err and ".png" in err, err
    assert rc2 == 2 and "scan.html" in err2 and "already exists" in err2, err2
    assert rc3 == 0, err3
    assert rc4 == 2 and "scan.json" in err4 and "is a file" in err4, err4
    assert rc5 == 2 and "--markdown" in err5 and "--html" in err5 and not (out / "same.out").exists(), err5
    assert (out / "figs" / "qq.png").stat().st_mtime_ns != before


def test_compare_html_has_both_inputs(rendered):
    out, results = rendered
    assert results[1][1] == ""  # -q
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert "<th>supervised</th><th>contrastive</th>" in page
    assert page.count('<img src="data:image/png;base64,') == 2 * len(FIGURES)
    assert '<td class="fail">✗</td><td class="pass">✓</td>' in page
    # side by side: each section and each figure is one grid row holding both inputs, in order
    row_end = r'(?=</section>|<div class="side"|</main>|\s*</main>)'
    rows = re.findall(r'<div class="side" style="--inputs: 2">(.*?)</div></div>' + row_end, page, re.S)
    assert len(rows) >= len(SECTIONS) + len(FIGURES), len(rows)
    for row in rows:
        assert 0 <= row.index("<h3>supervised</h3>") < row.index("<h3>contrastive</h3>"), row[:300]
    for key in SECTIONS:
        assert page.count(f'<section id="section-{key}">') == 1, key


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_html_renders_in_a_headless_browser(rendered, tmp_path):
    """Open the report in chromium: every figure decodes and the page shows them."""
    browser = _browser()
    if browser is None:
        if os.environ.get("GAUSSAUDIT_REQUIRE_BROWSER"):
            pytest.fail("no chromium on PATH; .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium on PATH (CI installs it and sets GAUSSAUDIT_REQUIRE_BROWSER)")
    out, _ = rendered
    # A copy with a probe that records, once the page has loaded, how each image
    # decoded; the shipped report has no script at all.
    probe = ("<script>addEventListener('load', () => { document.body.dataset.images = "
             "[...document.images].map(i => i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight).join(' '); });"
             "</script></body>")
    page = (out / "scan.html").read_text(encoding="utf-8").replace("</body>", probe)
    probed = tmp_path / "probed.html"
    probed.write_text(page, encoding="utf-8")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--hide-scrollbars", "--window-size=1200,6000", "--virtual-time-budget=5000"]
    shot = tmp_path / "page.png"
    subprocess.run([*common, f"--user-data-dir={tmp_path / 'profile1'}", f"--screenshot={shot}",
                    probed.as_uri()], capture_output=True, timeout=CLI_TIMEOUT, check=True)
    dom = subprocess.run([*common, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", probed.as_uri()],
                         capture_output=True, timeout=CLI_TIMEOUT, check=True).stdout.decode("utf-8", "replace")
    for key in SECTIONS:  # every section the terminal prints, in the page the browser built
        assert f'<section id="section-{key}">' in dom, key
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == len(FIGURES) and all('src="data:image/png;base64,' in i for i in images)
    states = re.search(r'data-images="([^"]*)"', dom)
    assert states, "the page's load event did not run"
    for state in states.group(1).split():
        complete, size = state.split(":")
        width, height = map(int, size.split("x"))
        assert complete == "true" and width >= 500 and height >= 300, state
    pixels = read_png(shot.read_bytes())
    assert pixels.shape[:2] == (6000, 1200)
    distinct, coloured = _image_stats(pixels)
    # The same page without its images: ~700 colours, ~600 coloured pixels.
    assert distinct > 1000 and coloured > 20_000, (distinct, coloured)
    # figures lower down the page too (below the sections), not only the first
    assert _image_stats(pixels[3500:])[1] > 5000


def test_markdown_to_stdout_and_file(files, tmp_path):
    (rc, out, err), (rc2, out2, err2), (rc3, _, err3) = run_cli_many(
        [["scan", "laplace.npy", "--markdown", "-", "--json", tmp_path / "r.json"],
         ["scan", "gauss.npy", "--markdown", tmp_path / "r.md"],
         ["scan", "gauss.npy", "--markdown", "-", "--json", "-"]],
        cwd=files,
    )
    assert rc == 0, err
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    lines = out.splitlines()
    # only markdown on stdout: a heading, then the paper's Table 2 pair
    assert lines[:4] == ["# gaussaudit scan · laplace.npy", "", "| Metric | unnormalised | normalised |",
                         "|---|---:|---:|"]
    table = report["metrics"]["paper_table"]
    assert (f"| AD Avg. (< 0.752) | {table['unnormalised']['ad']['mean']:.3f} | "
            f"{table['normalised']['ad']['mean']:.3f} |") in lines
    assert "| **Gaussian?** | ✗ | ✗ |" in lines and "Metric   " not in out
    assert rc2 == 0 and "Gaussian?" in out2, err2  # a file: the terminal table still shows
    assert "| **Gaussian?** | ✓ | ✓ |" in (tmp_path / "r.md").read_text(encoding="utf-8")
    assert rc3 == 2 and "--json and --markdown" in err3 and "stdout" in err3, err3


def _chart(stdout: str, title_start: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(title_start))
    return [line.strip("\n") for line in lines[start + 1 : start + 4]]


def test_terminal_shows_inline_histograms(files):
    (rc, out, err), (rc2, out2, err2) = run_cli_many([["scan", "gauss.npy"], ["scan", "laplace.npy"]], cwd=files)
    assert rc == rc2 == 0, err + err2
    for stdout in (out, out2):
        for title in ("row norms", "DP p-values"):
            bars = _chart(stdout, title)
            assert len(bars) == 3
            assert all(set(b.strip()) <= set("▁▂▃▄▅▆▇█ ") and b.strip() for b in bars), bars
    # Laplace features all fail: every p-value sits in the first column, full height.
    top = _chart(out2, "DP p-values")[0].strip()
    assert top.startswith("██") and set(top[2:]) <= {" "}, top
    assert "32 below 0.05" in out2
    # Gaussian features: p-values spread across the whole range.
    bottom = _chart(out, "DP p-values")[-1].strip()
    assert len(bottom) >= 36 and bottom.count(" ") <= 6, bottom



def test_explanations_follow_their_marks(files):
    """Each explanation under the projections and the joint tests is printed
    only when the row it explains failed: a Gaussian input that passes
    everything gets no "fails:" line, i.i.d. Laplace features get them."""
    (rc, out, err), (rc2, out2, err2) = run_cli_many(
        [["scan", "gauss.npy", "--no-normalize"], ["scan", "laplace.npy", "--no-normalize"]], cwd=files)
    assert rc == rc2 == 0, err + err2
    seen_fail = False
    for stdout in (out, out2):
        lines = stdout.splitlines()
        for kind, label in (("random", "random ("), ("pca", "principal (top")):
            row = next(line for line in lines if line.lstrip().startswith(label))
            failed = row.rstrip().endswith("✗")
            assert row.rstrip()[-1] in "✓✗", row
            assert (f"{'random' if kind == 'random' else 'principal'} fails:" in stdout) == failed, stdout
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Joint Gaussianity"))
        block = lines[start + 2 : start + 7]  # the five tests under the header row
        assert all(line.rstrip()[-1] in "✓✗" for line in block), block
        joint_failed = any(line.rstrip().endswith("✗") for line in block)
        assert ("✗: not jointly Gaussian" in stdout) == joint_failed, stdout
        assert ("all pass: no joint departure" in stdout) == (not joint_failed), stdout
        seen_fail |= joint_failed
    assert seen_fail, out2  # Laplace features fail the joint tests


BLOCK_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None; "  # `import matplotlib` now raises ImportError
    "from gaussaudit.cli import main; sys.argv[0] = 'gaussaudit'; main()"
)


def test_without_matplotlib_figure_options_exit_2_and_the_rest_works(files, tmp_path):
    def run(*args):
        return run_cli(*args, cwd=files, exe=[sys.executable, "-c", BLOCK_MATPLOTLIB])

    # the wrapper really hides matplotlib
    probe = subprocess.run([sys.executable, "-c", "import sys; sys.modules['matplotlib'] = None\n"
                            "try:\n import matplotlib\nexcept ImportError:\n print('blocked')"],
                           capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert probe.stdout.strip() == "blocked"
    for args, option in ((["scan", "gauss.npy", "--html", tmp_path / "r.html"], "--html"),
                         (["compare", "gauss.npy", "--plots", tmp_path / "figs"], "--plots"),
                         (["track", "gauss_step1.npy", "--plot", tmp_path / "t.png"], "--plot")):
        if args[0] == "track":
            shutil.copy(files / "gauss.npy", files / "gauss_step1.npy")
        rc, out, err = run(*args)
        assert rc == 2 and out == "" and "Traceback" not in err, err
        assert option in err and "pip install 'gaussaudit[plot]'" in err, err
    assert not any(tmp_path.iterdir())  # refused before anything was written
    rc, out, err = run("scan", "laplace.npy", "--markdown", "-")
    assert rc == 0 and out.startswith("# gaussaudit scan · laplace.npy"), err
    rc, out, err = run("scan", "gauss.npy")
    assert rc == 0 and "row norms" in out and "█" in out, err  # inline histograms need no matplotlib
    rc, out, err = run("track", "gauss_step1.npy", "--json", "-")
    assert rc == 0 and json.loads(out)["points"][0]["step"] == 1, err


EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def test_every_view_shows_every_section(files, tmp_path):
    """Terminal, markdown and HTML each render every section the scan computed
    (the library's list), with the same numbers; a section left out of one view
    fails here."""
    from gaussaudit import audit
    from gaussaudit.report.sections import report_sections

    sections = report_sections(audit(str(files / "laplace.npy")))
    assert tuple(s.key for s in sections) == SECTIONS
    (rc, term, err), (rc2, md, err2), (rc3, _, err3) = run_cli_many(
        [["scan", "laplace.npy"], ["scan", "laplace.npy", "--markdown", "-"],
         ["scan", "laplace.npy", "--html", tmp_path / "r.html", "-q"]], cwd=files)
    assert rc == rc2 == rc3 == 0, err + err2 + err3
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    joined_terminal = " ".join(term.split())
    for s in sections:
        assert f"### {s.title}" in md, s.key
        assert f'<section id="section-{s.key}"><h2>{html.escape(s.title)}</h2>' in page, s.key
        assert s.title in term, s.key
        for row in s.rows:  # every cell's text, in every view
            for cell in row:
                assert " ".join(cell.text.split()) in joined_terminal, (s.key, cell.text)
                assert cell.text.replace("|", "\\|") in md, (s.key, cell.text)
                assert f">{html.escape(cell.text)}</td>" in page, (s.key, cell.text)


def test_small_numbers_never_print_as_zero():
    """The shipped supervised example's DP Avg. is ~1e-27: every view writes it
    in scientific notation, and no view prints a nonzero value as 0.000."""
    path = os.path.join(EXAMPLES, "supervised_like.parquet")
    from gaussaudit import audit

    report = audit(path)
    tiny = report.paper_columns["normalised"].dp_mean_p
    assert 0 < tiny < 1e-20
    expected = f"{tiny:.2e}"
    (rc, term, err), (rc2, md, err2) = run_cli_many([["scan", path], ["scan", path, "--markdown", "-"]])
    assert rc == rc2 == 0, err + err2
    for view in (term, md):
        assert expected in view
        assert not re.search(r"(?<![\d.])[-+]?0\.000(?![\d%])", view), re.findall(r".{30}0\.000.{10}", view)


def test_terminal_fits_its_width(files):
    """At 80 columns (CI logs, pipes) no line of the report is wider, and at 160
    no table row wraps (each projection label stays on its line)."""
    for width in (80, 160):
        rc, out, err = run_cli("scan", "laplace.npy", cwd=files, env={"COLUMNS": str(width)})
        assert rc == 0, err
        lines = out.splitlines()
        assert max(len(line) for line in lines) <= width
        assert any(line.lstrip().startswith("principal (top") and line.rstrip()[-1] in "✓✗" for line in lines)
