"""The exercises: inputs, the reference each is checked against, known wrong answers, and hints.

Known wrong answers are written in NumPy with the forward arguments as arrays and g = the upstream
gradient; a learner's gradient that matches one is told which mistake it is.
"""
import math

import numpy as np

import tinytensor as tt

from .checker import Case, Exercise, Failure, Mistake, NotStarted, crash_message, compare


def _random(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _sum_to(array, shape):
    """NumPy: sum a broadcast array back down to `shape`."""
    lead = array.ndim - len(shape)
    array = array.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and array.shape[i] != 1)
    return array.sum(axis=stretched, keepdims=True)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _call(module, path, name, *args):
    """module.name(*args), with the learner's errors turned into plain words."""
    try:
        return getattr(module, name)(*args)
    except NotImplementedError:
        raise NotStarted(f"`{name}` is not written yet: open {path}") from None
    except Failure:
        raise
    except Exception as error:
        raise Failure(crash_message(error, path, name)) from None


# ----------------------------------------------------------------------------------- 1 to 9: one backward each

SOFTSIGN = Exercise(
    1, "ex01_softsign", "Backward of an elementwise op: softsign", "Softsign", ("x",),
    cases=[Case("x = [1, -2, 0.5, 3]", (np.array([1.0, -2.0, 0.5, 3.0]),)),
           Case("x of shape (3, 4)", tuple(_random(1, (3, 4))))],
    reference=lambda x: x / (1 + x.abs()),
    mistakes=[
        Mistake("forgot the square: dy/dx = 1 / (1 + |x|)^2, not 1 / (1 + |x|)",
                lambda x, g: {0: g / (1 + abs(x))}),
        Mistake("used x instead of |x| in the derivative (so it is wrong only where x < 0)",
                lambda x, g: {0: g / (1 + x) ** 2}),
        Mistake("treated d|x|/dx as 1; it is sign(x), and then the x terms cancel",
                lambda x, g: {0: g * (1 + abs(x) - x) / (1 + abs(x)) ** 2}),
    ],
    hints=["Quotient rule: d(u/v) = (u' v - u v') / v^2 with u = x and v = 1 + |x|.",
           "d|x|/dx = sign(x), and x * sign(x) = |x|: the numerator is (1 + |x|) - |x| = 1.",
           "dy/dx = 1 / (1 + |x|)^2; backward returns grad * dy/dx, written with Tensor ops: "
           "grad / (1 + x.abs()) ** 2."])

MEAN = Exercise(
    2, "ex02_mean_keepdims", "Backward of a reduction with keepdims: mean", "Mean", ("x", "axis", "keepdims"),
    cases=[Case("x of shape (3, 4), axis=1, keepdims=True", (*_random(2, (3, 4)), 1, True)),
           Case("x of shape (2, 3, 4), axis=1, keepdims=False", (*_random(3, (2, 3, 4)), 1, False)),
           Case("x of shape (2, 3, 4), axis=-1, keepdims=False", (*_random(4, (2, 3, 4)), -1, False)),
           Case("x of shape (3, 3), axis=1, keepdims=False", (*_random(5, (3, 3)), 1, False))],
    reference=lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims),
    mistakes=[
        Mistake("forgot to divide by n, the number of elements averaged (x.shape[axis])",
                lambda x, axis, keepdims, g: {0: np.broadcast_to(np.expand_dims(g, axis) if not keepdims
                                                                 else g, x.shape)}),
        Mistake("spread the gradient along the wrong axis: without keepdims, first put the averaged axis "
                "back as size 1 (grad.unsqueeze(axis)), then broadcast",
                lambda x, axis, keepdims, g: {0: np.broadcast_to(g, x.shape) / x.shape[axis]}),
    ],
    hints=["Each of the n = x.shape[axis] elements of a group moves their mean by 1/n: dy/dx = 1/n.",
           "grad has y's shape. Without keepdims the averaged axis is missing: grad.unsqueeze(axis) puts it "
           "back as size 1 (a negative axis counts from the end of x: use axis % x.ndim).",
           "Broadcast the (size-1 axis) grad to x's shape with .broadcast_to(shape), divide by n, and return "
           "(grad_x, None, None)."])

