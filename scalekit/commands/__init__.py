"""One module per command; COMMANDS is what cli.py registers (in this order in --help)."""

from .bench import bench
from .check import check
from .compare import compare
from .export import export
from .fit import fit
from .info import info, list_specs
from .reconcile import reconcile
from .scale import scale
from .search import search
from .sweep import sweep

COMMANDS = [list_specs, info, scale, compare, bench, fit, sweep, search, check, reconcile, export]
