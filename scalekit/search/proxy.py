"""The built-in proxy task: PLACEHOLDER, being written."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from .evaluators import CommandEvaluator
from .grid import SearchUsageError

PROXY_VERSION = 1


@dataclass(frozen=True)
class ProxyConfig:
    epochs: int = 4
    train: int = 4000
    test: int = 1000
    batch: int = 128
    lr: float = 4e-3
    data_seed: int = 0


def parse_options(text: str) -> ProxyConfig:
    """``epochs=2,train=2000`` -> a :class:`ProxyConfig` (empty: the defaults)."""
    kw = {}
    known = {f.name: f.type for f in fields(ProxyConfig)}
    for item in filter(None, (s.strip() for s in text.split(","))):
        k, sep, v = item.partition("=")
        if not sep or k not in known:
            raise SearchUsageError(f"--evaluate builtin:proxy:{text}: unknown option {item!r} "
                                   f"(options: {', '.join(known)})")
        try:
            kw[k] = float(v) if known[k] in ("float", float) else int(v)
        except ValueError:
            raise SearchUsageError(f"--evaluate builtin:proxy: {k}={v!r} is not a number") from None
    return ProxyConfig(**kw)


def proxy_evaluator(config: ProxyConfig, timeout: float | None = None) -> CommandEvaluator:
    cfg = json.dumps(asdict(config), sort_keys=True)
    argv = ("{python}", "-m", "scalekit.search.proxy", "--spec", "{spec}", "--out", "{out}",
            "--seed", "{seed}", "--config", cfg)
    return CommandEvaluator(template="builtin:proxy", metric="accuracy", timeout=timeout,
                            argv=argv, name=f"builtin:proxy v{PROXY_VERSION} {cfg}", proxy=True)


def notes(base, baseline) -> tuple[str, ...]:
    return ("builtin:proxy is a PROXY TASK (procedurally generated images), NOT ImageNet",)