BROADCAST = Exercise(
    3, "ex03_broadcast_mul", "Backward of broadcasting: a * b", "BroadcastMul", ("a", "b"),
    cases=[Case("a (4, 3) times b (3,)", tuple(_random(6, (4, 3), (3,)))),
           Case("a (4, 1) times b (1, 3)", tuple(_random(7, (4, 1), (1, 3)))),
           Case("a (2, 3, 4) times b (3, 1)", tuple(_random(8, (2, 3, 4), (3, 1))))],
    reference=lambda a, b: a * b,
    mistakes=[
        Mistake("multiplied by the wrong operand: dL/da = grad * b and dL/db = grad * a",
                lambda a, b, g: {0: _sum_to(g * a * np.ones_like(b), a.shape),
                                 1: _sum_to(g * b * np.ones_like(a), b.shape)}),
        Mistake("forgot to sum over the broadcast axis: b was copied along the axes it lacked, and the "
                "gradients of the copies add up",
                lambda a, b, g: {0: g * b, 1: g * a}),
    ],
    hints=["First ignore broadcasting: dL/da = grad * b, dL/db = grad * a. Both have the output's shape.",
           "b of shape (3,) was used as if it were (4, 3): four copies. The gradient of b is the sum of the "
           "gradients of its copies: sum over the axes broadcasting added or stretched.",
           "Leading axes that b lacks: sum them away. Axes where b has size 1 but the output does not: "
           "sum them with keepdims=True, so b's (3, 1) stays (3, 1)."])

MATMUL = Exercise(
    4, "ex04_matmul", "Backward of matmul, with a broadcast batch", "MatMul", ("A", "B"),
    cases=[Case("A (2, 3) @ B (3, 4)", tuple(_random(9, (2, 3), (3, 4)))),
           Case("A (3, 3) @ B (3, 3)", tuple(_random(10, (3, 3), (3, 3)))),
           Case("A (5, 2, 3) @ B (3, 4): one B for a batch of 5", tuple(_random(11, (5, 2, 3), (3, 4))))],
    reference=lambda a, b: a @ b,
    mistakes=[
        Mistake("forgot to transpose B: dL/dA = grad @ B^T", lambda a, b, g: {0: g @ b}),
        Mistake("forgot to transpose A: dL/dB = A^T @ grad", lambda a, b, g: {1: a @ g}),
        Mistake("multiplied in the wrong order: dL/dB = A^T @ grad, (k, m) @ (m, n)",
                lambda a, b, g: {1: (g.swapaxes(-1, -2) @ a).swapaxes(-1, -2) if a.ndim == 2 else None}),
        Mistake("forgot to sum dL/dB over the batch: the same B served every matrix of the batch",
                lambda a, b, g: {1: a.swapaxes(-1, -2) @ g}),
    ],
    hints=["Write the shapes: A (m, k), B (k, n), grad (m, n). dL/dA must be (m, k) and dL/dB (k, n).",
           "The only products of grad and B that give (m, k) is grad @ B^T; of A and grad giving (k, n), "
           "A^T @ grad.",
           "With A (batch, m, k), A^T @ grad is (batch, k, n): sum over the batch, or fold it into the rows "
           "first: A.reshape(-1, k).T @ grad.reshape(-1, n)."])

SOFTMAX = Exercise(
    5, "ex05_softmax", "Backward of softmax", "Softmax", ("x",),
    cases=[Case("x of shape (2, 5)", tuple(_random(12, (2, 5)))),
           Case("x of shape (3, 2, 4)", tuple(_random(13, (3, 2, 4))))],
    reference=lambda x: tt.softmax(x, -1),
    mistakes=[
        Mistake("used only the diagonal of the Jacobian, y (1 - y): every y_i also depends on every other "
                "x_j, through the sum in the denominator",
                lambda x, g: {0: _softmax(x) * (1 - _softmax(x)) * g}),
        Mistake("summed grad instead of grad * y: dL/dx = y * (grad - sum(grad * y))",
                lambda x, g: {0: _softmax(x) * (g - g.sum(-1, keepdims=True))}),
        Mistake("summed over the wrong axis: softmax runs along the last axis, so the sum must too",
                lambda x, g: {0: _softmax(x) * (g - (g * _softmax(x)).sum(0, keepdims=True))}),
    ],
    hints=["dy_i/dx_j = y_i (delta_ij - y_j): the diagonal is y_i (1 - y_i), off the diagonal -y_i y_j.",
           "dL/dx_j = sum_i g_i dy_i/dx_j = y_j g_j - y_j sum_i g_i y_i.",
           "In Tensor ops: y * (grad - (grad * y).sum(axis=-1, keepdims=True))."])

