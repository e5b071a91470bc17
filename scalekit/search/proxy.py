"""``builtin:proxy``: a small, procedurally generated image task for trying step 1 without data.

A PROXY TASK, NOT ImageNet: its accuracies only rank candidates against each other.

The search trains every candidate; ImageNet is out of reach on a laptop, so the built-in evaluator
trains each candidate for a few epochs on "oriented texture pairs": each 64 x 64 image is split
at a random vertical line into a left and a right region, each filled with a noisy sinusoidal
grating; the class is the pair (orientation of the left grating, orientation of the right one),
``orientations ** 2`` classes (64 by default). The task is built so that every scaling
dimension pays off:

- resolution: grating frequencies reach 0.32 cycles per native pixel, and a candidate sees each
  image resized (antialiased) to its own resolution, so at 32 px the finest gratings wash out
  (Nyquist is 0.25 cycles per native pixel at 32 px, 0.33 at 42 px);
- width: 8 orientations 22.5 degrees apart at any of a 5x range of frequencies, in 64 classes,
  need many distinct filters;
- depth: heavy pixel noise must be pooled over a wide area, and the label depends on which side
  of a randomly placed boundary each texture lies: a relation, not a bag of features.

Everything is generated in memory with numpy from ``data_seed`` (part of the task's definition:
the same images for every candidate and seed); a candidate's ``seed`` sets its initialisation and
batch order. Training is single-threaded by default (``SCALEKIT_THREADS``), so a result is
reproducible on a given machine.

The search runs ``python -m scalekit.search.proxy --spec FILE --out FILE --seed N --config JSON``
per evaluation (a command evaluator like any other: timeouts, process-group kill, stderr tail).
Its bundled baseline is ``specs/proxy_mbconv.yaml`` (a few MBConv stages at 32 px, made for this
task); any other spec is trained as it is, with its classifier set to the task's classes.

This module's top level needs neither torch nor numpy: they are imported by the functions that
generate and train.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Sequence

from .evaluators import CommandEvaluator
from .grid import SearchUsageError

PROXY_VERSION = 1
PROXY_SPEC = "proxy_mbconv"  # the bundled baseline made for this task (specs/proxy_mbconv.yaml)
NATIVE = 64  # px: images are rendered at this size; each candidate sees them at its own
CHUNK = 500  # images rendered at a time (bounds the float32 working set to ~25 MB)
SLOW_MACS = 20e6  # a baseline past this many MACs trains for many minutes per candidate here
WARNING = ("builtin:proxy is a PROXY TASK, NOT ImageNet: oriented texture pairs, 64 x 64 "
           "procedurally generated images (class = the orientations of a left and a right "
           "grating); its accuracies only rank candidates against each other and say nothing "
           "about any real data set")


@dataclass(frozen=True)
class ProxyConfig:
    """The proxy task and its training budget. The defaults are the recommended proxy."""

    # the task
    orientations: int = 8  # grating orientations; classes = orientations ** 2
    freq_min: float = 0.06  # cycles per native pixel, log-uniform between the two
    freq_max: float = 0.32
    angle_jitter: float = 0.06  # radians of random tilt around each orientation
    noise: float = 0.3  # standard deviation of the pixel noise (images in [0, 1])
    contrast: float = 0.3  # grating amplitude (x U(contrast_min, 1) per colour channel)
    contrast_min: float = 0.25
    train: int = 8000  # training images
    test: int = 2000  # held-out images (accuracy is measured on these)
    data_seed: int = 0  # the images: part of the task's definition, the same for every seed
    # training
    epochs: int = 3
    batch: int = 64
    lr: float = 8e-3  # AdamW peak; one-cycle: warm-up, then cosine to ~0
    weight_decay: float = 0.05  # conv / linear weights only
    warmup: float = 0.15  # share of the steps spent warming up
    grad_clip: float = 5.0  # a guard against a rare blow-up, not a tuning knob

    @property
    def classes(self) -> int:
        return self.orientations ** 2

    def check(self) -> "ProxyConfig":
        ints = {"orientations": (2, 64), "train": (16, 10_000_000), "test": (16, 10_000_000),
                "epochs": (1, 10_000), "batch": (2, 100_000), "data_seed": (0, 2 ** 32 - 1)}
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise SearchUsageError(f"builtin:proxy: {name} must be a whole number from {lo} "
                                       f"to {hi:,}, got {v!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name not in ints and (isinstance(v, bool) or not isinstance(v, (int, float))
                                       or not math.isfinite(v) or v < 0):
                raise SearchUsageError(f"builtin:proxy: {f.name} must be a number >= 0, got "
                                       f"{v!r}")
        if not 0 < self.freq_min <= self.freq_max or self.batch > self.train:
            raise SearchUsageError("builtin:proxy: needs 0 < freq_min <= freq_max and batch <= "
                                   "train")
        return self


def parse_options(text: str) -> ProxyConfig:
    """``"epochs=2,train=2000"`` (after ``builtin:proxy:``) -> a checked :class:`ProxyConfig`."""
    kinds = {f.name: f.type for f in fields(ProxyConfig)}
    kw: dict[str, Any] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in kinds:
            raise SearchUsageError(f"--evaluate builtin:proxy:{text}: unknown option {item!r} "
                                   f"(options: {', '.join(kinds)})")
        try:
            kw[key] = int(value) if kinds[key] in ("int", int) else float(value)
        except ValueError:
            raise SearchUsageError(f"--evaluate builtin:proxy: {key}={value!r} is not a "
                                   f"{kinds[key]}") from None
    return ProxyConfig(**kw).check()


def proxy_evaluator(config: ProxyConfig = ProxyConfig(),
                    timeout: float | None = None) -> CommandEvaluator:
    """The command evaluator that runs this module on each candidate."""
    cfg = json.dumps(asdict(config.check()), sort_keys=True)
    argv = ("{python}", "-m", "scalekit.search.proxy", "--spec", "{spec}", "--out", "{out}",
            "--seed", "{seed}", "--config", cfg)
    changed = {k: v for k, v in asdict(config).items() if getattr(ProxyConfig(), k) != v}
    shown = "builtin:proxy" + (":" + ",".join(f"{k}={v}" for k, v in changed.items())
                               if changed else "")
    return CommandEvaluator(template=shown, metric="accuracy", timeout=timeout, argv=argv,
                            name=f"builtin:proxy v{PROXY_VERSION} {cfg}", proxy=True)


def notes(base: Any, baseline: Any) -> tuple[str, ...]:
    """What the output says about the proxy besides :data:`WARNING`: which baseline it trains
    (and whether that will be slow)."""
    from ..bundled import resolve_spec

    own = bool(base.path) and os.path.realpath(base.path) == os.path.realpath(
        resolve_spec(PROXY_SPEC))
    which = (f"proxy baseline: {PROXY_SPEC} (bundled, made for the proxy task: "
             f"{baseline.macs / 1e6:.2f} M MACs at {base.resolution} px)" if own else
             f"builtin:proxy trains {base.name} as given ({baseline.macs / 1e6:,.1f} M MACs at "
             f"{base.resolution} px; not scaled down), with a {ProxyConfig().classes}-class "
             f"classifier; its own baseline is {PROXY_SPEC}")
    out = [which]
    if not own and baseline.macs > SLOW_MACS:
        out.append(f"builtin:proxy: {base.name} is {baseline.macs / SLOW_MACS:.0f}x the size the "
                   f"proxy is made for: expect minutes per candidate (try `scalekit search "
                   f"{PROXY_SPEC} --evaluate builtin:proxy`)")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# the data (numpy)


def generate(cfg: ProxyConfig = ProxyConfig()):
    """``(x_train, y_train, x_test, y_test)``: uint8 images (N, 3, 64, 64) and int64 labels,
    deterministic in ``cfg``; each split balanced over the classes. About 1 s per 10,000."""
    import numpy as np

    rng = np.random.default_rng([cfg.data_seed, 0])
    labels = np.concatenate([rng.permutation(np.arange(n) % cfg.classes)
                             for n in (cfg.train, cfg.test)])
    x = np.empty((len(labels), 3, NATIVE, NATIVE), np.uint8)
    for chunk, start in enumerate(range(0, len(labels), CHUNK)):
        x[start:start + CHUNK] = render(np.random.default_rng([cfg.data_seed, 1, chunk]),
                                        labels[start:start + CHUNK], cfg)
    y = labels.astype(np.int64)
    return x[:cfg.train], y[:cfg.train], x[cfg.train:], y[cfg.train:]


def _gratings(rng, orientation, cfg: ProxyConfig):
    """(n, 64, 64) float32 sinusoids: an angle per orientation index (plus jitter), a random
    log-uniform frequency and a random phase each."""
    import numpy as np

    n = len(orientation)
    theta = orientation * (math.pi / cfg.orientations) + rng.normal(0.0, cfg.angle_jitter, n)
    freq = np.exp(rng.uniform(math.log(cfg.freq_min), math.log(cfg.freq_max), n))
    phase = rng.uniform(0.0, 2 * math.pi, n)
    yy, xx = np.mgrid[0:NATIVE, 0:NATIVE].astype(np.float32)
    along = (np.cos(theta).astype(np.float32)[:, None, None] * xx
             + np.sin(theta).astype(np.float32)[:, None, None] * yy)
    return np.cos((2 * math.pi * freq).astype(np.float32)[:, None, None] * along
                  + phase.astype(np.float32)[:, None, None])


def render(rng, labels, cfg: ProxyConfig):
    """uint8 (N, 3, 64, 64) images of ``labels`` (label = left * orientations + right)."""
    import numpy as np

    n = len(labels)
    left, right = np.divmod(labels, cfg.orientations)
    boundary = rng.uniform(0.3, 0.7, n) * NATIVE
    on_left = np.arange(NATIVE)[None, None, :] < boundary[:, None, None]
    texture = np.where(on_left, _gratings(rng, left, cfg), _gratings(rng, right, cfg))[:, None]
    grey = rng.uniform(0.35, 0.65, (n, 1, 1, 1)).astype(np.float32)
    amp = (cfg.contrast * rng.uniform(cfg.contrast_min, 1.0, (n, 3, 1, 1))).astype(np.float32)
    img = grey + amp * texture
    # uniform noise of standard deviation cfg.noise (several times cheaper than Gaussian)
    img += (rng.random(img.shape, dtype=np.float32) - 0.5) * np.float32(cfg.noise * 12 ** 0.5)
    return (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# training (torch)


def _at_resolution(x, px: int):
    """uint8 (N, C, 64, 64) -> float32 (N, C, px, px), antialiased, about unit scale."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(x).to(torch.float32).div_(255.0)
    if px != t.shape[-1]:
        t = F.interpolate(t, size=(px, px), mode="bilinear", antialias=True, align_corners=False)
    return t.sub_(0.5).div_(0.25)


