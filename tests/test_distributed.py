"""The distributed pieces in one process, and the multi-process cases (test_multiprocess.py) run under
`mpiexec -n 2` and `-n 3`; those skip, with the reason, where MPI cannot start."""
import functools
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import distributed as dist
from tinygrad_norm import nn, norms, world
from tinygrad_norm.data import DataLoader, TensorDataset
from tinygrad_norm.norms.sync import BatchSync, merge_moments

CASES = os.path.join(os.path.dirname(__file__), "test_multiprocess.py")


# ---- merging statistics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [(2, 3, 5), (4, 0, 6), (10,), (1, 1)])
def test_merge_moments_gives_the_statistics_of_the_union(sizes, rng):
    parts = [rng.normal(1e4, 3.0, (n, 4)) for n in sizes]  # a large offset: merging must not cancel
    means = np.array([p.mean(0) if len(p) else np.full(4, np.nan) for p in parts])  # empty: garbage, ignored
    variances = np.array([p.var(0) if len(p) else np.full(4, np.nan) for p in parts])
    n, mean, var = merge_moments(sizes, means, variances)
    whole = np.concatenate(parts)
    assert n == len(whole)
    np.testing.assert_allclose(mean, whole.mean(0), rtol=1e-14)
    np.testing.assert_allclose(var, whole.var(0), rtol=1e-9)
    n, none, mean_square = merge_moments(sizes, None, np.array([(p * p).mean(0) if len(p) else np.zeros(4) for p in parts]))
    assert none is None
    np.testing.assert_allclose(mean_square, (whole * whole).mean(0), rtol=1e-14)


class FakeWorld:
    """Three processes' contributions, played by one: what a real world's gather and all-reduce return."""
    size = 3

    def __init__(self, others):
        self.others = others

    def gather(self, a):
        return np.stack([a] + [o(a) for o in self.others])

    def all_reduce(self, a):
        return a + sum(o(a) for o in self.others)


def test_batch_sync_hands_the_kernels_merged_statistics_in_their_shape_dtype_and_device():
    sync = BatchSync(FakeWorld([lambda a: a, lambda a: np.concatenate([[0.0], a[1:] * 0 + 7])]), "SyncBatchNorm")
    count, mean, var = sync.moments(4, np.ones((1, 2, 1), np.float32), np.full((1, 2, 1), 2.0, np.float32))
    assert count == 8 and mean.dtype == var.dtype == np.float32 and mean.shape == var.shape == (1, 2, 1)
    np.testing.assert_allclose(var, 2.0)  # the empty third process's 7s do not count
    g, gx = BatchSync(FakeWorld([lambda a: a, lambda a: a]), "").sums(np.ones((1, 2, 1)), np.full((1, 2, 1), 2.0))
    np.testing.assert_allclose(g, 3.0)
    np.testing.assert_allclose(gx, 6.0)


def test_batch_sync_refuses_a_batch_of_one_value_in_all():
    sync = BatchSync(FakeWorld([lambda a: a * 0, lambda a: a * 0]), "SyncBatchNorm")
    with pytest.raises(ValueError, match=r"SyncBatchNorm: training needs more than one value per statistic over "
                                         r"all 3 processes, but their inputs hold 1 in all \(per process: \[1, 0, 0\]\)"):
        sync.moments(1, np.ones((1, 2)), np.zeros((1, 2)))


# ---- layers ---------------------------------------------------------------------------------------------
def test_sync_needs_a_pattern_that_pools_the_batch_axis():
    with pytest.raises(ValueError, match=r"LayerNorm \(plugin 'layer'\): sync=True needs a pattern that pools the "
                                         r"batch axis n, but .* does not name the batch axis n"):
        nn.Norm("layer", 8, sync=True)
    with pytest.raises(ValueError, match=r"GroupNorm \(plugin 'group'\).*'n \(g c\) \.\.\. -> n g' keeps the batch axis n"):
        nn.Norm("group", 2, 8, sync=True)


def test_a_third_party_plugin_that_pools_the_batch_axis_can_sync():
    from tinygrad_norm.norms import NormLayer

    class BatchRMS(NormLayer):  # no centering; statistics per channel over the batch
        pattern, param_axes, center = "n c -> c", "c", False

    layer = BatchRMS(3).set_sync()
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(layer(tg.Tensor(x)).numpy(), x / np.sqrt((x * x).mean(0) + 1e-5), rtol=1e-6)


def test_sync_in_a_world_of_one_changes_nothing_and_loads_no_mpi(rng):
    assert dist.world_size() == 1 and dist.is_main() and "mpi4py.MPI" not in sys.modules
    x, dy = rng.normal(size=(6, 4, 3, 3)).astype(np.float32), rng.normal(size=(6, 4, 3, 3)).astype(np.float32)
    results = []
    for make in (lambda: nn.BatchNorm2d(4), lambda: nn.SyncBatchNorm(4)):
        layer, xt = make(), tg.Tensor(x, requires_grad=True)
        layer(xt).backward(tg.Tensor(dy))
        results.append([xt.grad.numpy(), layer.weight.grad.numpy(), layer.running_var.numpy()])
    for a, b in zip(*results):
        assert np.array_equal(a, b)
    assert "mpi4py.MPI" not in sys.modules


