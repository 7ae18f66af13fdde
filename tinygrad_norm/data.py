"""Datasets, batching, and the bundled data: scikit-learn's 8x8 handwritten digits, and MNIST-1D-like sequences generated
here (make_mnist1d); nothing is downloaded."""
import numpy as np

from . import world
from .backend import get_array_module
from .tensor import Tensor


class Dataset:
    """Anything with __len__ and __getitem__(i) -> tuple of arrays."""

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, i):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Arrays (or Tensors) of equal first dimension; item i is the tuple of their i-th rows."""

    def __init__(self, *arrays):
        self.arrays = [a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays]
        if not self.arrays or any(a.ndim == 0 for a in self.arrays):
            raise ValueError(f"TensorDataset needs one or more arrays with a first axis to index; got shapes "
                             f"{[a.shape for a in self.arrays]}")
        if len({len(a) for a in self.arrays}) != 1:
            raise ValueError(f"TensorDataset needs arrays of one length; got lengths {[len(a) for a in self.arrays]}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


class DistributedSampler:
    """One process's share of a dataset's indices: each of the world's processes gets a disjoint slice of
    one order, all of one length, drawn afresh each epoch (`set_epoch`) from `seed` when shuffling.

    Without drop_last the order is padded by repeating its start so that it divides evenly (PyTorch's rule);
    with it the tail that does not divide is dropped. num_replicas and rank default to the world's."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        self.num_replicas = world.world_size() if num_replicas is None else num_replicas
        self.rank = world.rank() if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas}); got {self.rank}")
        self.dataset, self.shuffle, self.seed, self.drop_last, self.epoch = dataset, shuffle, seed, drop_last, 0

    def set_epoch(self, epoch):
        """Call at the start of each epoch so that the shuffled order differs from epoch to epoch."""
        self.epoch = epoch

    def __len__(self):
        n, r = len(self.dataset), self.num_replicas
        return n // r if self.drop_last else -(-n // r)

    def __iter__(self):
        n = len(self.dataset)
        order = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        total = len(self) * self.num_replicas
        order = np.resize(order, total)  # pads by repeating from the start, or cuts the tail
        return iter(order[self.rank::self.num_replicas].tolist())


class DataLoader:
    """Batches of Tensors from a dataset; shuffle draws a new order each epoch from its own seeded generator.
    A sampler (e.g. DistributedSampler) gives the order instead, so it excludes shuffle.

    An item is a tuple of fields (each an array, a Tensor or a number) and a batch the tuple of each field stacked
    along a new first axis; an item that is one array or number gives a batch that is one Tensor (PyTorch's
    collation). Items of other structures, or a field whose shapes differ between items, are an error naming them."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, sampler=None):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer; got {batch_size!r}")
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: the dataset must have __len__ and __getitem__ (a Dataset, or a TensorDataset "
                            f"of arrays); got {type(dataset).__name__}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: give shuffle or a sampler, not both; the sampler decides the order "
                             "(DistributedSampler shuffles itself)")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.sampler, self.rng = sampler, np.random.default_rng(seed)

    def __len__(self):
        n, b = len(self.sampler if self.sampler is not None else self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        if self.sampler is not None:
            order = np.fromiter(self.sampler, np.int64)
        else:
            order = self.rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        for k in range(len(self)):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            if isinstance(self.dataset, TensorDataset):  # one fancy-index per array instead of a Python loop
                yield tuple(Tensor(a[idx]) for a in self.dataset.arrays)
            else:
                yield collate([self.dataset[int(i)] for i in idx], [int(i) for i in idx])


def collate(items, indices):
    """One batch from the dataset's items at `indices` (see DataLoader)."""
    fields = lambda item: len(item) if isinstance(item, (tuple, list)) else None  # None: one value, not a tuple
    width = fields(items[0])
    for i, item in zip(indices, items):
        if fields(item) != width:
            say = lambda n: "one value" if n is None else f"{n} field{'s' * (n != 1)}"
            raise ValueError(f"DataLoader: item {indices[0]} has {say(width)} but item {i} has {say(fields(item))}; "
                             f"every item of a dataset must have the same fields")
    if width is None:
        return _stack(items, "the items", indices)
    return tuple(_stack([item[f] for item in items], f"field {f}", indices) for f in range(width))