def proxy_spec(spec: Any, cfg: ProxyConfig) -> Any:
    """``spec`` as the proxy trains it: the task's classes and 3 colour channels."""
    return replace(spec, num_classes=cfg.classes, in_channels=3)


def train_and_evaluate(spec: Any, cfg: ProxyConfig = ProxyConfig(), seed: int = 0, *,
                       data: Sequence[Any] | None = None, threads: int = 1) -> dict[str, Any]:
    """Train a fresh network for ``spec`` (at its own resolution) on the proxy task and return
    its held-out ``accuracy`` with ``train_loss`` (last epoch), ``seconds``, ``params``,
    ``resolution``. Raises FloatingPointError if the loss stops being finite."""
    import torch
    import torch.nn.functional as F

    from ..build import build_model

    torch.set_num_threads(max(1, threads))
    t0, cpu0 = time.perf_counter(), time.process_time()
    spec = proxy_spec(spec, cfg)
    x_tr, y_tr, x_te, y_te = data if data is not None else generate(cfg)
    fmt = torch.channels_last  # depthwise convs and BatchNorm run faster so on CPU
    xtr = _at_resolution(x_tr, spec.resolution).contiguous(memory_format=fmt)
    xte = _at_resolution(x_te, spec.resolution).contiguous(memory_format=fmt)
    ytr, yte = torch.from_numpy(y_tr), torch.from_numpy(y_te)

    torch.manual_seed(seed)
    model = build_model(spec, zero_init_residual=True).to(memory_format=fmt)
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]  # BatchNorm and biases
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
    steps = len(xtr) // cfg.batch  # the last partial batch is dropped (BatchNorm)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps * cfg.epochs,
                                                pct_start=cfg.warmup, anneal_strategy="cos",
                                                div_factor=25.0, final_div_factor=1e3)
    order = torch.Generator().manual_seed(seed)
    model.train()
    loss_sum = 0.0
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(xtr), generator=order)
        loss_sum = 0.0
        for s in range(steps):
            idx = perm[s * cfg.batch:(s + 1) * cfg.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the training loss became {loss.item()} at epoch "
                                         f"{epoch + 1}, step {s + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            loss_sum += loss.item()
    train_s = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(xte), 500):
            correct += int((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum())
    return {"accuracy": correct / len(xte), "train_loss": loss_sum / max(steps, 1),
            "seconds": time.perf_counter() - t0, "train_seconds": train_s,
            "cpu_seconds": time.process_time() - cpu0,
            "params": sum(p.numel() for p in model.parameters()), "resolution": spec.resolution,
            "classes": cfg.classes, "seed": seed, "threads": torch.get_num_threads(),
            "task": "proxy (oriented texture pairs), not ImageNet"}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scalekit.search.proxy --spec FILE --out FILE --seed N [--config JSON]``:
    one evaluation, its result as a JSON object in --out. Errors: one line on stderr, exit 1."""
    p = argparse.ArgumentParser(prog="python -m scalekit.search.proxy",
                                description="Train one network on scalekit's proxy task (NOT "
                                            "ImageNet) and write its held-out accuracy as JSON.")
    p.add_argument("--spec", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default="{}", help="ProxyConfig fields as a JSON object")
    a = p.parse_args(argv)
    try:
        from ..spec import load_spec

        cfg = ProxyConfig(**json.loads(a.config)).check()
        spec = load_spec(a.spec)
        threads = int(os.environ.get("SCALEKIT_THREADS") or 1)
        result = train_and_evaluate(spec, cfg, a.seed, threads=threads)
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f)
    except Exception as e:  # noqa: BLE001 - the traceback, then one line, for the record
        import traceback

        traceback.print_exc()
        print(f"scalekit proxy: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a command by the search
    sys.exit(main())
