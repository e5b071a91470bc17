"""Export a built model to TorchScript (``.pt`` / ``.ts``) or ONNX (``.onnx``), verified.

Each exporter writes to a temporary file beside the target, loads that file back (TorchScript
with ``torch.jit.load``, ONNX with onnxruntime), checks its outputs against the eager model on the
example input (:func:`scalekit.optimize.check_outputs`: fp32 tolerance relative to the output's
magnitude), and only then moves it over the target with ``os.replace``. An existing target is
kept unless ``overwrite`` is given; a failed export or check leaves nothing behind.

The model is exported in eval mode (its train/eval flags are restored afterwards):

- TorchScript uses ``torch.jit.script``, so the file keeps the control flow of dropout and
  stochastic depth: ``torch.jit.load(...).train()`` trains like the eager model, and any batch
  size or input size works.
- ONNX uses torch's default (``torch.export``-based) exporter, which needs ``onnxscript``;
  verifying needs ``onnxruntime``. All three come with ``pip install 'scalekit[onnx]'``. The
  graph's input shape is the example's (batch x channels x height x width), named ``input``;
  the output is ``logits``.

torch (and onnx) are imported inside the functions, never at module import.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterator

from .bundled import load_named
from .counting import count_plan
from .errors import ScalekitError
from .files import atomic_path, check_artefact_path
from .memory import check_memory
from .plan import expand
from .scaling import scale_spec

if TYPE_CHECKING:
    import torch
    from torch import nn

EXPORT_FORMATS = {".pt": "torchscript", ".ts": "torchscript", ".onnx": "onnx"}
"""File extension -> export format."""

ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
"""What ONNX export imports: the ``onnx`` extra of pyproject.toml."""

_INPUT_SEED = 0


@dataclass(frozen=True)
class ExportResult:
    """What was written, and how closely the file reproduces the eager model."""

    path: str
    format: str  # "torchscript" or "onnx"
    input_shape: tuple[int, ...]
    max_abs_diff: float  # largest |file's output - eager output| on the example input
    output_scale: float  # largest |eager output|: what max_abs_diff is to be read against
    name: str = ""  # the network's name (export_spec)
    params: int = 0  # its parameter count (export_spec)
    weights: str = ""  # the checkpoint its weights came from ('': freshly initialised)


def export_format(path: str | os.PathLike[str]) -> str:
    """``"torchscript"`` or ``"onnx"``, from the file extension (raises :class:`ScalekitError`)."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in EXPORT_FORMATS:
        raise ScalekitError(f"cannot tell the format from {os.fspath(path)!r}: use a "
                            f"{', '.join(EXPORT_FORMATS)} file name")
    return EXPORT_FORMATS[ext]


def require_onnx() -> None:
    """Raise :class:`ScalekitError` naming the extra to install if ONNX export cannot run."""
    missing = []
    for name in ONNX_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ScalekitError(f"ONNX export needs {', '.join(missing)}: "
                            "pip install 'scalekit[onnx]'")


def example_input(batch: int, in_channels: int, resolution: int | tuple[int, int]) -> torch.Tensor:
    """A ``batch x in_channels x H x W`` standard-normal input from a fixed seed."""
    import torch

    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    generator = torch.Generator().manual_seed(_INPUT_SEED)
    return torch.randn(batch, in_channels, h, w, generator=generator)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def _verify(model: nn.Module, exported: Callable[[torch.Tensor], torch.Tensor],
            example: torch.Tensor, path: str | os.PathLike[str], fmt: str) -> ExportResult:
    import torch

    from .equivalence import check_outputs

    try:
        max_diff = check_outputs(model, exported, example)  # type: ignore[arg-type]
    except ValueError as e:
        raise ScalekitError(f"the exported model does not match the eager model ({e}); "
                            "nothing written") from None
    with torch.inference_mode():
        scale = float(model(example).abs().max())
    return ExportResult(os.fspath(path), fmt, tuple(example.shape), max_diff, scale)


