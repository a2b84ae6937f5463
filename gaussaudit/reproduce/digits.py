"""``gaussaudit reproduce digits``: the paper's supervised-versus-contrastive
contrast on real images that ship with scikit-learn (``load_digits``: 1,797
8×8 handwritten digits), on the CPU, offline.

One two-layer MLP with one ReLU (64 → ``hidden`` → ``dim_out``, as the
paper's CIFAR-10 MLP) is trained twice from the same initialisation: with
InfoNCE on two augmented views of each image (a shift of up to one pixel, a
rotation of up to 10°, Gaussian pixel noise), and with cross-entropy through a
linear classifier on the labels. The held-out split's embeddings (the MLP's
output, unnormalised as in the paper's Table 1) are audited at initialisation,
every ``audit_every`` epochs and after training, with the same ``audit()`` as
``scan``.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from gaussaudit.audit import AuditConfig, AuditReport, audit
from gaussaudit.config import configured
from gaussaudit.errors import GaussAuditError
from gaussaudit.reproduce.synthetic import EPOCH_AUDIT, HEADLINE_AUDIT, SyntheticRun, _import_torch, infonce

SCHEMA = "gaussaudit.reproduce-digits/1"
MODELS = ("contrastive", "supervised")


@dataclass(frozen=True)
class DigitsSettings:
    """Every knob of the digits experiment; ``quick()`` is the short mode the tests use."""

    epochs: int = 60
    hidden: int = 256
    dim_out: int = 64
    tau: float = 0.1
    lr: float = 1e-3
    batch: int = 128
    test_share: float = 0.3
    audit_every: int = 5
    max_rotation: float = 10.0
    noise_std: float = 0.1
    seed: int = 0
    threads: int = 1

    @classmethod
    def quick(cls, **overrides) -> "DigitsSettings":
        return cls(**{"epochs": 6, "audit_every": 3, **overrides})

    def validated(self) -> "DigitsSettings":
        for name in ("epochs", "hidden", "dim_out", "batch", "audit_every", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GaussAuditError(f"{name} must be a whole number ≥ 1; got {value!r}.")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise GaussAuditError(f"seed must be a whole number ≥ 0; got {self.seed!r}.")
        if not 0.1 <= self.test_share <= 0.5:
            raise GaussAuditError(f"test_share must be between 0.1 and 0.5; got {self.test_share!r}.")
        for name in ("tau", "lr"):
            if not getattr(self, name) > 0:
                raise GaussAuditError(f"{name} must be > 0; got {getattr(self, name)!r}.")
        return self


@dataclass
class DigitsResult:
    settings: DigitsSettings
    #: ``input`` is "pixels" (the raw test images) or a model ("contrastive", "supervised").
    runs: list[SyntheticRun]
    infonce_loss: list[float] = field(default_factory=list)
    test_accuracy: float = float("nan")
    n_train: int = 0
    n_test: int = 0
    seconds: float = 0.0

    def run(self, input: str, stage: str) -> SyntheticRun:
        return next(r for r in self.runs if r.input == input and r.stage == stage)

    def along_training(self, model: str) -> list[SyntheticRun]:
        return sorted((r for r in self.runs if r.input == model and r.stage in ("init", "epoch", "trained")),
                      key=lambda r: r.epoch)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "settings": asdict(self.settings), "n_train": self.n_train, "n_test": self.n_test,
                "runs": [r.to_dict() for r in self.runs], "infonce_loss": self.infonce_loss,
                "supervised_test_accuracy": self.test_accuracy, "seconds": self.seconds}


def load_split(settings: DigitsSettings):
    """scikit-learn's digits, pixels scaled to [0, 1], split once (seeded, stratified)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise GaussAuditError("reproduce digits reads scikit-learn's bundled digits; install it: "
                              "pip install 'gaussaudit[reproduce]'") from None
    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)
    rng = np.random.default_rng([settings.seed, 7])
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        test[rng.choice(members, size=int(round(settings.test_share * len(members))), replace=False)] = True
    return x[~test], y[~test], x[test], y[test]


