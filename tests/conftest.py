"""Suite-wide strictness (as equinox does): no silent rank or dtype promotion anywhere."""

import os

# The tests run in several pytest-xdist workers (pyproject.toml: -n auto); on a GPU each takes
# device memory as it needs it instead of JAX's default 75 % of it at its first computation.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def x64():
    """Run a test body in float64 (enabled locally, never globally for the library)."""
    with jax.enable_x64(True):
        yield
