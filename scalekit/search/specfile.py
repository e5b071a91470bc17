"""``--write-spec``: the baseline spec with the coefficients a search found in its ``compound:``.

The spec's own text is kept (its comments say whose rounding convention each rule follows): only
the ``compound:`` entry under ``scaling:`` is replaced (or added), and the result is loaded back
and checked to be the baseline with exactly those coefficients. Where the text cannot be edited
so (a flow-style ``scaling: {...}``, a spec given as data), the spec is written out as data
instead, and its header says that the comments were not kept.

No torch here.
"""

from __future__ import annotations

import dataclasses
import re

from ..spec import Compound, Spec, parse_yaml, spec_from_dict, spec_to_yaml


def _fmt(v: float) -> str:
    return f"{v:.10g}"


def with_compound(base: Spec, alpha: float, beta: float, gamma: float) -> Spec:
    """``base`` with ``scaling.compound`` set to the coefficients."""
    rules = dataclasses.replace(base.scaling, compound=Compound(alpha, beta, gamma))
    return dataclasses.replace(base, scaling=rules)


def _flow(alpha: float, beta: float, gamma: float) -> str:
    return f"{{alpha: {_fmt(alpha)}, beta: {_fmt(beta)}, gamma: {_fmt(gamma)}}}"


_COMPOUND_FLOW = re.compile(r"^(?P<indent>[ \t]+)compound:[ \t]*\{[^}\n]*\}[ \t]*(?P<comment>#.*)?$",
                            re.M)
_COMPOUND_BLOCK = re.compile(r"^(?P<indent>[ \t]+)compound:[ \t]*(?P<comment>#.*)?\n"
                             r"(?P<body>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)*)", re.M)
_SCALING = re.compile(r"^scaling:[ \t]*(#.*)?\n", re.M)


def edit_text(text: str, alpha: float, beta: float, gamma: float, why: str) -> str | None:
    """The spec's text with its compound entry replaced or added, or None if this text's layout
    is not one that can be edited in place."""
    entry = f"compound: {_flow(alpha, beta, gamma)}   # {why}"
    m = _COMPOUND_FLOW.search(text)
    if m:
        return text[:m.start()] + m.group("indent") + entry + text[m.end():]
    m = _COMPOUND_BLOCK.search(text)
    if m:
        return text[:m.start()] + m.group("indent") + entry + "\n" + text[m.end():]
    m = _SCALING.search(text)
    if m:
        rest = text[m.end():]
        child = re.match(r"([ \t]+)\S", rest)
        indent = child.group(1) if child else "  "
        return text[:m.end()] + indent + entry + "\n" + rest
    if re.search(r"^scaling:", text, re.M):
        return None  # scaling: {...} in flow style
    return text.rstrip("\n") + "\nscaling:\n  " + entry + "\n"


def spec_text(base: Spec, alpha: float, beta: float, gamma: float, *, why: str,
              header: str) -> tuple[str, bool]:
    """(the text to write, whether the original text was kept). The text always loads back to
    ``base`` with the new compound coefficients (checked here)."""
    want = with_compound(base, alpha, beta, gamma)
    if base.path:
        try:
            with open(base.path, encoding="utf-8") as f:
                original = f.read()
        except OSError:
            original = None
        if original is not None:
            edited = edit_text(original, alpha, beta, gamma, why)
            if edited is not None and _loads_to(header + edited, want):
                return header + edited, True
    text = header + "# (written out as data: the original spec's comments were not kept)\n" \
        + spec_to_yaml(want)
    if not _loads_to(text, want):  # pragma: no cover - spec_to_yaml round-trips (tested)
        raise RuntimeError("the written spec does not load back to the same numbers")
    return text, False


def _loads_to(text: str, want: Spec) -> bool:
    try:
        got = spec_from_dict(parse_yaml(text))
    except Exception:  # noqa: BLE001 - an edit that broke the YAML: fall back
        return False
    return got == dataclasses.replace(want, path=None)
