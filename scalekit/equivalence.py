"""Do two forward passes compute the same thing? fp32 tolerances relative to the output's scale,
for an optimised copy (latency/optimize.py) and a reloaded export (exporters.py) alike.

torch is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

Forward = Callable[["torch.Tensor"], "torch.Tensor"]

# fp32 tolerances of check_outputs. Folding BN and reordering the arithmetic (channels_last,
# frozen graphs) moves outputs by up to ~1e-6 of their scale on the bundled specs at 224 px.
RTOL = 1e-4
ATOL = 1e-5  # times the largest |output|


def check_outputs(a: Forward, b: Forward, example: torch.Tensor, *, rtol: float = RTOL,
                  atol: float = ATOL) -> float:
    """Run ``a`` and ``b`` (modules, or any tensor -> tensor callables such as a reloaded export)
    on ``example`` and return the largest absolute output difference.

    Raises ``ValueError`` unless every element satisfies ``|a - b| <= atol * scale + rtol * |a|``
    with ``scale = max |a|``: ``atol`` is relative to the output's magnitude, because randomly
    initialised networks produce outputs anywhere from 1e-14 (EfficientNet) to 1e8 (ResNet-152),
    where a fixed absolute tolerance means nothing. Also raises on shape mismatch or non-finite
    outputs. Both are called as they are (put modules in eval mode first).
    """
    import torch

    with torch.inference_mode():
        ya, yb = a(example), b(example)
    return compare_outputs(ya, yb, rtol=rtol, atol=atol)[0]


def compare_outputs(ya: torch.Tensor, yb: torch.Tensor, *, rtol: float = RTOL,
                    atol: float = ATOL) -> tuple[float, float]:
    """(max |ya - yb|, max |ya|), or ``ValueError`` as documented in :func:`check_outputs`."""
    import torch

    if ya.shape != yb.shape:
        raise ValueError(f"output shapes differ: {tuple(ya.shape)} vs {tuple(yb.shape)}")
    if not (bool(torch.isfinite(ya).all()) and bool(torch.isfinite(yb).all())):
        raise ValueError("non-finite outputs: cannot compare")
    diff = (ya - yb).abs()
    scale = float(ya.abs().max()) if ya.numel() else 0.0
    max_diff = float(diff.max()) if diff.numel() else 0.0
    if bool((diff > atol * scale + rtol * ya.abs()).any()):
        raise ValueError(f"outputs differ by up to {max_diff:.3g} (output scale {scale:.3g}, "
                         f"rtol {rtol:g}, atol {atol:g} x scale)")
    return max_diff, scale
