"""Cases that hold in a world of any size: the plain test run checks them in a world of one, and
test_distributed.py runs this file under `mpiexec -n 2` and `-n 3`.

Every process builds the same global batch from one seed and keeps its rows (unequal shares, one of them
empty where stated); the reference is one process computing on the whole batch in float64.
"""
import os
import shutil
import tempfile

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import distributed as dist
from tinygrad_norm import nn, optim
from tinygrad_norm.nn import functional as F

WORLD, RANK = dist.world_size(), dist.rank()
SHARES = {1: (10,), 2: (3, 7), 3: (2, 3, 5)}           # rows of a batch of 10 per process
WITH_EMPTY = {1: (10,), 2: (0, 10), 3: (4, 0, 6)}       # one process holds no rows
needs_two = pytest.mark.skipif(WORLD < 2, reason="needs two or more processes: run under mpiexec (test_distributed.py does)")


def shares(table, total=10):
    return table.get(WORLD) or tuple(np.diff(np.linspace(0, total, WORLD + 1).astype(int)))


def my_rows(sizes):
    edges = np.concatenate([[0], np.cumsum(sizes)])
    return slice(int(edges[RANK]), int(edges[RANK + 1]))


def everyone(value):
    """value from every process, in rank order."""
    return dist.world().gather_objects(value)


def batchnorm(kind, momentum, sync):
    layer = (nn.SyncBatchNorm(3, momentum=momentum) if kind == "SyncBatchNorm" and sync else
             nn.Norm("batch", 3, momentum=momentum, sync=sync))
    rng = np.random.default_rng(1)  # γ, β away from 1, 0 so that their gradients matter
    layer.weight.data, layer.bias.data = rng.uniform(0.5, 1.5, 3), rng.normal(size=3)
    return layer.double()


