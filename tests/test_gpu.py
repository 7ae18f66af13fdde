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
         (lambda: nn.RMSNorm(4), (8, 6, 5, 4)), (lambda: nn.LocalResponseNorm(3), (8, 6, 5, 4)),
         (lambda: nn.Norm("ghost_batch", 6, k=2), (8, 6, 5, 4)), (lambda: nn.BatchNorm1d(6), (16, 6)),
         (lambda: nn.LayerNorm(600), (3, 600))]  # ghost batches (G > 1), I = 1, a row longer than the block


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


def test_training_steps_on_cuda_match_cpu():
    """Three SGD-with-momentum steps of a small CNN: the loss at every step, every gradient of the first step
    and the final state_dict. The convolution before the BatchNorm has no bias: BN cancels it, so its gradient
    is zero in exact arithmetic and comparing it would compare rounding noise (which Adam, dividing by √v,
    turns into full-size steps)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 8)
    results = []
    for device in ("cpu", "cuda"):
        tg.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)).to(device)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses, first_grads = [], None
        for _ in range(3):
            loss = F.cross_entropy(model(tg.Tensor(x, device=device)), y)
            opt.zero_grad()
            loss.backward()
            first_grads = first_grads or [p.grad.numpy() for p in model.parameters()]
            opt.step()
            losses.append(loss.item())
        results.append((losses, first_grads, [t.numpy() for t in model.state_dict().values()]))
    (cpu_losses, cpu_grads, cpu_state), (gpu_losses, gpu_grads, gpu_state) = results
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-5)
    for a, b in zip(cpu_grads + cpu_state, gpu_grads + gpu_state):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_mixing_devices_in_one_op_names_the_op_and_both_devices():
    with pytest.raises(backend.DeviceError, match=r"Add: inputs are on different devices \(cpu and cuda\)"):
        tg.ones(2) + tg.ones(2, device="cuda")
    with pytest.raises(backend.DeviceError, match=r"MatMul: .*cpu and cuda"):
        tg.ones(2, 2, device="cuda") @ tg.ones(2, 2)
    with pytest.raises(backend.DeviceError, match=r"Mul: .*cpu and cuda"):
        tg.ones(2, device="cuda") * np.ones(2)  # a host array is not copied to the GPU behind the user's back
    with pytest.raises(backend.DeviceError, match=r"lt: .*cpu and cuda"):
        tg.ones(2, device="cuda") < tg.ones(2)