def _interrupt_in(e: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or signal) behind an exporter's error, if there is one: torch's exporters
    wrap what interrupted them in their own errors."""
    seen: set[int] = set()
    x: BaseException | None = e
    while x is not None and id(x) not in seen:
        if isinstance(x, KeyboardInterrupt):
            return x
        seen.add(id(x))
        x = x.__cause__ or x.__context__
    return None


def export_torchscript(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                       overwrite: bool = False) -> ExportResult:
    """Script ``model`` (in eval mode) to ``path``, reload it and check it against the eager model
    on ``example``."""
    import torch

    check_artefact_path(os.fspath(path), overwrite=overwrite)
    with _eval_mode(model), warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript in favour of torch.compile / torch.export
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        scripted = torch.jit.script(model)
        with atomic_path(os.fspath(path), suffix=".pt") as tmp:
            torch.jit.save(scripted, tmp)
            result = _verify(model, torch.jit.load(tmp), example, path, "torchscript")
    return result


class _OnnxRuntime:
    """An onnxruntime session called like a module: torch tensor in, torch tensor out."""

    def __init__(self, path: str):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0])


@contextmanager
def _quiet_onnx_exporter() -> Iterator[None]:
    """The exporter's own warnings (e.g. 'torchvision is not installed') say nothing about
    scalekit's models; keep them off the user's stderr."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                overwrite: bool = False) -> ExportResult:
    """Export ``model`` (in eval mode) to ONNX at ``path`` with ``example``'s input shape, run the
    file with onnxruntime and check it against the eager model. Needs the ``onnx`` extra
    (:func:`require_onnx`)."""
    import torch

    require_onnx()
    check_artefact_path(os.fspath(path), overwrite=overwrite)
    with _eval_mode(model), atomic_path(os.fspath(path), suffix=".onnx") as tmp:
        with _quiet_onnx_exporter():
            try:
                torch.onnx.export(model, (example,), tmp, dynamo=True, external_data=False,
                                  verbose=False, input_names=["input"], output_names=["logits"])
            except Exception as e:
                interrupt = _interrupt_in(e)
                if interrupt is not None:
                    raise interrupt from None
                raise
        result = _verify(model, _OnnxRuntime(tmp), example, path, "onnx")
    return result


EXPORTERS: dict[str, Callable[..., ExportResult]] = {
    "torchscript": export_torchscript,
    "onnx": export_onnx,
}


def export_model(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                 overwrite: bool = False) -> ExportResult:
    """Export to TorchScript or ONNX, as ``path``'s extension says (see :data:`EXPORT_FORMATS`)."""
    return EXPORTERS[export_format(path)](model, path, example, overwrite=overwrite)


def export_spec(spec: str, path: str | os.PathLike[str], *, batch: int = 1,
                overwrite: bool = False, force: bool = False,
                scaling: dict | None = None, weights: str | os.PathLike[str] | None = None,
                layout: str = "scalekit") -> ExportResult:
    """Build ``spec`` (a path or bundled name), scaled by ``scaling`` (the flags of
    :func:`scalekit.scaling.coefficients`), with freshly initialised weights or those of the
    checkpoint file ``weights`` (whose keys are ``layout``'s, see scalekit.layouts), and export
    it to ``path`` (format by extension) with a ``batch`` x channels x resolution example input.
    ``force`` passes the memory guard; ``overwrite`` replaces an existing ``path``."""
    from .build import build_model, load_weights

    if export_format(path) == "onnx":
        require_onnx()
    check_artefact_path(os.fspath(path), overwrite=overwrite)
    flags = {k: v for k, v in (scaling or {}).items() if v is not None}
    scaled, _ = scale_spec(load_named(spec), **flags)
    plan = expand(scaled)
    counts = count_plan(plan)
    check_memory(plan, batch=batch, force=force, counts=counts)
    example = example_input(batch, scaled.in_channels, scaled.resolution)
    model = build_model(plan)
    if weights is not None:
        load_weights(model, weights, layout=layout)
    result = export_model(model, path, example, overwrite=overwrite)
    return replace(result, name=scaled.name, params=counts.total.params,
                   weights=os.fspath(weights) if weights is not None else "")


__all__ = ["EXPORTERS", "EXPORT_FORMATS", "ExportResult", "example_input", "export_format",
           "export_model", "export_spec", "export_onnx", "export_torchscript", "require_onnx"]
