"""Suite-wide strictness (as equinox does): no silent rank or dtype promotion anywhere."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def x64():
    """Run a test body in float64 (enabled locally, never globally for the library)."""
    with jax.enable_x64(True):
        yield
