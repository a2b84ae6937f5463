"""Options: an error names an option the way its user wrote it (``sample`` from
the library, ``--sample`` from the CLI), and the CLI's defaults are the library's."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from gaussaudit import AuditConfig, GaussAuditError, audit
from gaussaudit.errors import cli_spelling, option_name, option_set
from gaussaudit.extract.api import ExtractConfig, extract

from conftest import run_cli_many, save_npy

X = np.random.default_rng(0).standard_normal((100, 4))

#: (library keyword arguments, the message's start from audit(), from the CLI as typed)
AUDIT_CASES = [
    ({"sample": 5}, "sample must be 0 or at least 20; got 5.", ["-n", "5"], "--sample must be 0 or at least 20"),
    ({"mv_dims": 0}, "mv_dims must be at least 1", ["--mv-dims", "0"], "--mv-dims must be at least 1"),
    ({"calibrate": 20}, "calibrate: (R + 1) must be", ["--calibrate", "20"], "--calibrate: (R + 1) must be"),
    ({"energy_replicates": 20}, "energy_replicates: (R + 1) × alpha", ["--energy-replicates", "20"],
     "--energy-replicates: (R + 1) × alpha"),
    ({"device": "tpu"}, "device must be auto, cpu", ["--device", "tpu"], "--device must be auto, cpu"),
    ({"whiten": "svd"}, "whiten must be one of pca, zca", ["--whiten", "svd"], "--whiten must be one of pca, zca"),
    ({"alpha": 0.7}, "alpha must be a number between 0 and 0.5", ["--alpha", "0.7"], "--alpha must be a number"),
    ({"key": "emb"}, "key picks an array inside .npz files", ["--key", "emb"], "--key picks an array inside .npz"),
    ({"columns": "a", "exclude": "b"}, "columns lists the feature columns and exclude removes",
     ["--columns", "a", "--exclude", "b"], "--columns lists the feature columns and --exclude removes"),
]


@pytest.mark.parametrize("options, library, flags, cli", AUDIT_CASES, ids=[str(c[0]) for c in AUDIT_CASES])
def test_audit_errors_name_library_parameters(tmp_path, options, library, flags, cli):
    path = save_npy(tmp_path / "x.npy", X)
    with pytest.raises(GaussAuditError) as caught:
        audit(str(path), **options)
    assert str(caught.value).startswith(library), caught.value
    assert "--" not in str(caught.value)


def test_cli_errors_name_flags(tmp_path):
    path = save_npy(tmp_path / "x.npy", X)
    results = run_cli_many([["scan", str(path), *flags] for _, _, flags, _ in AUDIT_CASES])
    for (_, _, flags, message), (rc, out, err) in zip(AUDIT_CASES, results):
        assert rc == 2 and "Traceback" not in err, (flags, err)
        assert err.startswith(f"error: {message}"), (flags, err)


def test_data_errors_name_options_as_written(tmp_path):
    """Errors about the data that name an option to pass (drop_nonfinite, key)."""
    bad = X.copy()
    bad[3, 1] = np.nan
    path = save_npy(tmp_path / "nan.npy", bad)
    with pytest.raises(GaussAuditError, match=r"Pass drop_nonfinite=True to leave them out"):
        audit(str(path))
    np.savez(tmp_path / "two.npz", a=X, b=X)
    with pytest.raises(GaussAuditError, match=r"choose one with key='NAME'"):
        audit(str(tmp_path / "two.npz"))
    (rc, _, err), (rc2, _, err2) = run_cli_many([["scan", str(path)], ["scan", str(tmp_path / "two.npz")]])
    assert rc == 2 and "Pass --drop-nonfinite to leave them out" in err, err
    assert rc2 == 2 and "choose one with --key NAME" in err2, err2


def test_extract_errors_name_library_parameters(tmp_path):
    with pytest.raises(GaussAuditError, match=r"^model is required"):
        extract()
    with pytest.raises(GaussAuditError, match=r"^give data='DIR' \(a folder of images\) or texts='FILE'"):
        extract(model="ViT-B-32")
    with pytest.raises(GaussAuditError, match=r"^batch_size must be at least 1; got 0"):
        extract(model="ViT-B-32", data=str(tmp_path), batch_size=0)
    with pytest.raises(GaussAuditError, match=r"^precision must be one of"):
        extract(model="ViT-B-32", data=str(tmp_path), precision="fp8")


def test_cli_spelling_ends_with_the_command():
    """In-process CLI runs (CliRunner) must not leave the flag spelling on for
    library calls that follow."""
    from gaussaudit.cli import app

    result = CliRunner().invoke(app, ["scan", "/nonexistent/x.npy", "-n", "5"])
    assert result.exit_code == 2 and "--sample must be" in result.output, result.output
    assert option_name("mv_sample") == "mv_sample"
    with pytest.raises(GaussAuditError, match="^sample must be"):
        AuditConfig(sample=5).validated()


def test_spelling_helpers():
    assert (option_name("mv_sample"), option_set("sample", 0), option_set("overwrite")) == (
        "mv_sample", "sample=0", "overwrite=True")
    with cli_spelling():
        assert (option_name("mv_sample"), option_set("sample", 0), option_set("overwrite"),
                option_name("inputs")) == ("--mv-sample", "--sample 0", "--overwrite", "--input")
        with cli_spelling():
            pass
        assert option_name("seed") == "--seed"  # a nested block restores, not clears
    assert option_name("seed") == "seed"


def test_extract_cli_defaults_are_the_library_defaults():
    """extract's flags default to ExtractConfig's fields (--model, required on
    the command line, has none)."""
    import inspect

    from gaussaudit.cli import extract as extract_command

    library = ExtractConfig()
    parameters = inspect.signature(extract_command).parameters
    for field in dataclasses.fields(ExtractConfig):
        option = parameters[field.name].default
        if field.name == "model":
            assert option.default is Ellipsis
            continue
        assert option.default == getattr(library, field.name), (field.name, option.default)
