r"""Elementwise activations, each with its closed-form derivative beside it.

Every activation `f` is a `jax.custom_jvp` whose tangent rule is the closed form `f_grad`
defined right under it, so `jax.grad`, `jax.jvp`, `jax.jacfwd` all use the formula from the
notes. Derivatives are written in forms that stay accurate in the tails (NUMERICS.md §1):
sigmoid' = σ(x)σ(−x) rather than σ(1 − σ), which is exactly 0 from x = 17 on in float32.

Dtypes: bfloat16/float16 inputs are computed in float32 and rounded once to the input dtype;
float32 and float64 are computed in their own precision. The result has the input's dtype.

Modules: `sigmoidal` (sigmoid, log_sigmoid, softplus, swish/silu, tanh, mish), `rectifiers`
(identity, sign, relu, relu6, leaky_relu, elu, celu, selu, soft_sign, squareplus), `hard`
(hard_sigmoid, hard_tanh, hard_silu), `gelu`.
"""

from jaxsoft.activations.gelu import gelu, gelu_grad
from jaxsoft.activations.hard import (
    hard_sigmoid,
    hard_sigmoid_grad,
    hard_silu,
    hard_silu_grad,
    hard_swish,
    hard_swish_grad,
    hard_tanh,
    hard_tanh_grad,
)
from jaxsoft.activations.rectifiers import (
    celu,
    celu_grad,
    elu,
    elu_grad,
    identity,
    identity_grad,
    leaky_relu,
    leaky_relu_grad,
    relu,
    relu6,
    relu6_grad,
    relu_grad,
    selu,
    selu_grad,
    sign,
    sign_grad,
    soft_sign,
    soft_sign_grad,
    softsign,
    softsign_grad,
    squareplus,
    squareplus_grad,
)
from jaxsoft.activations.sigmoidal import (
    log_sigmoid,
    log_sigmoid_grad,
    mish,
    mish_grad,
    sigmoid,
    sigmoid_grad,
    silu,
    silu_grad,
    softplus,
    softplus_grad,
    swish,
    swish_grad,
    tanh,
    tanh_grad,
)

__all__ = [
    "celu", "celu_grad", "elu", "elu_grad", "gelu", "gelu_grad", "hard_sigmoid",
    "hard_sigmoid_grad", "hard_silu", "hard_silu_grad", "hard_swish", "hard_swish_grad",
    "hard_tanh", "hard_tanh_grad", "identity", "identity_grad", "leaky_relu", "leaky_relu_grad",
    "log_sigmoid", "log_sigmoid_grad", "mish", "mish_grad", "relu", "relu6", "relu6_grad",
    "relu_grad", "selu", "selu_grad", "sigmoid", "sigmoid_grad", "sign", "sign_grad", "silu",
    "silu_grad", "soft_sign", "soft_sign_grad", "softplus", "softplus_grad", "softsign",
    "softsign_grad", "squareplus", "squareplus_grad", "swish", "swish_grad", "tanh", "tanh_grad",
]
