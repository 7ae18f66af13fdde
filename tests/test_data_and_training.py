"""Datasets and loaders, and models trained on the real digits data to a measured accuracy."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn, optim
from tinygrad_norm.data import DataLoader, Dataset, TensorDataset, load_digits
from tinygrad_norm.nn import functional as F


def test_loader_batches_shuffle_and_drop_last():
    ds = TensorDataset(np.arange(10.0), np.arange(10))
    assert [len(x) for x, _ in DataLoader(ds, batch_size=4)] == [4, 4, 2]
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    a = np.concatenate([x.numpy() for x, _ in DataLoader(ds, batch_size=3, shuffle=True, seed=1)])
    b = np.concatenate([x.numpy() for x, _ in DataLoader(ds, batch_size=3, shuffle=True, seed=1)])
    assert sorted(a) == list(range(10)) and list(a) != list(range(10)) and np.array_equal(a, b)
    for x, y in DataLoader(ds, batch_size=5, shuffle=True, seed=0):
        np.testing.assert_array_equal(x.numpy(), y.numpy())  # rows stay paired


def test_generic_dataset_is_collated():
    class Squares(Dataset):
        def __len__(self): return 5
        def __getitem__(self, i): return np.array([i, i * i], np.float32), i
    (x, y), = list(DataLoader(Squares(), batch_size=5))
    assert x.shape == (5, 2) and y.numpy().tolist() == [0, 1, 2, 3, 4]


def test_tensor_dataset_length_mismatch():
    with pytest.raises(ValueError, match=r"one length; got lengths \[3, 2\]"):
        TensorDataset(np.zeros(3), np.zeros(2))


def test_digits_split_is_fixed():
    xtr, ytr, xte, yte = load_digits()
    assert xtr.shape == (1438, 1, 8, 8) and xte.shape == (359, 1, 8, 8) and xtr.dtype == np.float32
    assert 0 <= xtr.min() and xtr.max() <= 1 and set(ytr) == set(range(10))
    np.testing.assert_array_equal(load_digits()[3], yte)


def train(model, x, y, epochs, lr=1e-2, batch_size=32):
    opt = optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=0)
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def accuracy(model, x, y):
    with tg.no_grad():
        return float((model(tg.Tensor(x)).numpy().argmax(1) == y).mean())


def test_mlp_learns_digits():
    xtr, ytr, xte, yte = load_digits()
    tg.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
    acc = accuracy(train(mlp, xtr, ytr, epochs=10), xte, yte)
    assert acc > 0.95, acc  # measured 0.983 with seed 0 (10 epochs, 0.10 s)


def test_cnn_learns_digits():
    xtr, ytr, xte, yte = load_digits()
    tg.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    acc = accuracy(train(cnn, xtr, ytr, epochs=5), xte, yte)
    assert acc > 0.95, acc  # measured 0.978 with seed 0 (5 epochs, 0.29 s)


def test_gru_reads_digits_row_by_row():
    xtr, ytr, xte, yte = load_digits()
    tg.manual_seed(0)

    class RowReader(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(8, 32, batch_first=True)
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.rnn(x.reshape(x.shape[0], 8, 8))[1][0])

    acc = accuracy(train(RowReader(), xtr, ytr, epochs=4), xte, yte)
    assert acc > 0.85, acc  # measured 0.928 with seed 0 (4 epochs, 0.43 s)