def _stack(values, what, indices):
    """values (arrays, Tensors or numbers, one per item) stacked along a new first axis, as a Tensor."""
    arrays = [v.data if isinstance(v, Tensor) else v for v in values]
    xp = get_array_module(*arrays)
    try:
        arrays = [xp.asarray(a) for a in arrays]
    except (TypeError, ValueError) as e:
        raise TypeError(f"DataLoader: {what} of an item is not an array or a number: {type(e).__name__}: {e}") from None
    for i, value, a in zip(indices, values, arrays):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"DataLoader: {what} of item {i} is a {type(value).__name__} of dtype {a.dtype}; a batch "
                            f"stacks arrays or numbers")
        if a.shape != arrays[0].shape:
            raise ValueError(f"DataLoader: {what} of item {indices[0]} has shape {arrays[0].shape} but of item {i} "
                             f"shape {a.shape}; a batch stacks values of one shape (pad or crop them, or use batch_size=1)")
    return Tensor(xp.stack(arrays))


def load_digits(test_fraction=0.2, seed=0):
    """The 1797 8x8 digit images as (x_train, y_train, x_test, y_test): x float32 (N, 1, 8, 8) in [0, 1], y int64.

    The split is a fixed permutation (seed 0 by default), stratified by nothing but stable across machines.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise ImportError("the digits data set comes from scikit-learn, which is not installed: "
                          "pip install 'tinygrad-norm[examples]'") from None
    data = sk_load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


# Ten 12-point shapes, one per class, in the spirit of MNIST-1D's (Greydanus, 2020); 0 is the baseline.
_TEMPLATES = np.array([
    [0, 1, 1.5, 1.75, 2, 2, 2, 2, 1.75, 1.5, 1, 0],          # 0: one hump
    [0, -2, -2, -1.6, -1.2, -0.8, -0.4, 0, 0.4, 0.8, 0, 0],   # 1: a drop, then a ramp up
    [0, 1, 1.5, 1.5, 1, 0.25, -0.25, -1, -1.5, -1.5, -1, 0],  # 2: up, then down
    [0, 1, 1.5, 1.5, 1, 0, 0, 1, 1.5, 1.5, 1, 0],            # 3: two humps
    [0, -0.6, -1.2, -1.8, -2.4, -2.4, 0, 0, 0, 0, 0, 0],      # 4: a ramp down, a jump back
    [0, -2, -2, -2, -2, 0, 1, 1.5, 1.5, 1, -0.5, 0],          # 5: a trough, then a hump
    [0, -1, -1.5, -1.75, -2, -2, -2, -2, -1.75, -1.5, -1, 0],  # 6: one trough
    [0, 2, 2, 1.6, 1.2, 0.8, 0.4, 0, -0.4, -0.8, 0, 0],       # 7: a jump up, then a ramp down
    [0, -1, -1.5, -1.5, -1, 0, 0, -1, -1.5, -1.5, -1, 0],     # 8: two troughs
    [0, -1, -1.5, -1.5, -1, 0, 0, 0, 0, -0.3, -0.7, 0],       # 9: a trough, then a dip
], np.float64)


def make_mnist1d(n_train=4000, n_test=1000, length=40, seed=0):
    """A harder offline data set: MNIST-1D-like sequences, (x_train, y_train, x_test, y_test), x float32
    (N, 1, length), y int64. Generated here from `seed`; nothing is downloaded.

    Each sample is its class's 12-point template stretched to 20-33 % of the window at a random position,
    scaled in amplitude by [0.7, 1.3], plus a random linear trend (slope in [-0.75, 0.75] over the window),
    Gaussian-smoothed noise (σ 0.6) and white noise (σ 0.1); then the whole set is standardized."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = rng.integers(0, 10, n)
    width = rng.uniform(0.2, 1 / 3, n)
    start = rng.uniform(0, 1 - width)
    u = np.linspace(0, 1, length)
    where = (u[None] - start[:, None]) / width[:, None] * (_TEMPLATES.shape[1] - 1)
    x = np.stack([np.interp(w, np.arange(_TEMPLATES.shape[1]), _TEMPLATES[k], left=0, right=0)
                  for w, k in zip(where, y)]) * rng.uniform(0.7, 1.3, (n, 1))
    x += rng.uniform(-0.75, 0.75, (n, 1)) * (u - 0.5)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    smooth = np.stack([np.convolve(r, kernel / np.linalg.norm(kernel), "valid") for r in rng.normal(size=(n, length + 12))])
    x += 0.6 * smooth + 0.1 * rng.normal(size=(n, length))
    x = ((x - x.mean()) / x.std()).astype(np.float32)[:, None]
    return x[:n_train], y[:n_train].astype(np.int64), x[n_train:], y[n_train:].astype(np.int64)
