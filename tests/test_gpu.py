"""CuPy on a GPU gives the CPU's numbers: norms (fused CUDA kernels), convolution, a whole training step.
Skipped, with the reason, where CuPy or a GPU is missing."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import backend, nn, optim
from tinygrad_norm.nn import functional as F

ok, why = backend.gpu_available()
pytestmark = pytest.mark.skipif(not ok, reason=f"needs a GPU: {why}")

NORMS = [(lambda: nn.BatchNorm2d(6), (8, 6, 5, 4)), (lambda: nn.LayerNorm((5, 4)), (8, 6, 5, 4)),
         (lambda: nn.InstanceNorm2d(6, affine=True), (8, 6, 5, 4)), (lambda: nn.GroupNorm(3, 6), (8, 6, 5, 4)),
         (lambda: nn.RMSNorm(4), (8, 6, 5, 4)), (lambda: nn.LocalResponseNorm(3), (8, 6, 5, 4))]


def run(make, shape, device):
    tg.manual_seed(0)
    layer = make().double().to(device)
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal(shape), device=device, requires_grad=True)
    y = layer(x)
    y.backward(tg.Tensor(rng.standard_normal(shape), device=device))
    layer.eval()
    with tg.no_grad():
        z = layer(x)
    return [y.numpy(), x.grad.numpy(), z.numpy()] + [p.grad.numpy() for p in layer.parameters()]


@pytest.mark.parametrize("make,shape", NORMS)
def test_norms_on_cuda_match_cpu(make, shape):
    for a, b in zip(run(make, shape, "cpu"), run(make, shape, "cuda")):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-11)


def test_training_step_on_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 8)
    results = []
    for device in ("cpu", "cuda"):
        tg.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(64, 10)).to(device)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(3):
            loss = F.cross_entropy(model(tg.Tensor(x, device=device)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        results.append([t.numpy() for t in model.state_dict().values()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