CROSS_ENTROPY = Exercise(
    6, "ex06_cross_entropy", "Backward of log-softmax with cross-entropy", "CrossEntropy", ("logits", "target"),
    cases=[Case("logits (4, 5), targets [0, 3, 4, 1]", (*_random(14, (4, 5)), np.array([0, 3, 4, 1]))),
           Case("logits (6, 3), targets [2, 2, 0, 1, 0, 2]",
                (*_random(15, (6, 3)), np.array([2, 2, 0, 1, 0, 2])))],
    reference=lambda z, t: tt.cross_entropy(z, t),
    mistakes=[
        Mistake("forgot the 1/N of the mean over the rows",
                lambda z, t, g: {0: (_softmax(z) - np.eye(z.shape[1])[t]) * g}),
        Mistake("left out the softmax: every logit, not only the target's, changes the normaliser, so "
                "dL/dz = (p - one_hot) / N everywhere",
                lambda z, t, g: {0: -np.eye(z.shape[1])[t] * (1 - _softmax(z)) / len(z) * g}),
        Mistake("used exp(z) where softmax(z) belongs: divide by the sum over the classes",
                lambda z, t, g: {0: (np.exp(z) - np.eye(z.shape[1])[t]) / len(z) * g}),
    ],
    hints=["For one row, L = -z_t + log sum_j exp(z_j). Differentiate each term by z_c.",
           "d/dz_c of log sum_j exp(z_j) is softmax(z)_c; d(-z_t)/dz_c is -1 when c = t, else 0.",
           "(p - one_hot) / N * grad, with one_hot = tt.eye(C, dtype=p.dtype)[target]; return it and None."])

LAYER_NORM = Exercise(
    7, "ex07_layer_norm", "Backward of layer norm", "LayerNorm", ("x", "eps"),
    cases=[Case("x of shape (3, 5), eps = 1e-5", (*_random(16, (3, 5)), 1e-5)),
           Case("x of shape (2, 2, 4), eps = 0.1", (*_random(17, (2, 2, 4)), 0.1))],
    reference=lambda x, eps: _layer_norm_composite(x, eps),
    mistakes=[
        Mistake("treated the mean and the variance as constants: they depend on x too",
                lambda x, eps, g: {0: g / np.sqrt(x.var(-1, keepdims=True) + eps)}),
        Mistake("left out the term from the mean: - mean(grad)",
                lambda x, eps, g: {0: _layer_norm_np(x, eps, g, mean_term=False)}),
        Mistake("left out the term from the variance: - xhat * mean(grad * xhat)",
                lambda x, eps, g: {0: _layer_norm_np(x, eps, g, variance_term=False)}),
    ],
    hints=["Three paths lead from x_j to xhat_i: directly, through the mean, through the variance.",
           "d mean/dx_j = 1/D and d var/dx_j = 2 (x_j - mean) / D; the variance path gives -xhat_i xhat_j r / D.",
           "r * (grad - grad.mean(-1, keepdims=True) - xhat * (grad * xhat).mean(-1, keepdims=True))."])


def _layer_norm_composite(x, eps):
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / ((centred * centred).mean(axis=-1, keepdims=True) + eps).sqrt()


def _layer_norm_np(x, eps, g, mean_term=True, variance_term=True):
    r = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
    xhat = (x - x.mean(-1, keepdims=True)) * r
    return r * (g - mean_term * g.mean(-1, keepdims=True) - variance_term * xhat * (g * xhat).mean(-1, keepdims=True))


def _cols_np(x, kh, kw):
    n, c, h, w = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    windows = [x[:, :, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)]
    return np.stack(windows, axis=2).reshape(n, c * kh * kw, oh * ow)