@pytest.mark.parametrize("table", [SHARES, WITH_EMPTY], ids=["unequal", "one-empty"])
@pytest.mark.parametrize("shape", [(10, 3), (10, 3, 4, 2)], ids=["NC", "NCHW"])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("kind", ["SyncBatchNorm", "Norm(batch, sync=True)"])
def test_synchronized_batchnorm_is_one_process_on_the_whole_batch(kind, momentum, shape, table):
    rng = np.random.default_rng(0)
    xs = [rng.normal(3.0, 2.0, shape) for _ in range(2)]   # two steps, so that momentum=None averages
    dys = [rng.normal(size=shape) for _ in range(2)]
    rows = my_rows(shares(table, shape[0]))
    one, synced = batchnorm(kind, momentum, sync=False), batchnorm(kind, momentum, sync=True)
    for x, dy in zip(xs, dys):
        for layer in (one, synced):
            layer.zero_grad()
        whole = tg.Tensor(x, requires_grad=True)
        y = one(whole)
        y.backward(tg.Tensor(dy))
        part = tg.Tensor(x[rows], requires_grad=True)
        y_part = synced(part)
        y_part.backward(tg.Tensor(dy[rows]))
        np.testing.assert_allclose(y_part.numpy(), y.numpy()[rows], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(part.grad.numpy(), whole.grad.numpy()[rows], rtol=1e-9, atol=1e-12)
        for p, q in ((synced.weight, one.weight), (synced.bias, one.bias)):
            np.testing.assert_allclose(dist.all_reduce(p.grad).numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        mine = getattr(synced, name).numpy()
        np.testing.assert_allclose(mine, getattr(one, name).numpy(), rtol=1e-6, atol=1e-8)  # float32 buffers
        assert all(np.array_equal(mine, theirs) for theirs in everyone(mine)), f"{name} differs between processes"


def test_a_third_party_plugin_that_pools_the_batch_axis_synchronizes_too():
    """A plugin the core has never seen, without centering (statistics: the mean square per channel)."""
    from tinygrad_norm.norms import NormLayer

    class BatchRMS(NormLayer):
        pattern, param_axes, center = "n c ... -> c", "c", False

    rng = np.random.default_rng(6)
    x, dy = rng.normal(1.0, 2.0, (10, 3, 4)), rng.normal(size=(10, 3, 4))
    rows = my_rows(shares(WITH_EMPTY))
    outputs = []
    for layer, part in ((BatchRMS(3).double(), slice(None)), (BatchRMS(3).double().set_sync(), rows)):
        t = tg.Tensor(x[part], requires_grad=True)
        y = layer(t)
        y.backward(tg.Tensor(dy[part]))
        outputs.append((y.numpy(), t.grad.numpy(), layer.weight.grad))
    (y, dx, dw), (y_part, dx_part, dw_part) = outputs
    np.testing.assert_allclose(y_part, y[rows], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx_part, dx[rows], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dist.all_reduce(dw_part).numpy(), dw.numpy(), rtol=1e-9)


@pytest.mark.parametrize("name, options", [("switchable", {}), ("batch_renorm", {"r_max": 1.2, "d_max": 0.1}),
                                           ("l1_batch", {}), ("evonorm_b0", {}), ("iter_norm", {"num_groups": 2})])
def test_literature_plugins_that_pool_the_batch_synchronize_too(name, options):
    """Forwards of their own (a mix of patterns' statistics, corrections from running averages, pooled means,
    a covariance summed over processes): the synchronized layer on each share is one process on the batch."""
    rng = np.random.default_rng(7)
    x, dy = rng.normal(1.0, 2.0, (10, 4, 3)), rng.normal(size=(10, 4, 3))
    rows = my_rows(shares(SHARES))
    outputs = []
    for sync, part in ((False, slice(None)), (True, rows)):
        layer = nn.Norm(name, 4, sync=sync, **options).double()
        for p in layer.parameters():
            p.data = np.random.default_rng(8).uniform(0.2, 0.8, p.shape)
        t = tg.Tensor(x[part], requires_grad=True)
        y = layer(t)
        y.backward(tg.Tensor(dy[part]))
        outputs.append((y.numpy(), t.grad.numpy(), [p.grad for p in layer.parameters()], layer))
    (y, dx, grads, one), (y_part, dx_part, grads_part, synced) = outputs
    np.testing.assert_allclose(y_part, y[rows], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx_part, dx[rows], rtol=1e-9, atol=1e-12)
    for mine, whole in zip(grads_part, grads):
        np.testing.assert_allclose(dist.all_reduce(mine).numpy(), whole.numpy(), rtol=1e-9, atol=1e-12)
    for (key, mine), (_, whole) in zip(synced.named_buffers(), one.named_buffers()):
        np.testing.assert_allclose(mine.numpy(), whole.numpy(), rtol=1e-6, atol=1e-8, err_msg=key)


def test_synchronized_input_gradient_matches_central_differences():
    """d/dx of Σ_processes Σ y·w, every element of the global batch perturbed by the process holding it."""
    rng = np.random.default_rng(2)
    x_all, w_all = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    sizes = shares(SHARES)
    rows = my_rows(sizes)
    layer = batchnorm("SyncBatchNorm", 0.1, sync=True)
    x, w = tg.Tensor(x_all[rows], requires_grad=True), tg.Tensor(w_all[rows])
    (layer(x) * w).sum().backward()

    def total(x_local):
        with tg.no_grad():
            return float(dist.all_reduce(np.array([(layer(tg.Tensor(x_local)).numpy() * w.numpy()).sum()]))[0])

    numeric, eps = np.zeros_like(x_all), 1e-6
    for i in range(x_all.shape[0]):
        for j in range(x_all.shape[1]):
            owner = int(np.searchsorted(np.cumsum(sizes), i, side="right"))
            value = []
            for step in (eps, -eps):
                local = x_all[rows].copy()
                if owner == RANK:
                    local[i - rows.start, j] += step
                value.append(total(local))
            numeric[i, j] = (value[0] - value[1]) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), numeric[rows], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("table", [SHARES, WITH_EMPTY], ids=["unequal", "one-empty"])
def test_synchronized_second_derivatives_are_one_process_on_the_whole_batch(table):
    """S = Σ u·∂L/∂x with L = Σ w·y²: each process's grad of its part of S (the second derivative's five sums
    all-reduced) is the whole batch's for its rows, and its γ, β gradients sum to the whole batch's."""
    rng = np.random.default_rng(3)
    x, w, u = rng.normal(2.0, 1.5, (10, 3, 2)), rng.normal(size=(10, 3, 2)), rng.normal(size=(10, 3, 2))
    rows = my_rows(shares(table))
    results = []
    for layer, part in ((batchnorm("SyncBatchNorm", 0.1, sync=False), slice(None)),
                        (batchnorm("SyncBatchNorm", 0.1, sync=True), rows)):
        t = tg.Tensor(x[part], requires_grad=True)
        (g,) = tg.grad((layer(t) ** 2 * tg.Tensor(w[part])).sum(), t, create_graph=True)
        results.append(tg.grad((g * tg.Tensor(u[part])).sum(), [t, layer.weight, layer.bias]))
    (gx, gw, gb), (gx_part, gw_part, gb_part) = results
    np.testing.assert_allclose(gx_part.numpy(), gx.numpy()[rows], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dist.all_reduce(gw_part).numpy(), gw.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dist.all_reduce(gb_part).numpy(), gb.numpy(), rtol=1e-9, atol=1e-11)


def test_too_few_values_over_all_processes_is_the_same_error_everywhere():
    layer = nn.SyncBatchNorm(3)
    sizes = (1,) + (0,) * (WORLD - 1)
    with pytest.raises(ValueError, match="more than one value per statistic"):
        layer(tg.Tensor(np.ones((sizes[RANK], 3))))


def small_model(seed):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(27, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 4)).double()


