"""The paper's synthetic experiment: InfoNCE on Laplace, Gaussian-mixture and
sparse-binary inputs, audited along training, with a supervised baseline.

Setup (documented with the measured numbers in docs/reproduce.md):

* inputs, ``dim_in`` features, ``n`` training rows and ``n_audit`` held-out
  rows drawn the same way:
  ``laplace`` i.i.d. Laplace, unit variance; ``gmm`` a mixture of
  ``GMM_COMPONENTS`` Gaussians (unit covariance, means N(0, GMM_MEAN_SCALE² I)),
  whose component is the supervised label; ``binary`` i.i.d. Bernoulli(``BINARY_P``)
  bits (sparse binary vectors).
* positive pairs: two independent augmentations of each row, each masking every
  coordinate with probability ``MASK_P`` and adding Gaussian noise of std
  ``NOISE_STD`` times the input's feature std.
* encoder: ``linear`` (one affine map dim_in → dim_out) or ``mlp`` (affine,
  ReLU, affine, hidden width ``MLP_HIDDEN``), PyTorch default initialisation.
* loss: the poster's InfoNCE, ``-mean_i log softmax_j(u_i · v_j / τ)_i`` on
  L2-normalised outputs u, v of the two views, negatives the rest of the batch.
* optimiser: Adam, learning rate ``LR``, batch ``BATCH``, ``epochs`` passes.
* supervised baseline: the same encoder plus a linear head to the class
  logits, cross-entropy, same optimiser, batch and epochs, no augmentation;
  its encoder outputs (not the logits) are audited. Labels: the GMM component;
  for Laplace and binary inputs, the argmax of ``GMM_COMPONENTS`` fixed random
  linear scores of the centred input (a random linear rule).
* audits: :func:`gaussaudit.audit` on the ``n_audit`` held-out rows (every row
  tested, L2-normalised as in every scan). Input, init, trained and supervised
  audits add random and principal projections; the many per-epoch audits run
  only the per-feature tests. Multivariate and Mahalanobis tests are off.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from gaussaudit.audit import AuditConfig, AuditReport, audit
from gaussaudit.config import configured
from gaussaudit.errors import GaussAuditError

SCHEMA = "gaussaudit.reproduce/1"
EXTRACT_EXTRA = "pip install 'gaussaudit[extract]'"

INPUTS = ("laplace", "gmm", "binary")
STAGES = ("input", "init", "epoch", "trained", "supervised")
ENCODERS = ("linear", "mlp")

TAU = 0.1
LR = 1e-3
BATCH = 256
MASK_P = 0.2
NOISE_STD = 0.5
BINARY_P = 0.05
GMM_COMPONENTS = 10
GMM_MEAN_SCALE = 1.0
MLP_HIDDEN = 256
#: Audit options: the per-epoch audits run only the per-feature tests.
HEADLINE_AUDIT = dict(projections=128, pca_projections=16, mahalanobis=False, mv_sample=0)
# The curves along training need only the per-feature averages: no surrogates.
EPOCH_AUDIT = dict(projections=0, pca_projections=0, mahalanobis=False, mv_sample=0, calibrate=0)

#: The poster's table, synthetic part (linear encoder), for side-by-side display.
#: The poster's extracted text leaves the E100 column empty.
PAPER_TABLE = {
    "Laplace": {"cv": 0.08, "ad_mean": 0.38, "ad_pass": 1.00, "dp_mean_p": 0.49, "dp_pass": 1.00, "gaussian": True},
    "GMM": {"cv": 0.08, "ad_mean": 0.39, "ad_pass": 1.00, "dp_mean_p": 0.46, "dp_pass": 1.00, "gaussian": True},
    "Binary": {"cv": 0.36, "ad_mean": 1.64, "ad_pass": 0.30, "dp_mean_p": 0.02, "dp_pass": 0.15, "gaussian": False},
    "E0": {"cv": 0.12, "ad_mean": 0.41, "ad_pass": 0.93, "dp_mean_p": 0.44, "dp_pass": 0.89, "gaussian": True},
    "E50": {"cv": 0.09, "ad_mean": 0.42, "ad_pass": 0.97, "dp_mean_p": 0.46, "dp_pass": 0.98, "gaussian": True},
}


@dataclass(frozen=True)
class SyntheticSettings:
    """Every knob of the experiment; ``quick()`` is the short mode the tests use."""

    epochs: int = 100
    n: int = 10_000
    n_audit: int = 5_000
    dim_in: int = 128
    dim_out: int = 128
    encoder: str = "linear"
    seed: int = 0
    audit_every: int = 10
    inputs: tuple[str, ...] = INPUTS
    tau: float = TAU
    lr: float = LR
    batch: int = BATCH
    mask_p: float = MASK_P
    noise_std: float = NOISE_STD
    gmm_mean_scale: float = GMM_MEAN_SCALE
    binary_p: float = BINARY_P
    threads: int = 1

    @classmethod
    def quick(cls, **overrides) -> "SyntheticSettings":
        base = dict(epochs=6, n=2_000, n_audit=2_000, audit_every=2)
        base.update(overrides)
        return cls(**base)

    def validated(self) -> "SyntheticSettings":
        def positive(name, value, minimum=1):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise GaussAuditError(f"--{name.replace('_', '-')} must be an integer ≥ {minimum}; got {value!r}.")

        positive("epochs", self.epochs)
        positive("n", self.n, minimum=self.batch)
        positive("n_audit", self.n_audit, minimum=20)
        positive("dim_in", self.dim_in, minimum=2)
        positive("dim_out", self.dim_out, minimum=2)
        positive("audit_every", self.audit_every)
        positive("threads", self.threads)
        positive("seed", self.seed, minimum=0)
        for name, value, low, high in (("tau", self.tau, 0, None), ("lr", self.lr, 0, None),
                                       ("mask_p", self.mask_p, None, 1), ("binary_p", self.binary_p, 0, 1)):
            if not (np.isfinite(value) and (low is None or value > low) and (high is None or value < high)):
                raise GaussAuditError(f"{name} must be a number in ({low if low is not None else '-inf'}, "
                                      f"{high if high is not None else 'inf'}); got {value!r}.")
        if not (np.isfinite(self.noise_std) and self.noise_std >= 0 and self.mask_p >= 0):
            raise GaussAuditError("noise_std and mask_p must be ≥ 0.")
        if not (np.isfinite(self.gmm_mean_scale) and self.gmm_mean_scale >= 0):
            raise GaussAuditError(f"gmm_mean_scale must be ≥ 0; got {self.gmm_mean_scale!r}.")
        if self.encoder not in ENCODERS:
            raise GaussAuditError(f"--encoder must be one of {', '.join(ENCODERS)}; got {self.encoder!r}.")
        unknown = [i for i in self.inputs if i not in INPUTS]
        if unknown or not self.inputs:
            raise GaussAuditError(f"--input must be among {', '.join(INPUTS)}; got {', '.join(unknown) or 'none'}.")
        return self


@dataclass(frozen=True)
class SyntheticRun:
    """One audit: which input, which stage (``input``, ``init``, ``epoch``,
    ``trained``, ``supervised``), after how many epochs (None for the raw input)."""

    input: str
    stage: str
    epoch: int | None
    report: AuditReport

    def to_dict(self) -> dict:
        """The scan report's fields, with ``input`` naming the input distribution;
        the scan report's own ``input`` block (rows, dim…) moves to ``dataset``."""
        report = self.report.to_dict()
        report["dataset"] = report.pop("input")
        return {"input": self.input, "stage": self.stage, "epoch": self.epoch, **report}


