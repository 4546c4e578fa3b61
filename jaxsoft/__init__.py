"""jaxsoft: activations, exact softmax and the losses that go with it, with closed-form derivatives.

The public API mirrors `jax.nn` and `optax.losses` (same names, argument order, `axis` and
`where`), so `import jaxsoft as nn` swaps in with one line.
"""

from importlib.metadata import PackageNotFoundError, version

from jaxsoft._checks import checked
from jaxsoft.losses import (
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softmax_cross_entropy_with_integer_labels,
    softmax_cross_entropy_with_integer_labels_grad,
)
from jaxsoft.softmax import argmax_one_hot, log_softmax, logsumexp, softmax, softmax_jacobian
from jaxsoft.activations import (
    sigmoid,
    sigmoid_grad,
    softplus,
    softplus_grad,
)

try:
    __version__ = version("jaxsoft")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "argmax_one_hot",
    "checked",
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_cross_entropy_with_integer_labels_grad",
    "softmax_jacobian",
    "sigmoid",
    "sigmoid_grad",
    "softplus",
    "softplus_grad",
]