def test_convert_sync_batchnorm_keeps_weights_buffers_and_keys():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm1d(4)), nn.GroupNorm(1, 4))
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    weight = model[1].weight
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and model[1].weight is weight
    assert [m.sync for m in (model[1], model[2][0])] == [True, True] and not model[3].sync
    assert "SyncBatchNorm(2, eps=1e-05" in repr(model)
    after = model.state_dict()
    assert list(after) == list(before) and all(np.array_equal(after[k].numpy(), v) for k, v in before.items())
    assert isinstance(model[1], nn.SyncBatchNorm) and isinstance(model[1], norms.get("batch"))
    bare = nn.BatchNorm2d(3).eval()  # PyTorch's rule: a BatchNorm itself comes back as a new SyncBatchNorm
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(bare)
    assert isinstance(sync, nn.SyncBatchNorm) and sync.weight is bare.weight and sync.running_var is bare.running_var
    assert not sync.training and sync.sync


# ---- the world ------------------------------------------------------------------------------------------
def test_a_launcher_without_mpi4py_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails
    with pytest.raises(ImportError, match=r"started by an MPI launcher \(PMI_SIZE=4\) but mpi4py cannot be "
                                          r"imported .*pip install 'tinygrad-norm\[dist\]'"):
        dist.init()


def test_data_parallel_in_a_world_of_one_is_the_model():
    model = nn.Sequential(nn.Linear(3, 2))
    dp = dist.DataParallel(model)
    x = tg.Tensor(np.ones((2, 3)))
    assert np.array_equal(dp(x).numpy(), model(x).numpy()) and dp.module is model
    assert list(dp.state_dict()) == ["module.0.weight", "module.0.bias"]  # PyTorch's names


def test_gradient_sync_is_the_identity_with_its_gradient():
    x = tg.Tensor(np.random.default_rng(0).normal(size=(3, 2)), requires_grad=True)
    assert tg.gradcheck(lambda t: dist.GradientSync.apply(t * t), x)


def test_buckets_hold_one_dtype_and_at_most_the_limit():
    ts = [tg.Tensor(np.zeros(n, d)) for n, d in ((100, np.float32), (100, np.float32), (300, np.float32),
                                               (10, np.int64), (10, np.int64), (5, np.float32))]
    runs = [[len(t.data) for t in run] for run in dist.buckets(ts, limit_bytes=800)]
    assert runs == [[100, 100], [300], [10, 10], [5]]


# ---- data -----------------------------------------------------------------------------------------------
def test_distributed_sampler_splits_pads_and_reshuffles_per_epoch():
    data = list(range(10))
    shares = [list(dist.DistributedSampler(data, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded from the start, as PyTorch does
    dropped = [list(dist.DistributedSampler(data, num_replicas=3, rank=r, shuffle=False, drop_last=True)) for r in range(3)]
    assert dropped == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    sampler = dist.DistributedSampler(data, num_replicas=2, rank=1, seed=3)
    first, again = list(sampler), list(sampler)
    sampler.set_epoch(1)
    assert first == again and list(sampler) != first and sorted(first + list(dist.DistributedSampler(
        data, num_replicas=2, rank=0, seed=3))) == data
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\); got 2"):
        dist.DistributedSampler(data, num_replicas=2, rank=2)


def test_data_loader_takes_its_order_from_a_sampler():
    x = np.arange(10, dtype=np.float32)[:, None]
    loader = DataLoader(TensorDataset(x), batch_size=3, sampler=dist.DistributedSampler(x, num_replicas=2, rank=1, shuffle=False))
    assert len(loader) == 2 and [b[0].numpy().ravel().tolist() for b in loader] == [[1, 3, 5], [7, 9]]
    with pytest.raises(ValueError, match="give shuffle or a sampler, not both"):
        DataLoader(TensorDataset(x), shuffle=True, sampler=[0])


# ---- the same cases under mpiexec -----------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def mpi_unavailable():
    """None when `mpiexec -n 2` starts Python processes that see each other, else why not."""
    try:
        import mpi4py  # noqa: F401  (imported only to see that it is there)
    except ImportError:
        return "mpi4py is not installed (pip install 'tinygrad-norm[dist]')"
    launcher = world.find_mpiexec()
    if launcher is None:
        return "no mpiexec found next to Python or on PATH (pip install mpich)"
    probe = "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2"
    try:
        done = subprocess.run([launcher, "-n", "2", sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "mpiexec -n 2 did not finish a two-process hello in 60 s"
    return None if done.returncode == 0 else f"mpiexec -n 2 failed: {(done.stderr or done.stdout)[-500:]}"


def mpiexec(processes, *args, timeout=300):
    """Run `mpiexec -n processes python *args` (skipping where MPI cannot start); returns its output."""
    why = mpi_unavailable()
    if why:
        pytest.skip(f"MPI cannot start here: {why}")
    launcher = world.find_mpiexec()
    job = subprocess.Popen([launcher, "-n", str(processes), sys.executable, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # a collective some process never reached: kill the whole job
        os.killpg(job.pid, signal.SIGKILL)
        output, _ = job.communicate()
        pytest.fail(f"mpiexec -n {processes} hung for {timeout} s; its output:\n{output[-4000:]}")
    assert job.returncode == 0, f"mpiexec -n {processes} failed:\n{output[-6000:]}"
    return output


@pytest.mark.parametrize("processes", [2, 3])
def test_the_multiprocess_cases_under_mpiexec(processes):
    output = mpiexec(processes, "-m", "pytest", "-q", "-x", "-rs", "-p", "no:cacheprovider", CASES)
    summaries = [line for line in output.splitlines() if " passed" in line and " in " in line]
    assert len(summaries) == processes and "needs two or more processes" not in output, output[-2000:]


def test_collectives_never_hand_back_the_callers_array():
    a = np.ones(3)
    for result in (dist.all_reduce(a), dist.broadcast(a)):
        result[0] = 7.0
    t = tg.Tensor(np.ones(2))
    dist.all_reduce(t).data[0] = 7.0
    assert a.tolist() == [1.0, 1.0, 1.0] and t.tolist() == [1.0, 1.0]
