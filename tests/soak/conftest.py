"""The soak runs on the chaos suite's fixtures: the broker, and a stack on its own prefix."""

from tests.chaos.conftest import chaos_bootstrap, chaos_stack  # noqa: F401  (fixtures)