@dataclass
class SyntheticResult:
    settings: SyntheticSettings
    runs: list[SyntheticRun]
    losses: dict[str, list[float]] = field(default_factory=dict)
    supervised_accuracy: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def run(self, input: str, stage: str, epoch: int | None = None) -> SyntheticRun:
        """The run of ``input`` at ``stage`` (and ``epoch`` for ``"epoch"`` rows)."""
        for r in self.runs:
            if r.input == input and r.stage == stage and (epoch is None or r.epoch == epoch):
                return r
        raise KeyError((input, stage, epoch))

    def along_training(self, input: str) -> list[SyntheticRun]:
        """Init, every audited epoch and the trained encoder of one input, in epoch order."""
        rows = [r for r in self.runs if r.input == input and r.stage in ("init", "epoch", "trained")]
        return sorted(rows, key=lambda r: r.epoch)

    def to_dict(self) -> dict:
        s = asdict(self.settings)
        s["inputs"] = list(self.settings.inputs)
        return {
            "schema": SCHEMA,
            "settings": s,
            "runs": [r.to_dict() for r in self.runs],
            "final_infonce_loss": {k: v[-1] for k, v in self.losses.items()},
            "infonce_loss": self.losses,
            "supervised_train_accuracy": self.supervised_accuracy,
            "seconds": self.seconds,
            "paper": PAPER_TABLE,
        }


