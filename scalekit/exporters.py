"""Export a built model, verified: a program (torch.export ``.pt2``, TorchScript ``.pt`` /
``.ts``, ONNX ``.onnx``) or its weights (a state_dict ``.pth``, ``.safetensors``).

Each exporter writes to a temporary file beside the target, loads that file back, checks its
outputs against the eager model on the example input (:func:`scalekit.equivalence.check_outputs`:
fp32 tolerance relative to the output's magnitude), and only then moves it over the target with
``os.replace``. An existing target is kept unless ``overwrite`` is given; a failed export or
check leaves nothing behind.

The model is exported in eval mode (its train/eval flags are restored afterwards):

- torch.export (``.pt2``, torch's format for deployment since 2.1; TorchScript is deprecated in
  torch 2.13): ``torch.export.export`` traces the eval-mode forward pass into an
  ``ExportedProgram`` with the example's input shape; ``torch.export.load(path).module()`` runs
  it. Checked by loading it back with ``torch.export.load``.
- TorchScript uses ``torch.jit.script``, so the file keeps the control flow of dropout and
  stochastic depth: ``torch.jit.load(...).train()`` trains like the eager model, and any batch
  size or input size works.
- ONNX uses torch's default (``torch.export``-based) exporter, which needs ``onnxscript``;
  verifying needs ``onnxruntime``. All three come with ``pip install 'scalekit-cnn[onnx]'``.
  The graph's input shape is the example's (batch x channels x height x width), named
  ``input``; the output is ``logits``.
- state_dict (``.pth``): ``torch.save(model.state_dict())``, the weights and BatchNorm buffers
  by parameter name, for ``build_model(spec).load_state_dict(torch.load(path))``. Checked by
  loading the file (``weights_only=True``) into a freshly built model and comparing its outputs.
- safetensors (``.safetensors``, the ``safetensors`` extra): the same tensors in the
  safetensors format (no pickle: safe to load from anyone), checked the same way.

torch (and onnx, safetensors) are imported inside the functions, never at module import; a
missing one is a one-line error naming the extra to install (:func:`scalekit.extras.require`).
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterator

from .bundled import load_named
from .counting import count_plan
from .errors import ScalekitError
from .extras import require, require_torch
from .files import atomic_path, check_artefact_path
from .memory import check_memory
from .plan import expand
from .strategies import scale_by

if TYPE_CHECKING:
    import torch
    from torch import nn

EXPORT_FORMATS = {".pt2": "torch.export", ".pt": "torchscript", ".ts": "torchscript",
                  ".onnx": "onnx", ".pth": "state_dict", ".safetensors": "safetensors"}
"""File extension -> export format."""

ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
"""What ONNX export imports: the ``onnx`` extra of pyproject.toml."""

NEEDS = {"onnx": ONNX_MODULES, "safetensors": ("safetensors",)}
"""Export format -> the optional modules it imports besides torch."""

WEIGHT_FORMATS = ("state_dict", "safetensors")
"""Formats that hold weights only: they load into a model built from the same spec."""

_INPUT_SEED = 0


@dataclass(frozen=True)
class ExportResult:
    """What was written, and how closely the file reproduces the eager model."""

    path: str
    format: str  # a value of EXPORT_FORMATS: "torch.export", "torchscript", "onnx", ...
    input_shape: tuple[int, ...]
    max_abs_diff: float  # largest |file's output - eager output| on the example input
    output_scale: float  # largest |eager output|: what max_abs_diff is to be read against
    name: str = ""  # the network's name (export_spec)
    params: int = 0  # its parameter count (export_spec)
    weights: str = ""  # the checkpoint its weights came from ('': freshly initialised)


def export_format(path: str | os.PathLike[str]) -> str:
    """The export format (a value of :data:`EXPORT_FORMATS`) from the file extension (raises
    :class:`ScalekitError`)."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in EXPORT_FORMATS:
        raise ScalekitError(f"cannot tell the format from {os.fspath(path)!r}: use a "
                            f"{', '.join(EXPORT_FORMATS)} file name")
    return EXPORT_FORMATS[ext]


def require_format(fmt: str) -> None:
    """Raise :class:`scalekit.extras.MissingDependency` (one line naming the extra to install)
    if exporting to ``fmt`` cannot run here: torch, and what the format needs besides."""
    label = {"onnx": "ONNX export", "safetensors": "safetensors export"}.get(fmt, "export")
    require_torch(label)
    if fmt in NEEDS:
        require(*NEEDS[fmt], purpose=label)


def require_onnx() -> None:
    """:func:`require_format` for ONNX."""
    require_format("onnx")


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


def export_program(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                   overwrite: bool = False) -> ExportResult:
    """``torch.export.export`` ``model`` (in eval mode) with ``example``'s input shape, save the
    ExportedProgram to ``path`` (``.pt2``), load it back with ``torch.export.load`` and check it
    against the eager model on ``example``."""
    import torch

    check_artefact_path(os.fspath(path), overwrite=overwrite)
    with _eval_mode(model), _quiet_torch_export():
        try:
            program = torch.export.export(model, (example,))
        except Exception as e:  # torch.export, like the ONNX exporter, may wrap a Ctrl-C
            interrupt = _interrupt_in(e)
            if interrupt is not None:
                raise interrupt from None
            raise
        with atomic_path(os.fspath(path), suffix=".pt2") as tmp:  # torch wants the .pt2 suffix
            torch.export.save(program, tmp)
            result = _verify(model, torch.export.load(tmp).module(), example, path,
                             "torch.export")
    return result


