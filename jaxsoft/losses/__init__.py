"""Per-example losses, each with its closed-form derivative (one module per family, as optax).

Families: regression (squared/absolute/Huber/quadratic), binary (BCE on probabilities and on
logits), categorical (CE on probabilities, NLL), cross_entropy (softmax + CE from logits),
divergence (KL), margin (perceptron, hinge) and linear (the chunked cross-entropy of x @ w).
"""

from jaxsoft.losses.binary import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    sigmoid_binary_cross_entropy,
    sigmoid_binary_cross_entropy_grad,
)
from jaxsoft.losses.categorical import (
    categorical_cross_entropy,
    categorical_cross_entropy_grad,
    nll_loss,
    nll_loss_grad,
)
from jaxsoft.losses.cross_entropy import (
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softmax_cross_entropy_with_integer_labels,
    softmax_cross_entropy_with_integer_labels_grad,
)
from jaxsoft.losses.divergence import (
    kl_divergence,
    kl_divergence_grad,
    kl_divergence_with_log_targets,
    kl_divergence_with_log_targets_grad,
)
from jaxsoft.losses.linear import linear_cross_entropy
from jaxsoft.losses.margin import (
    hinge_loss,
    hinge_loss_grad,
    multiclass_hinge_loss,
    multiclass_hinge_loss_grad,
    multiclass_perceptron_loss,
    multiclass_perceptron_loss_grad,
    perceptron_loss,
    perceptron_loss_grad,
)
from jaxsoft.losses.regression import (
    absolute_error,
    absolute_error_grad,
    huber_loss,
    huber_loss_grad,
    l2_loss,
    quadratic_loss,
    quadratic_loss_grad,
    squared_error,
    squared_error_grad,
)

__all__ = [
    "absolute_error",
    "absolute_error_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "categorical_cross_entropy",
    "categorical_cross_entropy_grad",
    "hinge_loss",
    "hinge_loss_grad",
    "huber_loss",
    "huber_loss_grad",
    "kl_divergence",
    "kl_divergence_grad",
    "kl_divergence_with_log_targets",
    "kl_divergence_with_log_targets_grad",
    "l2_loss",
    "linear_cross_entropy",
    "multiclass_hinge_loss",
    "multiclass_hinge_loss_grad",
    "multiclass_perceptron_loss",
    "multiclass_perceptron_loss_grad",
    "nll_loss",
    "nll_loss_grad",
    "perceptron_loss",
    "perceptron_loss_grad",
    "quadratic_loss",
    "quadratic_loss_grad",
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_grad",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_cross_entropy_with_integer_labels_grad",
    "squared_error",
    "squared_error_grad",
]
