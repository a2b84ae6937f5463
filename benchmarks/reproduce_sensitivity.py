"""Sensitivity of `reproduce synthetic` to the two parameters Appendix E.1 does not give.

* the sparse binary input's density (ones per row): the binary E0 column is an
  untrained linear map, so it depends on nothing else; audited at init only.
* the GMM's mean scale (between-component spread against the shared unit
  covariance): trained with InfoNCE for --gmm-epochs epochs.

Run by hand (minutes on 2 cores); the table it prints is in docs/reproduce.md:

    python benchmarks/reproduce_sensitivity.py --gmm-epochs 20 --trained-ones 10,20,51
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def row(label, report):
    c = report.paper_columns["unnormalised"]
    return (f"| {label} | {report.norm_cv:.3f} | {c.ad_mean:.3f} | {100 * c.ad_pass_fraction:.1f}% | "
            f"{c.dp_mean_p:.3g} | {100 * c.dp_pass_fraction:.1f}% | {'✓' if c.verdict.gaussian else '✗'} |")


def trained_row(torch, S, kind: str, label: str, **settings) -> str:
    """Train ``kind``'s InfoNCE encoder with these settings; its audit as a table row."""
    started = time.perf_counter()
    config = S.SyntheticSettings(inputs=(kind,), **settings).validated()
    data = S._data(kind, config)
    model, losses, _ = S._train_infonce(torch, config, data, kind, audit_along=False)
    report = S._audit(S._embed(torch, model, data.x_audit), S.EPOCH_AUDIT, config.seed)
    return row(f"{label} (loss {losses[-1]:.2f}, {time.perf_counter() - started:.0f} s)", report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ones", default="1,2,5,10,20,51", help="binary ones per row to try")
    parser.add_argument("--gmm-scales", default="0.25,0.5,1,2", help="GMM mean scales to try")
    parser.add_argument("--gmm-epochs", type=int, default=30)
    parser.add_argument("--trained-ones", default="", help="binary ones per row to train with InfoNCE (E50)")
    parser.add_argument("--binary-epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from gaussaudit.reproduce import synthetic as S

    header = "| {} | CV | AD Avg. | AD Norm. | DP Avg. | DP Norm. | rule |\n|---|---|---|---|---|---|---|"
    print(header.format("binary ones per row (E0, untrained)"))
    with S._Deterministic(torch, 1):
        for ones in [float(v) for v in args.ones.split(",") if v]:
            settings = S.SyntheticSettings(seed=args.seed, binary_ones=ones).validated()
            data = S._data("binary", settings)
            torch.manual_seed(data.torch_seed)
            model = S._encoder(torch, "linear", settings.dim_in, settings.dim_out)
            print(row(f"{ones:g} (p = {settings.binary_p:.4f})",
                      S._audit(S._embed(torch, model, data.x_audit), S.EPOCH_AUDIT, args.seed)), flush=True)
        if args.trained_ones:
            print()
            print(header.format(f"binary ones per row (InfoNCE, {args.binary_epochs} epochs)"))
        for ones in [float(v) for v in args.trained_ones.split(",") if v]:
            print(trained_row(torch, S, "binary", f"{ones:g}", seed=args.seed, binary_ones=ones,
                              epochs=args.binary_epochs), flush=True)
        if not args.gmm_scales:
            return
        print()
        print(header.format(f"GMM mean scale (InfoNCE, {args.gmm_epochs} epochs)"))
        for scale in [float(v) for v in args.gmm_scales.split(",") if v]:
            print(trained_row(torch, S, "gmm", f"{scale:g}", seed=args.seed, gmm_mean_scale=scale,
                              epochs=args.gmm_epochs), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
