"""jaxsoft: activations, exact softmax and the losses that go with it, with closed-form derivatives.

The public API mirrors `jax.nn` and `optax.losses` (same names, argument order, `axis` and
`where`), so `import jaxsoft as nn` swaps in with one line.
"""

from importlib.metadata import PackageNotFoundError, version

from jaxsoft._checks import checked
from jaxsoft.activations import (
    sigmoid,
    sigmoid_grad,
    softplus,
    softplus_grad,
)
from jaxsoft.losses import (
    absolute_error,
    binary_cross_entropy,
    categorical_cross_entropy,
    hinge_loss,
    huber_loss,
    kl_divergence,
    kl_divergence_with_log_targets,
    l2_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    nll_loss,
    perceptron_loss,
    quadratic_loss,
    sigmoid_binary_cross_entropy,
    squared_error,
)

try:
    __version__ = version("jaxsoft")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "absolute_error",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "checked",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "nll_loss",
    "perceptron_loss",
    "quadratic_loss",
    "sigmoid",
    "sigmoid_binary_cross_entropy",
    "sigmoid_grad",
    "softplus",
    "softplus_grad",
    "squared_error",
]
