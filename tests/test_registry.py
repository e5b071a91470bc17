"""Adding a block kind means: a torch class, a complexity function and a registry entry. This
fails when any one of them is missing."""

from scalekit.blocks import MODULES
from scalekit.counting import COUNTERS
from scalekit.plan import KINDS
from scalekit.spec import BLOCK_TYPES


def test_every_kind_has_a_counter_and_a_module():
    assert set(KINDS) == set(COUNTERS) == set(MODULES)


def test_every_spec_block_type_is_a_plan_kind():
    assert set(BLOCK_TYPES) <= set(KINDS)
