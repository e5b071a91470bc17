"""What a latency is of: the runtime a network runs on (``--runtime``).

- ``eager``: the torch module as built (eval mode, ``torch.inference_mode``);
- ``optimized``: the inference-optimised copy of :mod:`scalekit.latency.optimize` (BatchNorm
  folded, channels_last, TorchScript trace + freeze);
- ``onnxruntime``: the module exported to ONNX (torch's TorchScript-based exporter, in memory)
  and run by an onnxruntime CPU session with ``threads`` intra-op threads, sequential execution,
  all graph optimisations. Needs the ``onnx`` extra (``pip install 'scalekit-cnn[onnx]'``).

Every runtime but eager is checked against the eager module (fp32 tolerance, on an input it was
not made from) before it is timed. torch and onnxruntime are imported inside the functions;
:func:`require_runtime` needs neither.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ScalekitError
from ..extras import install_hint

if TYPE_CHECKING:
    import torch
    from torch import nn

RUNTIMES = ("eager", "optimized", "onnxruntime")
LABELS = {"eager": "torch eager", "optimized": "torch optimised (BN folded, channels_last, "
          "TorchScript frozen)", "onnxruntime": "onnxruntime (CPU)"}
SHORT = {"eager": "eager", "optimized": "optimised", "onnxruntime": "onnxruntime"}


def require_runtime(runtime: str) -> None:
    """Raise :class:`ScalekitError` (one line naming the extra) if ``runtime`` cannot run here."""
    if runtime not in RUNTIMES:
        raise ScalekitError(f"unknown runtime {runtime!r} (valid: {', '.join(RUNTIMES)})")
    if runtime == "onnxruntime":
        try:
            found = importlib.util.find_spec("onnxruntime") is not None
        except (ImportError, ValueError):  # a broken or blocked installation
            found = False
        if not found:
            raise ScalekitError(f"--runtime onnxruntime needs onnxruntime: {install_hint('onnx')}")


def runtime_version(runtime: str) -> str | None:
    """The version of what runs the network beyond torch (onnxruntime's), from package metadata."""
    if runtime != "onnxruntime":
        return None
    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


class OnnxForward:
    """An onnxruntime session called like a module: a tensor in, a tensor out."""

    def __init__(self, model: bytes, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0])


def onnx_bytes(model: nn.Module, example: torch.Tensor) -> bytes:
    """``model`` (eval mode) as an ONNX graph for ``example``'s shape, in memory."""
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():  # torch 2.13 deprecates this exporter in favour of dynamo's
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(model, (example,), buf, dynamo=False, input_names=["input"],
                              output_names=["output"], opset_version=17)
    return buf.getvalue()


@dataclass(frozen=True)
class Prepared:
    """A network ready to time on a runtime: ``forward`` (tensor in, tensor out), what was done
    (``method``) and its largest output difference from eager (None for eager itself)."""

    forward: Callable[[Any], Any]
    method: str
    max_abs_diff: float | None


def prepare(model: nn.Module, runtime: str, example: torch.Tensor, check: torch.Tensor | None,
            threads: int) -> Prepared:
    """``model`` (eval mode) on ``runtime``, made from ``example`` and, unless ``check`` is None,
    checked against the eager model on ``check`` (``ValueError`` when it differs)."""
    from ..equivalence import check_outputs
    from .optimize import optimize_for_inference

    require_runtime(runtime)
    if runtime == "eager":
        return Prepared(model, LABELS["eager"], None)
    if runtime == "optimized":
        fast, method = optimize_for_inference(model, example)
    else:
        fast, method = OnnxForward(onnx_bytes(model, example), threads), \
            f"ONNX (opset 17) on onnxruntime {runtime_version(runtime)}, {threads} intra-op " \
            f"thread{'s' if threads != 1 else ''}, sequential, all graph optimisations"
    diff = None if check is None else check_outputs(model, fast, check)
    return Prepared(fast, method, diff)