def train(model, x, y, steps=3):
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(tg.Tensor(x)), tg.Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_data_parallel_with_sync_batchnorm_is_one_process_on_the_concatenated_batch():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 1, 5, 5)), rng.integers(0, 4, 12)
    rows = my_rows((12 // WORLD,) * WORLD)
    reference = small_model(seed=0)
    reference_losses = train(reference, x, y)
    model = dist.DataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(small_model(seed=RANK)))  # rank 0's wins
    losses = train(model, x[rows], y[rows])
    global_losses = np.mean(everyone(losses), axis=0)  # equal shares: the mean of the means
    np.testing.assert_allclose(global_losses, reference_losses, rtol=1e-10)
    mine = model.module.state_dict()
    for name, value in reference.state_dict().items():
        np.testing.assert_allclose(mine[name].numpy(), value.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


def mlp(seed):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def test_no_sync_accumulates_locally_then_the_next_backward_averages_everything():
    """Loss Σ over rows: one process on the whole of two micro-batches gets W times the averaged gradient."""
    rng = np.random.default_rng(4)
    chunks = [rng.normal(size=(2 * WORLD, 3)) for _ in range(2)]
    reference = mlp(seed=0)
    for chunk in chunks:
        reference(tg.Tensor(chunk)).sum().backward()
    model = dist.DataParallel(mlp(seed=RANK))
    with model.no_sync():
        model(tg.Tensor(np.split(chunks[0], WORLD)[RANK])).sum().backward()
    local = everyone(model.module[0].weight.grad.numpy())
    assert WORLD == 1 or not np.allclose(local[0], local[1]), "inside no_sync the gradients must stay local"
    model(tg.Tensor(np.split(chunks[1], WORLD)[RANK])).sum().backward()
    for (name, p), q in zip(model.module.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy() * WORLD, q.grad.numpy(), rtol=1e-12, err_msg=name)


@needs_two
def test_data_parallel_refuses_models_that_differ():
    width = 4 if RANK == 0 else 5
    model = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))
    with pytest.raises(ValueError, match=r"every process must wrap the same model.*'0\.weight' is \(5, 3\) float32 "
                                         r"here but \(4, 3\) float32 on rank 0"):
        dist.DataParallel(model)
    extra = nn.Sequential(nn.Linear(3, 2), *([nn.BatchNorm1d(2)] if RANK == 1 else []))
    with pytest.raises(ValueError, match=r"on rank 1: parameter '1\.weight' is not on rank 0"):
        dist.DataParallel(extra)


def test_a_parameter_used_on_some_processes_only_gets_their_average():
    """The last process skips the second layer: its gradient there counts zero; with no process using it,
    it stays None."""
    model = dist.DataParallel(mlp(seed=RANK))
    first, second = model.module[0], model.module[2]
    x = tg.Tensor(np.full((1, 3), 1.0 + RANK))
    hidden = [np.tanh(first.weight.numpy() @ np.full(3, 1.0 + r) + first.bias.numpy()) for r in range(WORLD)]
    out = first(x) if RANK == WORLD - 1 else second(first(x).tanh())
    model._mark(out).sum().backward()
    if WORLD == 1:
        assert second.weight.grad is None
    else:
        expected = sum(np.outer(np.ones(2), h) for h in hidden[:-1]) / WORLD
        np.testing.assert_allclose(second.weight.grad.numpy(), expected, rtol=1e-12)