def _import_torch():
    try:
        import torch
    except ImportError:
        raise GaussAuditError(
            f"reproduce trains encoders with PyTorch, which is not installed; install the extract extra: {EXTRACT_EXTRA}"
        ) from None
    return torch


# ----------------------------------------------------------------------------
# data


def make_inputs(kind: str, n: int, dim: int, rng: np.random.Generator, labels_rng: np.random.Generator,
                gmm_mean_scale: float = GMM_MEAN_SCALE, binary_p: float = BINARY_P):
    """``(x, labels)`` for one input distribution: float32 rows and int64 class labels.

    ``labels_rng`` fixes the distribution's parameters (mixture means, the
    random labelling rule) so the training and held-out sets share them.
    """
    if kind == "laplace":
        x = rng.laplace(scale=1 / np.sqrt(2), size=(n, dim))  # unit variance
    elif kind == "gmm":
        means = gmm_mean_scale * labels_rng.standard_normal((GMM_COMPONENTS, dim))
        component = rng.integers(0, GMM_COMPONENTS, size=n)
        x = means[component] + rng.standard_normal((n, dim))
        return x.astype(np.float32), component.astype(np.int64)
    elif kind == "binary":
        x = (rng.random((n, dim)) < binary_p).astype(np.float64)
    else:  # pragma: no cover - validated before
        raise GaussAuditError(f"unknown input {kind!r}")
    rule = labels_rng.standard_normal((dim, GMM_COMPONENTS))
    centre = 0.0 if kind == "laplace" else binary_p
    labels = np.argmax((x - centre) @ rule, axis=1)
    return x.astype(np.float32), labels.astype(np.int64)


# ----------------------------------------------------------------------------
# training


def _encoder(torch, kind: str, dim_in: int, dim_out: int):
    nn = torch.nn
    if kind == "linear":
        return nn.Linear(dim_in, dim_out)
    return nn.Sequential(nn.Linear(dim_in, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, dim_out))


def _augment(torch, x, feature_std, mask_p: float, noise_std: float, generator):
    keep = (torch.rand(x.shape, generator=generator) >= mask_p).to(x.dtype)
    noise = torch.randn(x.shape, generator=generator) * (noise_std * feature_std)
    return x * keep + noise


def infonce(torch, u, v, tau: float):
    """The poster's loss: -1/N Σ_i log exp(u_i·v_i/τ) / Σ_j exp(u_i·v_j/τ), u and v L2-normalised."""
    f = torch.nn.functional
    u, v = f.normalize(u, dim=1), f.normalize(v, dim=1)
    logits = u @ v.T / tau
    return f.cross_entropy(logits, torch.arange(len(u)))


def _embed(torch, model, x) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy().astype(np.float64)


def _audit(emb: np.ndarray, options: dict, seed: int) -> AuditReport:
    return audit(emb, AuditConfig(sample=0, seed=seed, threads=1, **options))