@contextmanager
def _quiet_torch_export() -> Iterator[None]:
    """torch.export's own log lines (e.g. about its archive format) say nothing about the model;
    keep them off the user's stderr."""
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _blank_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose every parameter and buffer is NaN (integers: -1), for checking
    a weights file when no fresh model can be built: whatever the file does not fill in shows."""
    import copy

    import torch

    blank = copy.deepcopy(model)
    with torch.no_grad():
        for t in [*blank.parameters(), *blank.buffers()]:
            t.fill_(float("nan") if t.is_floating_point() else -1)
    return blank


def _export_weights(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                    overwrite: bool, fresh: Callable[[], nn.Module] | None, fmt: str,
                    save: Callable[[dict, str], None],
                    load: Callable[[str], dict]) -> ExportResult:
    """Write ``model.state_dict()`` with ``save``, read it back with ``load`` into ``fresh()``
    (a newly built model of the same network; by default a copy of ``model`` with every tensor
    blanked), strictly (every key, no extra), and check that model against ``model``."""
    check_artefact_path(os.fspath(path), overwrite=overwrite)
    suffix = os.path.splitext(os.fspath(path))[1] or ".pth"
    with _eval_mode(model), atomic_path(os.fspath(path), suffix=suffix) as tmp:
        save({k: v.detach().contiguous() for k, v in model.state_dict().items()}, tmp)
        target = fresh() if fresh is not None else _blank_copy(model)
        try:
            target.load_state_dict(load(tmp), strict=True)
        except RuntimeError as e:  # missing, unexpected or mis-shaped keys
            raise ScalekitError(f"the written weights do not load into a fresh model "
                                f"({' '.join(str(e).split())[:300]}); nothing written") from None
        result = _verify(model, target.eval(), example, path, fmt)
    return result


def export_state_dict(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                      overwrite: bool = False,
                      fresh: Callable[[], nn.Module] | None = None) -> ExportResult:
    """Save ``model.state_dict()`` to ``path`` (``.pth``, ``torch.save``), load it back
    (``torch.load(weights_only=True)``) into ``fresh()`` and check its outputs against
    ``model``'s on ``example``."""
    import torch

    return _export_weights(
        model, path, example, overwrite=overwrite, fresh=fresh, fmt="state_dict",
        save=lambda sd, f: torch.save(sd, f),
        load=lambda f: torch.load(f, map_location="cpu", weights_only=True))


def export_safetensors(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                       overwrite: bool = False,
                       fresh: Callable[[], nn.Module] | None = None) -> ExportResult:
    """:func:`export_state_dict` in the safetensors format (the ``safetensors`` extra)."""
    require_format("safetensors")
    from safetensors.torch import load_file, save_file

    return _export_weights(
        model, path, example, overwrite=overwrite, fresh=fresh, fmt="safetensors",
        save=lambda sd, f: save_file(sd, f, metadata={"format": "pt"}), load=load_file)


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
    "torch.export": export_program,
    "torchscript": export_torchscript,
    "onnx": export_onnx,
    "state_dict": export_state_dict,
    "safetensors": export_safetensors,
}


def export_model(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor, *,
                 overwrite: bool = False,
                 fresh: Callable[[], nn.Module] | None = None) -> ExportResult:
    """Export in the format ``path``'s extension names (see :data:`EXPORT_FORMATS`). ``fresh``
    (weights formats): builds a new model of the same network to load the file into."""
    fmt = export_format(path)
    require_format(fmt)
    if fmt in WEIGHT_FORMATS:
        return EXPORTERS[fmt](model, path, example, overwrite=overwrite, fresh=fresh)
    return EXPORTERS[fmt](model, path, example, overwrite=overwrite)


def export_spec(spec: str, path: str | os.PathLike[str], *, batch: int = 1,
                overwrite: bool = False, force: bool = False,
                scaling: dict | None = None, weights: str | os.PathLike[str] | None = None,
                layout: str = "scalekit") -> ExportResult:
    """Build ``spec`` (a path or bundled name), scaled by ``scaling`` (the flags of
    :func:`scalekit.strategies.scale_by`: ``phi``, ``width``, ``preset``, ..., or ``strategy``
    and ``factor``), with freshly initialised weights or those of the checkpoint file ``weights``
    (whose keys are ``layout``'s, see scalekit.layouts), and export it to ``path`` (format by
    extension) with a ``batch`` x channels x resolution example input. ``force`` passes the
    memory guard; ``overwrite`` replaces an existing ``path``. A weights format (``.pth``,
    ``.safetensors``) is checked by loading the file into another freshly built model."""
    require_format(export_format(path))
    from .build import build_model, load_weights

    check_artefact_path(os.fspath(path), overwrite=overwrite)
    scaled, _ = scale_by(load_named(spec), **(scaling or {}))
    plan = expand(scaled)
    counts = count_plan(plan)
    check_memory(plan, batch=batch, force=force, counts=counts)
    example = example_input(batch, scaled.in_channels, scaled.resolution)
    model = build_model(plan)
    if weights is not None:
        load_weights(model, weights, layout=layout)
    result = export_model(model, path, example, overwrite=overwrite,
                          fresh=lambda: build_model(plan))
    return replace(result, name=scaled.name, params=counts.total.params,
                   weights=os.fspath(weights) if weights is not None else "")


__all__ = ["EXPORTERS", "EXPORT_FORMATS", "ExportResult", "NEEDS", "WEIGHT_FORMATS",
           "example_input", "export_format", "export_model", "export_onnx", "export_program",
           "export_safetensors", "export_spec", "export_state_dict", "export_torchscript",
           "require_format", "require_onnx"]
