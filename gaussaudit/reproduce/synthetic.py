"""The paper's synthetic experiment (Appendix E.1): InfoNCE on Laplace,
Gaussian-mixture and sparse-binary inputs, audited along training, with a
supervised baseline and sweeps over the embedding dimension and batch size.

Setup (documented with the measured numbers in docs/reproduce.md; the defaults
follow the appendix where it says, and name our choice where it does not):

* inputs, ``dim_in`` = 1024 features; ``n`` training rows (Laplace 20,000, GMM
  and binary 10,000) and ``n_audit`` = 5,000 held-out rows drawn the same way:
  ``laplace`` i.i.d. Laplace(0, 1); ``gmm`` ``GMM_COMPONENTS`` = 25 equally
  weighted Gaussians with means N(0, GMM_MEAN_SCALE² I) and one shared
  covariance I, whose component is the supervised label; ``binary`` i.i.d.
  Bernoulli(p) bits with p·dim_in = ``BINARY_ONES`` = 5 ones a row on average
  (p = 0.0049 at 1024-d; the appendix does not give the density:
  docs/reproduce.md has the sensitivity runs).
* positive pairs, drawn afresh at every step:
  ``laplace`` the channel x′ = A·x + √(1 − A²)·ε (A = 0.6, ε Gaussian with the
  inputs' variance, so corr(x_j, x′_j) = A), then jitter on both views:
  additive N(0, 0.2²) noise, feature dropout p = 0.1 (masking, no rescaling),
  a per-row scale exp(N(0, 0.1²)); ``gmm`` the row and an independent draw
  from its component; ``binary`` the row and the row with each zero flipped
  to one with probability 0.001 (0.1 % of its zeros).
* encoder: ``linear`` (one affine map dim_in → dim_out = 256) or ``mlp``
  (affine, ReLU, affine, hidden width ``MLP_HIDDEN``), PyTorch default initialisation.
* loss: the poster's InfoNCE, ``-mean_i log softmax_j(u_i · v_j / τ)_i`` on
  L2-normalised outputs u, v of the two views, τ = 0.1, negatives the rest of the batch.
* optimiser: Adam, learning rate 1e-3, batch ``BATCH`` = 64 (the appendix's
  grid is 8–128 and "small batches"; it does not say which the table used);
  Laplace 150 epochs, GMM and binary 100, audited every 10.
* supervised baseline (our construction; the paper's is a CIFAR-10 ResNet):
  the same encoder plus a linear head to the class logits, cross-entropy,
  same optimiser, batch and epochs, no augmentation; its encoder outputs
  (not the logits) are audited. Labels: the GMM component; for Laplace and
  binary inputs, the argmax of ``GMM_COMPONENTS`` fixed random linear scores
  of the centred input (a random linear rule).
* audits: :func:`gaussaudit.audit` on the ``n_audit`` held-out rows (every row
  tested); the paper's table uses the unnormalised column (its Table 1).
  Input, init, trained and supervised audits add random and principal
  projections; the per-epoch audits run only the per-feature tests.
  Multivariate and Mahalanobis tests are off.
* sweeps (:func:`run_sweep`): the Laplace experiment retrained at each
  embedding dimension or batch size, measuring the CV of the unnormalised
  norms and the alignment and uniformity of held-out positive pairs.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from gaussaudit.audit import AuditConfig, AuditReport, audit
from gaussaudit.config import configured
from gaussaudit.errors import GaussAuditError

SCHEMA = "gaussaudit.reproduce/2"
SWEEP_SCHEMA = "gaussaudit.reproduce-sweep/1"
EXTRACT_EXTRA = "pip install 'gaussaudit[extract]'"

INPUTS = ("laplace", "gmm", "binary")
STAGES = ("input", "init", "epoch", "trained", "supervised")
ENCODERS = ("linear", "mlp")

TAU = 0.1
LR = 1e-3
BATCH = 64
#: Appendix E.1: epochs and training rows per input.
EPOCHS = {"laplace": 150, "gmm": 100, "binary": 100}
TRAIN_ROWS = {"laplace": 20_000, "gmm": 10_000, "binary": 10_000}
CHANNEL_A = 0.6
JITTER_NOISE_STD = 0.2
JITTER_DROPOUT = 0.1
JITTER_LOG_SCALE_STD = 0.1
#: Expected ones per row of the sparse binary input (density BINARY_ONES / dim_in).
BINARY_ONES = 5.0
BINARY_FLIP = 0.001
GMM_COMPONENTS = 25
GMM_MEAN_SCALE = 1.0
LAPLACE_SCALE = 1.0
MLP_HIDDEN = 256
#: The appendix's sweep grids.
SWEEP_DIMS = (32, 64, 128, 256)
SWEEP_BATCH_SIZES = (8, 16, 32, 48, 64, 96, 128)
#: Audit options: the per-epoch audits run only the per-feature tests.
HEADLINE_AUDIT = dict(projections=128, pca_projections=16, mahalanobis=False, mv_sample=0)
# The curves along training need only the per-feature averages: no surrogates.
EPOCH_AUDIT = dict(projections=0, pca_projections=0, mahalanobis=False, mv_sample=0, calibrate=0)

#: The paper's Table 1, synthetic part (linear encoder, unnormalised embeddings):
#: "Binary E0/E50/E100" are the binary input's embeddings at epochs 0, 50 and 100.
PAPER_TABLE = {
    "Laplace": {"cv": 0.08, "ad_mean": 0.38, "ad_pass": 1.00, "dp_mean_p": 0.49, "dp_pass": 1.00, "gaussian": True},
    "GMM": {"cv": 0.08, "ad_mean": 0.39, "ad_pass": 1.00, "dp_mean_p": 0.46, "dp_pass": 1.00, "gaussian": True},
    "Binary E0": {"cv": 0.36, "ad_mean": 1.64, "ad_pass": 0.30, "dp_mean_p": 0.02, "dp_pass": 0.15, "gaussian": False},
    "Binary E50": {"cv": 0.12, "ad_mean": 0.41, "ad_pass": 0.93, "dp_mean_p": 0.44, "dp_pass": 0.89, "gaussian": True},
    "Binary E100": {"cv": 0.09, "ad_mean": 0.42, "ad_pass": 0.97, "dp_mean_p": 0.46, "dp_pass": 0.98, "gaussian": True},
}


def _positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GaussAuditError(f"--{name.replace('_', '-')} must be an integer ≥ {minimum}; got {value!r}.")


@dataclass(frozen=True)
class SyntheticSettings:
    """Every knob of the experiment; ``quick()`` is the short mode the tests use.

    ``epochs`` and ``n`` of None take each input's Appendix E.1 value
    (:data:`EPOCHS`, :data:`TRAIN_ROWS`); a number applies to every input.
    """

    epochs: int | None = None
    n: int | None = None
    n_audit: int = 5_000
    dim_in: int = 1024
    dim_out: int = 256
    encoder: str = "linear"
    seed: int = 0
    audit_every: int = 10
    inputs: tuple[str, ...] = INPUTS
    tau: float = TAU
    lr: float = LR
    batch: int = BATCH
    channel_a: float = CHANNEL_A
    jitter_noise_std: float = JITTER_NOISE_STD
    jitter_dropout: float = JITTER_DROPOUT
    jitter_log_scale_std: float = JITTER_LOG_SCALE_STD
    gmm_mean_scale: float = GMM_MEAN_SCALE
    binary_ones: float = BINARY_ONES
    binary_flip: float = BINARY_FLIP
    threads: int = 1

    @classmethod
    def quick(cls, **overrides) -> "SyntheticSettings":
        base = dict(epochs=6, n=2_000, n_audit=1_000, audit_every=2, dim_in=256, dim_out=64)
        base.update(overrides)
        return cls(**base)

    @property
    def binary_p(self) -> float:
        """The binary input's density: ``binary_ones`` bits set in ``dim_in`` on average."""
        return self.binary_ones / self.dim_in

    def epochs_for(self, kind: str) -> int:
        return EPOCHS[kind] if self.epochs is None else self.epochs

    def n_for(self, kind: str) -> int:
        return TRAIN_ROWS[kind] if self.n is None else self.n

    def validated(self) -> "SyntheticSettings":
        for name in ("epochs", "n"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name), minimum=self.batch if name == "n" else 1)
        _positive_int("batch", self.batch, minimum=2)
        _positive_int("n_audit", self.n_audit, minimum=20)
        _positive_int("dim_in", self.dim_in, minimum=2)
        _positive_int("dim_out", self.dim_out, minimum=2)
        _positive_int("audit_every", self.audit_every)
        _positive_int("threads", self.threads)
        _positive_int("seed", self.seed, minimum=0)
        for kind in self.inputs:
            if kind in INPUTS and self.n_for(kind) < self.batch:
                raise GaussAuditError(f"{kind} has {self.n_for(kind):,} training rows, fewer than one batch "
                                      f"({self.batch}); raise --n or lower --batch.")
        for name, value, low, high in (("tau", self.tau, 0, None), ("lr", self.lr, 0, None),
                                       ("channel_a", self.channel_a, 0, 1),
                                       ("binary_ones", self.binary_ones, 0, self.dim_in)):
            if not (np.isfinite(value) and (low is None or value > low) and (high is None or value < high)):
                raise GaussAuditError(f"{name} must be a number in ({low if low is not None else '-inf'}, "
                                      f"{high if high is not None else 'inf'}); got {value!r}.")
        for name in ("jitter_dropout", "binary_flip"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value < 1):
                raise GaussAuditError(f"{name} must be a probability in [0, 1); got {value!r}.")
        for name in ("jitter_noise_std", "jitter_log_scale_std", "gmm_mean_scale"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise GaussAuditError(f"{name} must be ≥ 0; got {value!r}.")
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

    def paper_columns(self) -> list[tuple[str, SyntheticRun, dict]]:
        """The paper's Table 1 columns measured here: ``(label, run, paper values)``
        for Laplace and GMM after training and the binary input at init, mid-way
        and after training (the audited epoch nearest half the epochs, at or below it),
        for the inputs this run trained."""
        out = []
        for kind, name in (("laplace", "Laplace"), ("gmm", "GMM")):
            if kind in self.settings.inputs:
                out.append((name, self.run(kind, "trained"), PAPER_TABLE[name]))
        if "binary" in self.settings.inputs:
            along = self.along_training("binary")
            last = along[-1].epoch
            mid = max((r for r in along if r.epoch <= last / 2), key=lambda r: r.epoch)
            for run, paper in ((along[0], "Binary E0"), (mid, "Binary E50"), (along[-1], "Binary E100")):
                out.append((f"Binary E{run.epoch}", run, PAPER_TABLE[paper]))
        return out

    def to_dict(self) -> dict:
        s = asdict(self.settings)
        s["inputs"] = list(self.settings.inputs)
        s["epochs_per_input"] = {k: self.settings.epochs_for(k) for k in self.settings.inputs}
        s["train_rows_per_input"] = {k: self.settings.n_for(k) for k in self.settings.inputs}
        return {
            "schema": SCHEMA,
            "settings": s,
            "runs": [r.to_dict() for r in self.runs],
            "table": [{"column": label, "input": run.input, "stage": run.stage, "epoch": run.epoch,
                       "measured": _table_values(run.report), "paper": paper}
                      for label, run, paper in self.paper_columns()],
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


def _table_values(report: AuditReport) -> dict:
    """One Table 1 column: CV and the unnormalised per-feature summaries with the
    paper's rule on them, and the normalised column's beside them (Table 2)."""
    out = {"cv": report.norm_cv}
    for name, column in report.paper_columns.items():
        out[name] = {"ad_mean": column.ad_mean, "ad_pass": column.ad_pass_fraction, "dp_mean_p": column.dp_mean_p,
                     "dp_pass": column.dp_pass_fraction, "gaussian": column.verdict.gaussian}
    return out


# ----------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class InputLaw:
    """The parameters one input's training and held-out rows share (mixture
    means, the random labelling rule)."""

    kind: str
    dim: int
    means: np.ndarray | None
    rule: np.ndarray
    binary_p: float


def input_law(kind: str, dim: int, rng: np.random.Generator, gmm_mean_scale: float = GMM_MEAN_SCALE,
              binary_p: float = BINARY_ONES / 1024) -> InputLaw:
    """Draw the shared parameters of ``kind`` (``laplace``, ``gmm``, ``binary``)."""
    means = gmm_mean_scale * rng.standard_normal((GMM_COMPONENTS, dim)) if kind == "gmm" else None
    return InputLaw(kind, dim, means, rng.standard_normal((dim, GMM_COMPONENTS)), binary_p)


def make_inputs(law: InputLaw, n: int, rng: np.random.Generator):
    """``(x, labels)``: ``n`` float32 rows of ``law`` and int64 class labels (the
    GMM's component; otherwise the argmax of random linear scores of the centred row)."""
    if law.kind == "laplace":
        x = rng.laplace(scale=LAPLACE_SCALE, size=(n, law.dim))
    elif law.kind == "gmm":
        component = rng.integers(0, GMM_COMPONENTS, size=n)
        x = law.means[component] + rng.standard_normal((n, law.dim))
        return x.astype(np.float32), component.astype(np.int64)
    elif law.kind == "binary":
        x = (rng.random((n, law.dim)) < law.binary_p).astype(np.float64)
    else:  # pragma: no cover - validated before
        raise GaussAuditError(f"unknown input {law.kind!r}")
    centre = 0.0 if law.kind == "laplace" else law.binary_p
    labels = np.argmax((x - centre) @ law.rule, axis=1)
    return x.astype(np.float32), labels.astype(np.int64)


def positive_views(torch, law: InputLaw, settings: SyntheticSettings, x, labels, generator):
    """The two views of a batch of rows ``x`` (Appendix E.1), drawn with ``generator``.

    ``laplace``: jitter(x) and jitter(A·x + √(1 − A²)·σ·ε), σ² = Var x = 2b²;
    ``gmm``: x and a fresh draw from each row's component; ``binary``: x and x
    with each zero set to one with probability ``binary_flip``.
    """
    s = settings
    if law.kind == "laplace":
        sigma = np.sqrt(2.0) * LAPLACE_SCALE
        moved = s.channel_a * x + np.sqrt(1 - s.channel_a**2) * sigma * torch.randn(x.shape, generator=generator)
        return _jitter(torch, x, s, generator), _jitter(torch, moved, s, generator)
    if law.kind == "gmm":
        means = torch.from_numpy(law.means.astype(np.float32))
        return x, means[labels] + torch.randn(x.shape, generator=generator)
    flips = (torch.rand(x.shape, generator=generator) < s.binary_flip).to(x.dtype)
    return x, torch.maximum(x, flips)


def _jitter(torch, x, s: SyntheticSettings, generator):
    """Feature dropout (masking), a per-row scale exp(N(0, s²)), additive Gaussian noise."""
    keep = (torch.rand(x.shape, generator=generator) >= s.jitter_dropout).to(x.dtype)
    scale = torch.exp(s.jitter_log_scale_std * torch.randn((len(x), 1), generator=generator))
    return x * keep * scale + s.jitter_noise_std * torch.randn(x.shape, generator=generator)


# ----------------------------------------------------------------------------
# training


def _encoder(torch, kind: str, dim_in: int, dim_out: int):
    nn = torch.nn
    if kind == "linear":
        return nn.Linear(dim_in, dim_out)
    return nn.Sequential(nn.Linear(dim_in, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, dim_out))


def infonce(torch, u, v, tau: float):
    """The poster's loss: -1/N Σ_i log exp(u_i·v_i/τ) / Σ_j exp(u_i·v_j/τ), u and v L2-normalised."""
    f = torch.nn.functional
    u, v = f.normalize(u, dim=1), f.normalize(v, dim=1)
    logits = u @ v.T / tau
    return f.cross_entropy(logits, torch.arange(len(u)))


def _embed(torch, model, x) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy().astype(np.float64)


def _audit(emb: np.ndarray, options: dict, seed: int) -> AuditReport:
    return audit(emb, AuditConfig(sample=0, seed=seed, threads=1, **options))


@dataclass
class _Data:
    law: InputLaw
    x_train: np.ndarray
    y_train: np.ndarray
    x_audit: np.ndarray
    y_audit: np.ndarray
    torch_seed: int


def _data(kind: str, settings: SyntheticSettings) -> _Data:
    # One seed stream per input, so each input's numbers do not depend on
    # which other inputs run.
    seeds = np.random.SeedSequence([settings.seed, INPUTS.index(kind)]).spawn(4)
    law = input_law(kind, settings.dim_in, np.random.default_rng(seeds[0]), settings.gmm_mean_scale, settings.binary_p)
    x_train, y_train = make_inputs(law, settings.n_for(kind), np.random.default_rng(seeds[1]))
    x_audit, y_audit = make_inputs(law, settings.n_audit, np.random.default_rng(seeds[2]))
    return _Data(law, x_train, y_train, x_audit, y_audit, int(seeds[3].generate_state(1)[0]))


class _Deterministic:
    """torch seeded, one thread (or ``threads``), deterministic algorithms; restored on exit."""

    def __init__(self, torch, threads: int):
        self.torch, self.threads = torch, threads

    def __enter__(self):
        self.before = (self.torch.get_num_threads(), self.torch.are_deterministic_algorithms_enabled())
        self.torch.set_num_threads(self.threads)
        self.torch.use_deterministic_algorithms(True)
        return self

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.before[0])
        self.torch.use_deterministic_algorithms(self.before[1])


def run_synthetic(settings: SyntheticSettings | None = None, progress=None, **overrides) -> SyntheticResult:
    """Train and audit as described in the module docstring.

    Parameters
    ----------
    settings : SyntheticSettings, optional
        Default: the full experiment of Appendix E.1; ``SyntheticSettings.quick()`` is short.
    progress : callable, optional
        Called with one line of text per finished stage (the CLI prints them).
    **overrides
        Replace fields of ``settings`` (``epochs=20``, ``encoder="mlp"``…).

    Returns
    -------
    SyntheticResult
        ``runs`` in the order input, init, epochs…, trained, supervised per input.

    Examples
    --------
    >>> from gaussaudit.reproduce import SyntheticSettings, run_synthetic
    >>> result = run_synthetic(SyntheticSettings.quick(inputs=("laplace",), epochs=2))  # doctest: +SKIP
    >>> result.run("laplace", "trained").report.norm_cv  # doctest: +SKIP
    """
    settings = configured(settings, SyntheticSettings, overrides, "reproduce")
    torch = _import_torch()
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    runs: list[SyntheticRun] = []
    losses: dict[str, list[float]] = {}
    accuracy: dict[str, float] = {}
    with _Deterministic(torch, settings.threads):
        for kind in settings.inputs:
            data = _data(kind, settings)
            runs.append(SyntheticRun(kind, "input", None,
                                     _audit(data.x_audit.astype(np.float64), HEADLINE_AUDIT, settings.seed)))
            say(f"{kind}: input audited")
            model, kind_losses, kind_runs = _train_infonce(torch, settings, data, kind, audit_along=True)
            runs.extend(kind_runs)
            losses[kind] = kind_losses
            say(f"{kind}: InfoNCE trained {settings.epochs_for(kind)} epochs (final loss {kind_losses[-1]:.3f}, "
                f"chance level {np.log(settings.batch):.3f}) and audited")
            sup_run, acc = _train_supervised(torch, settings, data, kind)
            runs.append(sup_run)
            accuracy[kind] = acc
            say(f"{kind}: supervised baseline trained (train accuracy {acc:.1%}) and audited")
    return SyntheticResult(settings, runs, losses, accuracy, time.perf_counter() - started)


def _train_infonce(torch, settings: SyntheticSettings, data: _Data, kind: str, audit_along: bool):
    """The InfoNCE encoder of one input; with ``audit_along``, its audits at init,
    every ``audit_every`` epochs and at the end."""
    torch.manual_seed(data.torch_seed)
    generator = torch.Generator().manual_seed(data.torch_seed)
    model = _encoder(torch, settings.encoder, settings.dim_in, settings.dim_out)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    x, labels = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    epochs = settings.epochs_for(kind)
    runs = []
    if audit_along:
        runs.append(SyntheticRun(kind, "init", 0, _audit(_embed(torch, model, data.x_audit), HEADLINE_AUDIT,
                                                          settings.seed)))
    losses: list[float] = []
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        total, batches = 0.0, 0
        for start in range(0, len(x) - settings.batch + 1, settings.batch):  # full batches only
            idx = order[start : start + settings.batch]
            first, second = positive_views(torch, data.law, settings, x[idx], labels[idx], generator)
            loss = infonce(torch, model(first), model(second), settings.tau)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, batches = total + float(loss.detach()), batches + 1
        losses.append(total / batches)
        if not audit_along:
            continue
        if epoch == epochs:
            runs.append(SyntheticRun(kind, "trained", epoch,
                                     _audit(_embed(torch, model, data.x_audit), HEADLINE_AUDIT, settings.seed)))
        elif epoch % settings.audit_every == 0:
            runs.append(SyntheticRun(kind, "epoch", epoch,
                                     _audit(_embed(torch, model, data.x_audit), EPOCH_AUDIT, settings.seed)))
    return model, losses, runs


def _train_supervised(torch, settings: SyntheticSettings, data: _Data, kind: str):
    torch.manual_seed(data.torch_seed + 1)
    generator = torch.Generator().manual_seed(data.torch_seed + 1)
    model = _encoder(torch, settings.encoder, settings.dim_in, settings.dim_out)
    head = torch.nn.Linear(settings.dim_out, int(data.y_train.max()) + 1)
    optimiser = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=settings.lr)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    epochs = settings.epochs_for(kind)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x) - settings.batch + 1, settings.batch):
            idx = order[start : start + settings.batch]
            loss = torch.nn.functional.cross_entropy(head(model(x[idx])), y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        accuracy = float((head(model(x)).argmax(dim=1) == y).double().mean())
    report = _audit(_embed(torch, model, data.x_audit), HEADLINE_AUDIT, settings.seed)
    return SyntheticRun(kind, "supervised", epochs, report), accuracy


# ----------------------------------------------------------------------------
# sweeps over the embedding dimension and the batch size

#: Cosine histograms of a sweep point: fixed bins on [−1, 1].
COSINE_BINS = np.linspace(-1.0, 1.0, 41)


@dataclass(frozen=True)
class SweepPoint:
    """The Laplace experiment trained at one (dimension, batch size), measured on
    held-out positive pairs: ``cv`` of the unnormalised norms, the paper's
    per-feature summaries of the unnormalised rows, ``alignment`` E[u·v],
    ``uniformity`` Φ = E log E exp(u·v/τ) (and its value for uniform rows on the
    sphere), the η² lower bound, and histograms of positive and negative cosines."""

    dim: int
    batch: int
    epochs: int
    final_loss: float
    cv: float
    ad_mean: float
    dp_mean_p: float
    gaussian: bool
    alignment: float
    uniformity: float
    uniformity_reference: float
    eta2_lower: float
    positive_hist: tuple[int, ...]
    negative_hist: tuple[int, ...]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["positive_hist"], out["negative_hist"] = list(self.positive_hist), list(self.negative_hist)
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


@dataclass
class SweepResult:
    settings: SyntheticSettings
    dims: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    points: list[SweepPoint]
    seconds: float = 0.0

    def to_dict(self) -> dict:
        s = asdict(self.settings)
        s["inputs"] = ["laplace"]
        return {"schema": SWEEP_SCHEMA, "settings": s, "dims": list(self.dims), "batch_sizes": list(self.batch_sizes),
                "cosine_bins": COSINE_BINS.tolist(), "points": [p.to_dict() for p in self.points],
                "seconds": self.seconds}


def _parse_grid(name: str, values, default: tuple[int, ...]) -> tuple[int, ...]:
    if values is None:
        return default
    out = []
    for value in [values] if isinstance(values, (str, int)) else values:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
        else:
            parts = [value]
        for part in parts:
            try:
                number = int(part)
            except (TypeError, ValueError):
                raise GaussAuditError(f"--{name} takes whole numbers separated by commas, like 32,64,128; "
                                      f"got {part!r}.") from None
            if number < 2:
                raise GaussAuditError(f"--{name} values must be ≥ 2; got {number}.")
            out.append(number)
    if not out:
        raise GaussAuditError(f"--{name} needs at least one value.")
    return tuple(dict.fromkeys(out))


def sweep_grid(dims=None, batch_sizes=None, settings: SyntheticSettings | None = None):
    """``(dims, batch_sizes)`` of a sweep: values given (ints or comma lists), the
    settings' own value for the other axis."""
    settings = settings or SyntheticSettings()
    return (_parse_grid("dims", dims, (settings.dim_out,)),
            _parse_grid("batch-sizes", batch_sizes, (settings.batch,)))


def run_sweep(dims=None, batch_sizes=None, settings: SyntheticSettings | None = None, progress=None,
              **overrides) -> SweepResult:
    """Retrain the Laplace encoder at every (dimension, batch size) of the grid and
    measure the held-out pairs: the paper's CV-against-batch-size and
    alignment/uniformity-against-dimension figures.

    Parameters
    ----------
    dims, batch_sizes : sequence of int or comma-separated str, optional
        The grid; an axis not given holds the settings' ``dim_out`` or ``batch``.
    settings : SyntheticSettings, optional
        Everything else (epochs, rows, seed…); the held-out pairs are two views
        of the ``n_audit`` audit rows, drawn with a generator seeded by ``seed``.

    Examples
    --------
    >>> from gaussaudit.reproduce.synthetic import SyntheticSettings, run_sweep
    >>> sweep = run_sweep(dims=[32, 64], settings=SyntheticSettings.quick(epochs=2))  # doctest: +SKIP
    >>> [round(p.alignment, 2) for p in sweep.points]  # doctest: +SKIP
    """
    from gaussaudit.stats.pairs import pair_statistics

    settings = configured(settings, SyntheticSettings, overrides, "reproduce")
    dims, batch_sizes = sweep_grid(dims, batch_sizes, settings)
    for batch in batch_sizes:
        if batch > settings.n_for("laplace"):
            raise GaussAuditError(f"batch size {batch} is larger than the {settings.n_for('laplace'):,} training rows.")
    torch = _import_torch()
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    points = []
    with _Deterministic(torch, settings.threads):
        for dim in dims:
            for batch in batch_sizes:
                point_settings = replace(settings, dim_out=dim, batch=batch, inputs=("laplace",))
                data = _data("laplace", point_settings)
                model, losses, _ = _train_infonce(torch, point_settings, data, "laplace", audit_along=False)
                generator = torch.Generator().manual_seed(settings.seed)
                x = torch.from_numpy(data.x_audit)
                first, second = positive_views(torch, data.law, point_settings, x, torch.from_numpy(data.y_audit),
                                               generator)
                plain = _embed(torch, model, data.x_audit)
                report = _audit(plain, EPOCH_AUDIT, settings.seed)
                column = report.paper_columns["unnormalised"]
                pairs = pair_statistics(_embed(torch, model, first), _embed(torch, model, second),
                                        alpha=1 / settings.tau, sample=min(len(plain), 2000), seed=settings.seed)
                points.append(SweepPoint(
                    dim=dim, batch=batch, epochs=point_settings.epochs_for("laplace"), final_loss=losses[-1],
                    cv=report.norm_cv, ad_mean=column.ad_mean, dp_mean_p=column.dp_mean_p,
                    gaussian=column.verdict.gaussian, alignment=pairs.alignment, uniformity=pairs.uniformity,
                    uniformity_reference=pairs.uniformity_reference, eta2_lower=pairs.eta2_lower,
                    positive_hist=tuple(int(c) for c in np.histogram(pairs.positive_cosines, COSINE_BINS)[0]),
                    negative_hist=tuple(int(c) for c in np.histogram(pairs.negative_cosines, COSINE_BINS)[0])))
                say(f"laplace d = {dim}, batch {batch}: CV {report.norm_cv:.3f}, alignment {pairs.alignment:.3f}, "
                    f"uniformity {pairs.uniformity:.3f}")
    return SweepResult(settings, dims, batch_sizes, points, time.perf_counter() - started)
