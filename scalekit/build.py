"""Plan -> torch.nn.Module. Each block's class is the one its kind names (scalekit.modules); the
constructor never branches on a kind.

A network's state_dict uses the names of a checkpoint layout (scalekit.layouts): its own
(``scalekit``), or torchvision's or timm's for the spec's family, so that
``model.load_state_dict(official_checkpoint)`` works with ``strict=True``; the modules keep
their own names either way. :func:`load_weights` loads a file or a state_dict in any layout, and
says in one line what does not fit.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from typing import Any, Mapping

import torch
from torch import nn

from . import modules
from .blocks import BlockPlan, kind
from .errors import ScalekitError
from .layouts import LAYOUTS, Key, LayoutError, key_map
from .plan import NetworkPlan, expand
from .spec import Spec


def block_module(b: BlockPlan) -> nn.Module:
    """The torch module of one block: its kind's class, built from the block's plan."""
    return getattr(modules, kind(b.kind).module)(b)


def _to_layout(module: "Network", state_dict: dict, prefix: str, local_metadata: Any) -> None:
    """state_dict post-hook: scalekit's keys -> the layout's, in place and in order."""
    names = module.layout_names
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        if key.startswith(prefix) and key[len(prefix):] in names:
            key = prefix + names[key[len(prefix):]]
        state_dict[key] = value
    meta = getattr(state_dict, "_metadata", None)
    if meta is not None:  # per-module versions (BatchNorm's), under the layout's module names
        modules_ = {n.rpartition(".")[0]: v.rpartition(".")[0] for n, v in names.items()}
        for key in [k for k in meta if k.startswith(prefix) and k != prefix.rstrip(".")]:
            value = meta.pop(key)
            new = modules_.get(key[len(prefix):])
            if new is not None:
                meta[prefix + new] = value


def _from_layout(module: "Network", state_dict: dict, prefix: str, *args: Any) -> None:
    """load_state_dict pre-hook: the layout's keys -> scalekit's (others pass unchanged)."""
    back = module.native_names
    for key in [k for k in state_dict if k.startswith(prefix) and k[len(prefix):] in back]:
        state_dict[prefix + back[key[len(prefix):]]] = state_dict.pop(key)


def _missing_in_layout(module: "Network", incompatible: Any) -> None:
    """load_state_dict post-hook: torch's own report of missing keys names them as the layout
    does (the keys the caller's state_dict lacks), not by scalekit's module paths."""
    names = module.layout_names
    incompatible.missing_keys[:] = [names.get(k, k) for k in incompatible.missing_keys]


class Network(nn.Module):
    """stem -> stage1..N -> head, each an nn.Sequential of blocks named as in the plan. Every
    BatchNorm has the spec's eps and momentum. ``layout`` names the state_dict's keys (see
    scalekit.layouts.LAYOUTS); the modules keep their own names."""

    __jit_ignored_attributes__ = ["plan", "layout_names", "native_names"]

    def __init__(self, plan: NetworkPlan, layout: str = "scalekit"):
        super().__init__()
        self.name = plan.name
        self.resolution = plan.resolution
        self.plan = plan
        self.stages = nn.Sequential()
        for st in plan.stages:
            self.stages.add_module(st.name, nn.Sequential(*map(block_module, st.blocks)))
        eps, momentum = plan.batchnorm
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = eps, momentum
        self.layout = layout
        keys = key_map(plan, layout)
        self.layout_names = {k.native: k.name for k in keys if k.native != k.name}
        self.native_names = {k.name: k.native for k in keys if k.native != k.name}
        if self.layout_names:
            self.register_state_dict_post_hook(_to_layout)
            self.register_load_state_dict_pre_hook(_from_layout)
            self.register_load_state_dict_post_hook(_missing_in_layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


def init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """The usual ImageNet init (torchvision's ResNet / MobileNet / EfficientNet choices):
    kaiming-normal (fan_out) convs, BN gamma 1 / beta 0, linear uniform(+-1/sqrt(out)), zero biases.
    ``zero_init_residual`` zeroes the last BN gamma of each residual branch (Goyal et al. 2017)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            r = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if hasattr(m, "zero_init_residual"):
                m.zero_init_residual()


def build_model(spec_or_plan: Spec | NetworkPlan, *, zero_init_residual: bool = False,
                device: str | torch.device | None = None, layout: str = "scalekit") -> Network:
    """Build the network. On the 'meta' device no memory is allocated (for counting).
    ``layout``: the names of its state_dict (scalekit.layouts.LAYOUTS)."""
    plan = spec_or_plan if isinstance(spec_or_plan, NetworkPlan) else expand(spec_or_plan)
    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"):
            return Network(plan, layout)
    model = Network(plan, layout)
    init_weights(model, zero_init_residual=zero_init_residual)
    if device is not None:
        model = model.to(device)
    return model


# ---------------------------------------------------------------------------------------------
# loading weights by name


def _printable(key: Any) -> str:
    ok = isinstance(key, str) and key.isprintable() and len(key) <= 200
    return key if ok else repr(key)[:200]


def read_state_dict(source: str | os.PathLike | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """A state_dict and what to call it in messages: ``source`` itself, or the file it names
    (``torch.load`` with ``weights_only=True``: tensors only, nothing executed). A checkpoint
    that wraps its state_dict (``{"state_dict": ...}`` or ``{"model": ...}``) is unwrapped."""
    if isinstance(source, Mapping):
        sd, where = source, "the state_dict"
    else:
        path = os.fspath(source)
        where = _printable(path)
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ScalekitError(f"{where}: no such file") from None
        except IsADirectoryError:
            raise ScalekitError(f"{where}: is a directory, not a checkpoint") from None
        except PermissionError:
            raise ScalekitError(f"{where}: permission denied") from None
        except Exception as e:  # noqa: BLE001 - torch.load raises many kinds for a bad file
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ScalekitError(f"{where}: not a torch checkpoint of tensors "
                                f"(torch.load: {first[:200]})") from None
    if isinstance(sd, Mapping) and not any(isinstance(v, torch.Tensor) for v in sd.values()):
        for wrapper in ("state_dict", "model"):
            if isinstance(sd.get(wrapper), Mapping):
                sd = sd[wrapper]
                break
    if not isinstance(sd, Mapping):
        raise ScalekitError(f"{where}: holds a {type(sd).__name__}, not a state_dict "
                            "(a mapping of names to tensors)")
    return sd, where


def _misfit(keys: list[Key], sd: Mapping[str, Any]) -> str:
    """What does not fit, in a few words, or ''."""
    names = {k.name: k for k in keys}
    missing = [k.name for k in keys if k.name not in sd]
    unexpected = [_printable(k) for k in sd if k not in names]
    wrong = []
    for k in keys:
        v = sd.get(k.name)
        if v is None:
            continue
        if not isinstance(v, torch.Tensor):
            wrong.append(f"{k.name} is a {type(v).__name__}, not a tensor")
        elif tuple(v.shape) != k.shape:
            wrong.append(f"{k.name} is {list(v.shape)} in the checkpoint, {list(k.shape)} in "
                         "the model")
    parts = []
    for what, items in (("missing", missing), ("unexpected", unexpected)):
        if items:
            more = f" and {len(items) - 3:,} more" if len(items) > 3 else ""
            parts.append(f"{len(items):,} {what} (first: {', '.join(items[:3])}{more})")
    if wrong:
        more = f"; and {len(wrong) - 1:,} more" if len(wrong) > 1 else ""
        parts.append(f"{len(wrong):,} of the wrong shape (first: {wrong[0]}{more})")
    return "; ".join(parts)


def load_weights(model: nn.Module, source: str | os.PathLike | Mapping[str, Any], *,
                 layout: str | None = None) -> nn.Module:
    """Load a state_dict, or a checkpoint file of one, into a network made by
    :func:`build_model`, by name: ``layout`` says whose names the checkpoint uses (default: the
    model's own layout). Every tensor must be there with its shape, and nothing else: else one
    :class:`ScalekitError` names the first missing and unexpected keys and wrong shapes, and
    the model is left as it was. Returns the model."""
    if not isinstance(model, Network):
        raise ScalekitError("load_weights loads into a network made by scalekit's build_model, "
                            f"not a {type(model).__name__}")
    layout = model.layout if layout is None else layout
    if layout not in LAYOUTS:
        raise ScalekitError(f"unknown layout {layout!r} (valid: {', '.join(LAYOUTS)})")
    keys = key_map(model.plan, layout)
    sd, where = read_state_dict(source)
    problem = _misfit(keys, sd)
    if problem:
        hint = ""
        if not any(k.name in sd for k in keys):
            for other in LAYOUTS:
                try:
                    if other != layout and _misfit(key_map(model.plan, other), sd) == "":
                        hint = f" (its keys are the {other} layout's: give layout {other})"
                        break
                except LayoutError:
                    continue
        raise ScalekitError(f"{where} does not fit {model.name} in the {layout} layout: "
                            f"{problem}{hint}")
    native = OrderedDict((k.native, sd[k.name]) for k in keys)
    try:
        model.load_state_dict(native, strict=True)
    except RuntimeError as e:  # e.g. a dtype that cannot be copied
        first = (str(e).strip().splitlines() or ["load_state_dict failed"])[0]
        raise ScalekitError(f"{where}: cannot be loaded into {model.name}: {first[:300]}") from None
    return model
