"""One module per command; COMMANDS is what cli.py registers (in this order in --help)."""

from .compare import compare
from .info import info, list_specs
from .scale import scale

COMMANDS = [list_specs, info, scale, compare]
