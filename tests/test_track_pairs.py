"""``gaussaudit track ... --pairs A B`` as a user types it: the paired-embedding
measurements of ``gaussaudit pairs`` at each step of a run, checked against a
direct numpy computation on steps whose alignment is known."""
from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

from gaussaudit.compare import track_pairs
from gaussaudit.errors import GaussAuditError
from gaussaudit.stats.pairs import uniform_sphere_uniformity

from conftest import run_cli_many, save_npy

#: The channel B = ρ·x + √(1 − ρ²)·ε of each step: alignment rises along training.
RHOS = {2: 0.1, 10: 0.4, 30: 0.7, 100: 0.9}
#: The step whose folder lacks B.
BROKEN = 50
N, D = 150, 12


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _alignment(a: np.ndarray, b: np.ndarray) -> float:
    """mean_i u_i·v_i of the normalised rows."""
    return float(np.mean(np.sum(_unit(a) * _unit(b), axis=1)))


def _uniformity(a: np.ndarray, b: np.ndarray, tau: float) -> float:
    """mean_i log mean_{j≠i} exp(u_i·v_j/τ): each row against the other side's rows but its own pair."""
    u, v = _unit(a), _unit(b)
    e = np.exp(u @ v.T / tau)
    np.fill_diagonal(e, 0.0)
    return float(np.mean(np.log(e.sum(axis=1) / (len(u) - 1))))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Step folders ``step_2/`` … ``step_100/`` (lexical order is not numeric order),
    each with view1.npy = x ~ N(0, I) and view2.npy = ρ·x + √(1 − ρ²)·ε; ``step_50/``
    lacks view2.npy. Small n, so every row enters the uniformity sums."""
    root = tmp_path_factory.mktemp("track_pairs") / "run"
    rng = np.random.default_rng(7)
    data = {}
    for step, rho in RHOS.items():
        x = rng.standard_normal((N, D))
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((N, D))
        save_npy(root / f"step_{step}" / "view1.npy", x)
        save_npy(root / f"step_{step}" / "view2.npy", y)
        data[step] = (x, y)
    save_npy(root / f"step_{BROKEN}" / "view1.npy", rng.standard_normal((N, D)))
    (root / "_SUCCESS").write_text("")
    return root, data


def test_alignment_rises_and_every_measurement_matches_numpy(run, tmp_path):
    root, data = run
    step_10 = root / "step_10"
    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3), (rc4, out4, err4) = run_cli_many([
        ["track", root, "--pairs", "view1.npy", "view2.npy", "--json", tmp_path / "t.json",
         "--plot", tmp_path / "along.png"],
        ["track", root, "--pairs", "view1.npy", "view2.npy", "--temperature", "0.5", "--json", "-"],
        ["pairs", step_10 / "view1.npy", step_10 / "view2.npy", "--json", "-"],
        ["track", step_10, root / "step_2", "--pairs", "view1.npy", "view2.npy", "--json", "-"],
    ])
    assert rc == 0, err  # a step missing B is skipped, not fatal
    doc = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert list(doc) == ["schema", "settings", "points", "skipped"] and doc["schema"] == "gaussaudit.track-pairs/1"
    assert doc["settings"]["a"] == "view1.npy" and doc["settings"]["b"] == "view2.npy"
    assert doc["settings"]["temperature"] == 0.1
    assert [p["step"] for p in doc["points"]] == sorted(RHOS)
    alignments = []
    for p in doc["points"]:
        x, y = data[p["step"]]
        m = p["pairs"]
        assert p["a"].endswith(f"step_{p['step']}/view1.npy") and p["b"].endswith(f"step_{p['step']}/view2.npy")
        assert p["n"] == N and p["dim"] == D and m["uniformity_rows"] == N
        assert m["alignment"] == pytest.approx(_alignment(x, y), abs=1e-10)
        assert m["uniformity"] == pytest.approx(_uniformity(x, y, 0.1), abs=1e-10)
        assert m["uniformity_reference"] == pytest.approx(uniform_sphere_uniformity(D, 10.0), rel=1e-12)
        mean_u, mean_v = _unit(x).mean(axis=0), _unit(y).mean(axis=0)
        assert m["mean_norm_sq"]["a"] == pytest.approx(float(mean_u @ mean_u), abs=1e-12)
        assert m["mean_norm_sq"]["b"] == pytest.approx(float(mean_v @ mean_v), abs=1e-12)
        assert m["modality_gap"] == pytest.approx(float(np.linalg.norm(mean_u - mean_v)), abs=1e-12)
        assert m["eta2_lower"] is not None and m["eta2_lower"] <= m["alignment"] + 0.05
        alignments.append(m["alignment"])
    assert alignments == sorted(alignments) and alignments[-1] > 0.75 > 0.2 > alignments[0]

    # the missing side: skipped, with its reason, in the JSON and on stderr
    assert [s["step"] for s in doc["skipped"]] == [BROKEN]
    assert "view2.npy" in doc["skipped"][0]["error"] and f"step_{BROKEN}" in doc["skipped"][0]["error"]
    assert f"step {BROKEN} skipped" in err and "view2.npy" in err and "Traceback" not in err

    # the terminal table: one row per measured step, in step order
    rows = [line.split() for line in out.splitlines() if re.match(r"\s*\d+\s+\d", line)]
    assert [r[0] for r in rows] == [str(s) for s in sorted(RHOS)], out
    assert [float(r[2]) for r in rows] == pytest.approx(alignments, abs=1e-4)
    assert "view1.npy ↔ view2.npy" in out and f"skipped: step {BROKEN}" in out

    png = (tmp_path / "along.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 300

    # --temperature reaches every step
    assert rc2 == 0, err2
    for p in json.loads(out2)["points"]:
        x, y = data[p["step"]]
        assert p["pairs"]["uniformity_temperature"] == 0.5
        assert p["pairs"]["uniformity"] == pytest.approx(_uniformity(x, y, 0.5), abs=1e-10)

    # a step measures what gaussaudit pairs measures on its two files
    assert rc3 == 0, err3
    point = next(p for p in doc["points"] if p["step"] == 10)
    assert point["pairs"] == json.loads(out3)["pairs"]

    # step folders named on their own are steps, in step order
    assert rc4 == 0 and err4 == "", err4
    assert [p["step"] for p in json.loads(out4)["points"]] == [2, 10]


def test_library_track_pairs_and_a_file_step_skipped(run, tmp_path):
    root, data = run
    stray = save_npy(tmp_path / "emb_7.npy", np.ones((30, D)))
    result = track_pairs([root / "step_30", stray], ("view1.npy", "view2.npy"), sample=0)
    assert [p.step for p in result.points] == [30] and [s.step for s in result.skipped] == [7]
    assert "is a file" in result.skipped[0].error
    x, y = data[30]
    assert result.points[0].report.result.alignment == pytest.approx(_alignment(x, y), abs=1e-10)
    doc = result.to_dict()
    assert doc["schema"] == "gaussaudit.track-pairs/1" and doc["points"][0]["step"] == 30
    with pytest.raises(GaussAuditError, match="twice"):
        track_pairs([root], ("view1.npy", "./view1.npy"))
    with pytest.raises(GaussAuditError, match="none of the 1 steps"):
        track_pairs([stray], ("view1.npy", "view2.npy"))


@pytest.mark.parametrize("extra, says", [
    (["--pairs", "view1.npy"], "--pairs' requires 2 arguments"),
    (["--pairs"], "--pairs' requires 2 arguments"),
    (["--pairs", "view1.npy", "view1.npy"], "--pairs names view1.npy twice"),
    (["--pairs", "view1.npy", "--json", "out.json"], "got '--json', an option"),
    (["--pairs", "/elsewhere/view1.npy", "view2.npy"], "names a file inside each step folder"),
    (["--pairs", "a.npy", "b.npy"], "none of the 5 steps could be measured"),
    (["--pairs", "view1.npy", "view2.npy", "--check"], "--check gates on a Gaussianity verdict"),
    (["--pairs", "view1.npy", "view2.npy", "--calibrate", "0", "--whiten", "pca"], "--whiten, --calibrate set the"),
    (["--pairs", "view1.npy", "view2.npy", "--temperature", "0"], "--temperature must be a positive number"),
    (["--pairs", "view1.npy", "view2.npy", "--uniformity-sample", "1"], "must be at least 2"),
    (["--temperature", "0.5"], "give --pairs too"),
])
def test_bad_input_exits_2_with_one_line(run, extra, says):
    root, _ = run
    ((rc, out, err),) = run_cli_many([["track", root, *extra]], cwd=root)
    assert rc == 2 and out == "", (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert says in err, err


def test_along_infonce_training_alignment_plateaus_while_uniformity_improves(tmp_path):
    """The paper's Assumption 1 on a real InfoNCE run: the linear Laplace encoder of
    ``reproduce synthetic`` (quick size), held-out positive pairs saved after epochs
    0, 1, 2, 5, 10 and 20, read back by ``track --pairs``."""
    torch = pytest.importorskip("torch")
    from gaussaudit.reproduce import synthetic as S

    settings = S.SyntheticSettings.quick(inputs=("laplace",))
    saved = (0, 1, 2, 5, 10, 20)
    with S._Deterministic(torch, 1):
        data = S._data("laplace", settings)
        torch.manual_seed(data.torch_seed)
        generator = torch.Generator().manual_seed(data.torch_seed)
        model = S._encoder(torch, "linear", settings.dim_in, settings.dim_out)
        optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
        x, labels = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
        first, second = S.positive_views(torch, data.law, settings, torch.from_numpy(data.x_audit),
                                         torch.from_numpy(data.y_audit), torch.Generator().manual_seed(0))
        for epoch in range(saved[-1] + 1):
            if epoch in saved:
                save_npy(tmp_path / "run" / f"epoch_{epoch}" / "view1.npy", S._embed(torch, model, first))
                save_npy(tmp_path / "run" / f"epoch_{epoch}" / "view2.npy", S._embed(torch, model, second))
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x) - settings.batch + 1, settings.batch):
                idx = order[start : start + settings.batch]
                a, b = S.positive_views(torch, data.law, settings, x[idx], labels[idx], generator)
                loss = S.infonce(torch, model(a), model(b), settings.tau)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    [(rc, out, err)] = run_cli_many([["track", tmp_path / "run", "--pairs", "view1.npy", "view2.npy",
                                      "--sample", "0", "--json", "-"]])
    assert rc == 0, err
    points = json.loads(out)["points"]
    assert [p["step"] for p in points] == list(saved)
    alignment = [p["pairs"]["alignment"] for p in points]
    phi = [p["pairs"]["uniformity"] for p in points]
    reference = points[0]["pairs"]["uniformity_reference"]
    assert max(alignment) - min(alignment) < 0.01  # the augmentation caps it: flat from init on
    assert all(later < earlier for earlier, later in zip(phi, phi[1:]))  # uniformity improves at every saved epoch
    assert phi[0] - phi[-1] > 0.1 and phi[-1] > reference  # towards, not past, uniform rows on the sphere
