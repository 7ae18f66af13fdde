"""Datasets, batching, and the bundled real data (scikit-learn's 8x8 handwritten digits; nothing is downloaded)."""
import numpy as np

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
        if len({len(a) for a in self.arrays}) != 1:
            raise ValueError(f"TensorDataset needs arrays of one length; got lengths {[len(a) for a in self.arrays]}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


class DataLoader:
    """Batches of Tensors from a dataset; shuffle draws a new order each epoch from its own seeded generator."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None):
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        order = self.rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        for k in range(len(self)):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            if isinstance(self.dataset, TensorDataset):  # one fancy-index per array instead of a Python loop
                batch = [a[idx] for a in self.dataset.arrays]
            else:
                batch = [np.stack(column) for column in zip(*(self.dataset[int(i)] for i in idx))]
            yield tuple(Tensor(b) for b in batch)


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