CONV = Exercise(
    8, "ex08_conv2d_im2col", "Backward of conv2d through im2col", "Conv2d", ("x", "w"),
    cases=[Case("x (2, 2, 4, 5), w (3, 2, 2, 3)", tuple(_random(18, (2, 2, 4, 5), (3, 2, 2, 3)))),
           Case("x (1, 1, 3, 3), w (1, 1, 2, 2)", tuple(_random(19, (1, 1, 3, 3), (1, 1, 2, 2))))],
    reference=lambda x, w: tt.conv2d(x, w),
    mistakes=[
        Mistake("forgot to sum dL/dW over the batch: the same kernels slid over every image",
                lambda x, w, g: {1: (g.reshape(len(g), len(w), -1) @ _cols_np(x, *w.shape[2:]).swapaxes(1, 2))
                                 .reshape((len(x),) + w.shape)}),
    ],
    hints=["With G = grad.reshape(N, O, L): dL/dW2 = sum over n of G_n @ cols_n^T (O, K), and "
           "dL/dcols = W2^T @ G (N, K, L).",
           "dL/dW2 has shape (O, K): reshape it to w's shape (O, C, kh, kw). dL/dcols has the columns' "
           "shape: col2im (given) takes it back to x's shape.",
           "grad_w2 = (G @ cols.swapaxes(1, 2)).sum(axis=0); grad_x = col2im(w2.T @ G, ctx.x_shape, kh, kw)."])

ATTENTION = Exercise(
    9, "ex09_attention", "Backward of scaled dot-product attention", "Attention", ("Q", "K", "V"),
    cases=[Case("Q (3, 2), K (4, 2), V (4, 5)", tuple(_random(20, (3, 2), (4, 2), (4, 5)))),
           Case("Q, K, V all (3, 3)", tuple(_random(21, (3, 3), (3, 3), (3, 3)))),
           Case("a batch of 2: Q (2, 3, 4), K (2, 5, 4), V (2, 5, 2)",
                tuple(_random(22, (2, 3, 4), (2, 5, 4), (2, 5, 2))))],
    reference=lambda q, k, v: tt.scaled_dot_product_attention(q, k, v),
    mistakes=[
        Mistake("dL/dV = P^T @ grad, not P @ grad: V's rows are indexed by the keys (S), like P's columns",
                lambda q, k, v, g: {2: _attention_np(q, k) @ g}),
        Mistake("skipped the softmax's backward: dL/dS = P * (dL/dP - sum(dL/dP * P)), not dL/dP",
                lambda q, k, v, g: {0: g @ v.swapaxes(-1, -2) @ k / math.sqrt(q.shape[-1]),
                                    1: (g @ v.swapaxes(-1, -2)).swapaxes(-1, -2) @ q / math.sqrt(q.shape[-1])}),
    ],
    hints=["Y = P @ V is a matmul: dL/dV = P^T @ G and dL/dP = G @ V^T.",
           "P = softmax(S) row by row: dL/dS = P * (dL/dP - (dL/dP * P).sum(-1, keepdims=True)).",
           "S = Q @ K^T * s: dL/dQ = dL/dS @ K * s and dL/dK = dL/dS^T @ Q * s (s = 1/sqrt(E), saved "
           "as ctx.scale)."])


def _attention_np(q, k):
    return _softmax(q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1]))


# ----------------------------------------------------------------------------------- 10: train with it

def _check_training(module):
    path = module.__path_checked__
    with np.errstate(all="ignore"):
        losses = _call(module, path, "train")
    if not losses:
        raise Failure("train() must return the list of losses, one per step")
    if not all(np.isfinite(losses)):
        step = int(np.argmin(np.isfinite(losses)))
        raise Failure(f"the loss became {losses[step]} at step {step}: training diverged. Does the update "
                      "add the gradient (it must be p -= lr * p.grad), or pile up gradients that are never "
                      "cleared (p.grad = None before backward)?")
    first, last = losses[0], losses[-1]
    if np.allclose(losses, first):
        raise Failure(f"the loss never changed from {first:.4g}: the parameters are not being updated "
                      "(p -= lr * p.grad, under tt.no_grad(), after loss.backward())")
    if last > first:
        raise Failure(f"the loss grew from {first:.4g} to {last:.4g}: either the update adds the gradient "
                      "(it must be p -= lr * p.grad), or the gradients are never cleared (p.grad = None "
                      "before backward), so every step adds to all the earlier ones")
    if last > 0.03:
        raise Failure(f"the loss fell from {first:.4g} only to {last:.4g}, where the reference solution "
                      "reaches 0.015: are the gradients cleared before each backward (p.grad = None)? "
                      "Otherwise they add up from step to step")


