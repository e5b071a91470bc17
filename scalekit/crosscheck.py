"""Independent counters to cross-check the analytic one, both on the built torch module.

- ``torch``: the module built on the meta device (no memory, instant at any resolution);
  params = sum(p.numel()), MACs = FlopCounterMode total / 2, acts = output elements of every
  Conv2d, Linear and MaxPool2d counted by forward hooks.
- ``thop``: thop.profile on a real module. thop 0.1.1 also counts BatchNorm (4 ops per element)
  and global average pooling ((H*W + 1) per channel), but not ReLU, max pooling, SiLU, Sigmoid
  or functional calls, so it reads a few percent above the paper's convention: its records follow
  the ``thop`` convention (scalekit/conventions.py, which reproduces it exactly). It counts no
  activations, so this counter takes them from the same forward hooks as ``torch``.
"""

from __future__ import annotations

from .counting import Counts, NetworkCount, StageCount
from .extras import require
from .memory import check_memory
from .plan import NetworkPlan

THOP_NOTE = ("thop 0.1.1 also counts BatchNorm (4 per element) and global average pooling, but "
             "not ReLU, max pooling, SiLU, Sigmoid or functional calls (the SE multiply): it "
             "reads a few percent above the paper's conv+linear MAC convention (--convention "
             "thop gives the same count without torch; see scalekit reconcile). It counts no "
             "activations; acts here come from torch forward hooks.")


def _hooks(model, sink: dict):
    from torch import nn

    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d)):
            def hook(mod, inp, out, _name=name):
                stage = _name.split(".")[1] if _name.startswith("stages.") else _name
                sink[stage] = sink.get(stage, 0) + out.numel()
            handles.append(m.register_forward_hook(hook))
    return handles


def torch_count(plan: NetworkPlan, batch: int = 1) -> NetworkCount:
    """Count on a meta-device module: FlopCounterMode for MACs, hooks for acts, numel for params."""
    require("torch", purpose="--counter torch")
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .build import build_model

    model = build_model(plan, device="meta").eval()
    acts: dict[str, int] = {}
    handles = _hooks(model, acts)
    x = torch.empty(batch, plan.in_channels, *plan.resolution, device="meta")
    fc = FlopCounterMode(display=False, depth=2)
    try:
        with torch.no_grad(), fc:
            model(x)
    finally:
        for h in handles:
            h.remove()
    per_module = fc.get_flop_counts()
    stages = []
    for st in plan.stages:
        mod = model.stages.get_submodule(st.name)
        params = sum(p.numel() for p in mod.parameters())
        flops = sum(per_module.get(f"Network.stages.{st.name}", {}).values())
        stages.append(StageCount(st.name, Counts(params, flops // (2 * batch), acts.get(st.name, 0) // batch)))
    total = Counts(sum(p.numel() for p in model.parameters()), fc.get_total_flops() // (2 * batch),
                   sum(acts.values()) // batch)
    return NetworkCount(total, tuple(stages))


def thop_count(plan: NetworkPlan, *, force: bool = False,
               counts: NetworkCount | None = None) -> NetworkCount:
    """thop.profile on a real module at batch 1 (slow at large resolutions: a real forward).
    Refuses a model that would not fit in memory unless ``force`` (see memory.check_memory;
    ``counts``: the plan's analytic counts, if known)."""
    check_memory(plan, force=force, counts=counts)  # torch-free: refuses first, torch or not
    require("torch", "thop", purpose="--counter thop")

    import contextlib
    import io

    import torch
    import thop

    from .build import build_model

    model = build_model(plan).eval()
    acts: dict[str, int] = {}
    handles = _hooks(model, acts)  # thop counts no activations: torch's forward hooks do
    x = torch.randn(1, plan.in_channels, *plan.resolution)
    try:
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            macs, params, layers = thop.profile(model, inputs=(x,), verbose=False,
                                                ret_layer_info=True)
    finally:
        for h in handles:
            h.remove()
    per_stage = layers["stages"][2]  # {stage name: (ops, params, children)}
    stages = tuple(StageCount(st.name, Counts(int(per_stage[st.name][1]), int(per_stage[st.name][0]),
                                              acts.get(st.name, 0)))
                   for st in plan.stages)
    return NetworkCount(Counts(int(params), int(macs), sum(acts.values())), stages)