def augment(torch, x, settings: DigitsSettings, generator):
    """A random shift (≤ 1 pixel each way), rotation (≤ ``max_rotation``°) and
    pixel noise of each 8×8 image, as one batched affine resampling."""
    f = torch.nn.functional
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(settings.max_rotation)
    shift = torch.randint(-1, 2, (n, 2), generator=generator).to(x.dtype) * (2 / 8)  # one pixel in [-1, 1] units
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    images = x.view(n, 1, 8, 8)
    grid = f.affine_grid(theta, list(images.shape), align_corners=False)
    moved = f.grid_sample(images, grid, padding_mode="zeros", align_corners=False).view(n, 64)
    return moved + settings.noise_std * torch.randn(moved.shape, generator=generator)


def _mlp(torch, settings: DigitsSettings):
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, settings.hidden), nn.ReLU(), nn.Linear(settings.hidden, settings.dim_out))


def _audit(torch, model, x, options: dict, seed: int) -> AuditReport:
    with torch.no_grad():
        embeddings = model(torch.from_numpy(x)).numpy().astype(np.float64)
    return audit(embeddings, AuditConfig(sample=0, seed=seed, threads=1, **options))


def run_digits(settings: DigitsSettings | None = None, progress=None, **overrides) -> DigitsResult:
    """Train the MLP with InfoNCE and with cross-entropy and audit both along training.

    Returns
    -------
    DigitsResult
        ``runs``: the raw test pixels, then for each model init, every
        ``audit_every`` epochs and the trained model.
    """
    settings = configured(settings, DigitsSettings, overrides, "reproduce digits")
    torch = _import_torch()
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    x_train, y_train, x_test, y_test = load_split(settings)
    threads_before, deterministic_before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(True)
    try:
        runs = [SyntheticRun("pixels", "input", None, audit(x_test.astype(np.float64), AuditConfig(
            sample=0, seed=settings.seed, threads=1, **HEADLINE_AUDIT)))]
        torch.manual_seed(settings.seed)
        initial = _mlp(torch, settings).state_dict()
        x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
        losses: list[float] = []
        accuracy = float("nan")
        for model_kind in MODELS:
            model = _mlp(torch, settings)
            model.load_state_dict(initial)  # the same initialisation for both
            head = torch.nn.Linear(settings.dim_out, 10) if model_kind == "supervised" else None
            parameters = [*model.parameters(), *(head.parameters() if head is not None else ())]
            optimiser = torch.optim.Adam(parameters, lr=settings.lr)
            generator = torch.Generator().manual_seed(settings.seed + (model_kind == "supervised"))
            runs.append(SyntheticRun(model_kind, "init", 0, _audit(torch, model, x_test, HEADLINE_AUDIT, settings.seed)))
            for epoch in range(1, settings.epochs + 1):
                order = torch.randperm(len(x), generator=generator)
                total, batches = 0.0, 0
                for start in range(0, len(x) - settings.batch + 1, settings.batch):
                    idx = order[start : start + settings.batch]
                    if head is None:
                        u = model(augment(torch, x[idx], settings, generator))
                        v = model(augment(torch, x[idx], settings, generator))
                        loss = infonce(torch, u, v, settings.tau)
                    else:
                        loss = torch.nn.functional.cross_entropy(head(model(x[idx])), y[idx])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total, batches = total + float(loss.detach()), batches + 1
                if head is None:
                    losses.append(total / batches)
                last = epoch == settings.epochs
                if last or epoch % settings.audit_every == 0:
                    options = HEADLINE_AUDIT if last else EPOCH_AUDIT
                    runs.append(SyntheticRun(model_kind, "trained" if last else "epoch", epoch,
                                             _audit(torch, model, x_test, options, settings.seed)))
            if head is not None:
                with torch.no_grad():
                    accuracy = float((head(model(torch.from_numpy(x_test))).argmax(1) == torch.from_numpy(y_test))
                                     .double().mean())
                say(f"supervised: cross-entropy {settings.epochs} epochs, test accuracy {accuracy:.1%}; audited")
            else:
                say(f"contrastive: InfoNCE {settings.epochs} epochs (final loss {losses[-1]:.3f}, chance "
                    f"{math.log(settings.batch):.3f}); audited")
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)
    return DigitsResult(settings, runs, losses, accuracy, len(x_train), len(x_test), time.perf_counter() - started)
