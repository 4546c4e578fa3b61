"""Per-example losses with closed-form gradients, named and shaped as in `optax.losses`."""

from jaxsoft.losses.cross_entropy import (
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softmax_cross_entropy_with_integer_labels,
    softmax_cross_entropy_with_integer_labels_grad,
)

__all__ = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_cross_entropy_with_integer_labels_grad",
]