def run_synthetic(settings: SyntheticSettings | None = None, progress=None, **overrides) -> SyntheticResult:
    """Train and audit as described in the module docstring.

    Parameters
    ----------
    settings : SyntheticSettings, optional
        Default: the full experiment; ``SyntheticSettings.quick()`` is short.
    progress : callable, optional
        Called with one line of text per finished stage (the CLI prints them).
    **overrides
        Replace fields of ``settings`` (``epochs=20``, ``encoder="mlp"``…).

    Returns
    -------
    SyntheticResult
        ``runs`` in the order input, init, epochs…, trained, supervised per input.
    """
    settings = configured(settings, SyntheticSettings, overrides, "reproduce")
    torch = _import_torch()
    say = progress or (lambda _line: None)
    started = time.perf_counter()

    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(True)
    try:
        runs: list[SyntheticRun] = []
        losses: dict[str, list[float]] = {}
        accuracy: dict[str, float] = {}
        for kind in settings.inputs:
            # One seed stream per input, so each input's numbers do not depend
            # on which other inputs run.
            seeds = np.random.SeedSequence([settings.seed, INPUTS.index(kind)]).spawn(4)
            x_train, y_train = make_inputs(kind, settings.n, settings.dim_in, np.random.default_rng(seeds[1]),
                                           np.random.default_rng(seeds[0]), settings.gmm_mean_scale, settings.binary_p)
            x_audit, _ = make_inputs(kind, settings.n_audit, settings.dim_in, np.random.default_rng(seeds[2]),
                                     np.random.default_rng(seeds[0]), settings.gmm_mean_scale, settings.binary_p)
            torch_seed = int(seeds[3].generate_state(1)[0])
            runs.append(SyntheticRun(kind, "input", None, _audit(x_audit.astype(np.float64), HEADLINE_AUDIT, settings.seed)))
            say(f"{kind}: input audited")
            kind_runs, kind_losses = _train_infonce(torch, settings, x_train, x_audit, torch_seed, kind, say)
            runs.extend(kind_runs)
            losses[kind] = kind_losses
            sup_run, acc = _train_supervised(torch, settings, x_train, y_train, x_audit, torch_seed + 1, kind)
            runs.append(sup_run)
            accuracy[kind] = acc
            say(f"{kind}: supervised baseline trained (train accuracy {acc:.1%}) and audited")
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)
    return SyntheticResult(settings, runs, losses, accuracy, time.perf_counter() - started)


def _train_infonce(torch, settings: SyntheticSettings, x_train, x_audit, torch_seed: int, kind: str, say):
    torch.manual_seed(torch_seed)
    generator = torch.Generator().manual_seed(torch_seed)
    model = _encoder(torch, settings.encoder, settings.dim_in, settings.dim_out)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    x = torch.from_numpy(x_train)
    feature_std = x.std(dim=0, keepdim=True)
    runs = [SyntheticRun(kind, "init", 0, _audit(_embed(torch, model, x_audit), HEADLINE_AUDIT, settings.seed))]
    losses: list[float] = []
    for epoch in range(1, settings.epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        total, batches = 0.0, 0
        for start in range(0, len(x) - settings.batch + 1, settings.batch):  # full batches only
            xb = x[order[start : start + settings.batch]]
            u = model(_augment(torch, xb, feature_std, settings.mask_p, settings.noise_std, generator))
            v = model(_augment(torch, xb, feature_std, settings.mask_p, settings.noise_std, generator))
            loss = infonce(torch, u, v, settings.tau)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, batches = total + float(loss.detach()), batches + 1
        losses.append(total / batches)
        if epoch == settings.epochs:
            runs.append(SyntheticRun(kind, "trained", epoch,
                                     _audit(_embed(torch, model, x_audit), HEADLINE_AUDIT, settings.seed)))
        elif epoch % settings.audit_every == 0:
            runs.append(SyntheticRun(kind, "epoch", epoch,
                                     _audit(_embed(torch, model, x_audit), EPOCH_AUDIT, settings.seed)))
    say(f"{kind}: InfoNCE trained {settings.epochs} epochs (final loss {losses[-1]:.3f}, "
        f"chance level {np.log(settings.batch):.3f}) and audited")
    return runs, losses


def _train_supervised(torch, settings: SyntheticSettings, x_train, y_train, x_audit, torch_seed: int, kind: str):
    torch.manual_seed(torch_seed)
    generator = torch.Generator().manual_seed(torch_seed)
    model = _encoder(torch, settings.encoder, settings.dim_in, settings.dim_out)
    head = torch.nn.Linear(settings.dim_out, int(y_train.max()) + 1)
    optimiser = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=settings.lr)
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(settings.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x) - settings.batch + 1, settings.batch):
            idx = order[start : start + settings.batch]
            loss = torch.nn.functional.cross_entropy(head(model(x[idx])), y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        accuracy = float((head(model(x)).argmax(dim=1) == y).double().mean())
    report = _audit(_embed(torch, model, x_audit), HEADLINE_AUDIT, settings.seed)
    return SyntheticRun(kind, "supervised", settings.epochs, report), accuracy
