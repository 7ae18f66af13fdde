"""The engine at work: fit y = sin(3x) with a two-layer tanh net by plain gradient descent."""
import numpy as np

from .tensor import Tensor


def fit_sine(steps=500, hidden=32, lr=0.1, seed=0, log=print):
    """Returns the list of losses; prints one every 50 steps."""
    rng = np.random.default_rng(seed)
    x = Tensor(np.linspace(-1, 1, 128, dtype=np.float32)[:, None])
    y = Tensor(np.sin(3 * x.data))
    w1 = Tensor(rng.standard_normal((1, hidden)).astype(np.float32), requires_grad=True)
    b1 = Tensor(np.zeros(hidden, np.float32), requires_grad=True)
    w2 = Tensor((rng.standard_normal((hidden, 1)) / np.sqrt(hidden)).astype(np.float32), requires_grad=True)
    b2 = Tensor(np.zeros(1, np.float32), requires_grad=True)
    losses = []
    for step in range(steps + 1):
        loss = (((x @ w1 + b1).tanh() @ w2 + b2 - y) ** 2).mean()
        for p in (w1, b1, w2, b2):
            p.grad = None
        loss.backward()
        for p in (w1, b1, w2, b2):
            p.data -= lr * p.grad.data
        losses.append(loss.item())
        if step % 50 == 0:
            log(f"step {step:4d}  loss {losses[-1]:.5f}")
    return losses