TRAIN = Exercise(
    10, "ex10_train_custom_function", "A custom tt.Function that trains a small network", "Linear",
    ("x", "W", "b"),
    cases=[Case("x (5, 3), W (2, 3), b (2,)", tuple(_random(23, (5, 3), (2, 3), (2,))))],
    reference=lambda x, w, b: x @ w.T + b,
    mistakes=[
        Mistake("forgot to sum the bias gradient over the batch: b was added to every row",
                lambda x, w, b, g: {2: g}),
        Mistake("dL/dW = grad^T @ x (out, in); x^T @ grad is its transpose",
                lambda x, w, b, g: {1: x.T @ g}),
    ],
    extra_check=_check_training,
    hints=["Linear: dL/dx = grad @ W (N, in), dL/dW = grad^T @ x (out, in), dL/db = grad summed over rows.",
           "A training step: set p.grad = None for every parameter, call loss.backward(), then under "
           "`with tt.no_grad():` do p -= lr * p.grad.",
           "Without clearing, .grad keeps the sum of every earlier step's gradient, and training goes astray."])


# ----------------------------------------------------------------------------------- 11: second derivatives

def _check_second_derivative(module):
    path = module.__path_checked__
    x = tt.tensor([-2.0, -0.5, 0.0, 1.0, 3.0], dtype=tt.float64, requires_grad=True)
    xs = x.detach().numpy()
    tanh_expected = -2 * np.tanh(xs) * (1 - np.tanh(xs) ** 2)
    got = _call(module, path, "second_derivative", lambda t: t.tanh(), x)
    compare("second_derivative(tanh, x) (its formula: -2 tanh(x) (1 - tanh(x)^2))",
            np.asarray(got.detach().numpy()), tanh_expected)
    sigmoid = 1 / (1 + np.exp(-xs))
    try:
        got = module.second_derivative(lambda t: module.Softplus.apply(t), x)
    except Exception as error:
        raise Failure(crash_message(error, path, "second_derivative(Softplus.apply, x)") +
                      " It works with tanh, so Softplus's backward is the problem: its gradient has no "
                      "graph. Compute it with Tensor operations on the saved x (not on arrays).") from None
    got = got.detach().numpy()
    if np.allclose(got, 0):
        raise Failure("the second derivative through your Softplus is zero everywhere, but "
                      "sigmoid(x) (1 - sigmoid(x)) is not: backward uses a value saved as a constant in "
                      "forward, so the gradient's graph never reaches x. Compute sigmoid(x) in backward, "
                      "from the saved x")
    compare("the second derivative through your Softplus", got, sigmoid * (1 - sigmoid))


SECOND_DERIVATIVE = Exercise(
    11, "ex11_second_derivative", "A second derivative through your own backward", "Softplus", ("x",),
    cases=[Case("x = [-2, -0.5, 0, 1, 3]", (np.array([-2.0, -0.5, 0.0, 1.0, 3.0]),))],
    reference=lambda x: tt.softplus(x),
    extra_check=_check_second_derivative,
    hints=["Backward: dy/dx = sigmoid(x); return grad * x.sigmoid() (x is the saved input, a Tensor).",
           "second_derivative: (first,) = tt.grad(f(x).sum(), x, create_graph=True) gives f'(x) as a graph.",
           "Then (second,) = tt.grad(first.sum(), x): for an elementwise f, d first_i / d x_i = f''(x_i)."])


EXERCISES = [SOFTSIGN, MEAN, BROADCAST, MATMUL, SOFTMAX, CROSS_ENTROPY, LAYER_NORM, CONV, ATTENTION, TRAIN,
             SECOND_DERIVATIVE]
BY_NUMBER = {exercise.number: exercise for exercise in EXERCISES}