def test_collectives_return_the_kind_they_were_given():
    t = dist.all_reduce(tg.Tensor([1.0 + RANK, 2.0]))
    assert isinstance(t, tg.Tensor)
    np.testing.assert_allclose(t.numpy(), [sum(1.0 + r for r in range(WORLD)), 2.0 * WORLD])
    m = dist.all_reduce(np.array([RANK], np.int64), op="mean")
    assert isinstance(m, np.ndarray) and m[0] == np.mean(range(WORLD))
    h = dist.all_reduce(np.array([1.5], np.float16))
    assert h.dtype == np.float16 and h[0] == 1.5 * WORLD
    b = dist.broadcast(tg.Tensor([float(RANK)] * 2), root=WORLD - 1)
    assert isinstance(b, tg.Tensor) and b.tolist() == [float(WORLD - 1)] * 2
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(np.ones(2), op="max")
    with pytest.raises(ValueError, match=f"root {WORLD} is not a rank"):
        dist.broadcast(np.ones(2), root=WORLD)


@needs_two
def test_collectives_on_different_shapes_are_the_same_error_everywhere():
    with pytest.raises(ValueError, match=r"all_reduce needs the same shape and dtype on every process; got rank 0: "
                                         r"\(1,\) float64, rank 1: \(2,\) float64"):
        dist.all_reduce(np.ones(RANK + 1))
    with pytest.raises(ValueError, match="broadcast needs the same shape and dtype"):
        dist.broadcast(np.ones(2, np.float32 if RANK else np.float64))


def test_distributed_sampler_gives_each_process_a_disjoint_share():
    data = list(range(11))
    for drop_last in (False, True):
        sampler = dist.DistributedSampler(data, shuffle=True, seed=5, drop_last=drop_last)
        sampler.set_epoch(1)
        mine = list(sampler)
        shares_ = everyone(mine)
        assert len({len(s) for s in shares_}) == 1 and len(mine) == len(sampler)
        together = sorted(i for s in shares_ for i in s)
        if drop_last:
            assert len(together) == 11 // WORLD * WORLD and len(set(together)) == len(together)
        else:
            assert set(together) == set(data) and len(together) == -(-11 // WORLD) * WORLD


def test_checkpoint_written_by_rank_0_loads_everywhere():
    folder = everyone(tempfile.mkdtemp() if RANK == 0 else None)[0]
    path = os.path.join(folder, "model.npz")
    dp = dist.DataParallel(small_model(seed=RANK))
    dp.save(path)
    try:
        assert os.listdir(folder) == ["model.npz"]
        fresh = small_model(seed=100 + RANK)
        assert fresh.load(path) == ([], [])
        for (name, a), b in zip(fresh.state_dict().items(), dp.module.state_dict().values()):
            assert np.array_equal(a.numpy(), b.numpy()), name
        again = dist.DataParallel(small_model(seed=200 + RANK))
        again.load(path)  # DataParallel loads the bare model's checkpoint its own save wrote
        for (name, a), b in zip(again.module.state_dict().items(), dp.module.state_dict().values()):
            assert np.array_equal(a.numpy(), b.numpy()), name
    finally:
        dist.barrier()
        if RANK == 0:
            shutil.rmtree(folder)


def test_data_parallel_with_sync_batchnorm_on_every_device(device):
    """Arrays on the GPU go through host memory to MPI: the same training as on the CPU, on `device`."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 1, 5, 5)), rng.integers(0, 4, 12)
    rows = my_rows((12 // WORLD,) * WORLD)
    reference = small_model(seed=0)
    train(reference, x, y, steps=2)
    model = dist.DataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(small_model(seed=RANK)).to(device))
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for _ in range(2):
        loss = F.cross_entropy(model(tg.Tensor(x[rows], device=device)), tg.Tensor(y[rows], device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    mine = model.module.state_dict()
    for name, value in reference.state_dict().items():
        assert mine[name].device == device
        np.testing.assert_allclose(mine[name].numpy(), value.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
