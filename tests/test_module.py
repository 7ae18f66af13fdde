"""Module registration, traversal order, modes, state_dict, and checkpoints (npz, no pickle)."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Dropout(0.5))
        self.head = nn.Linear(8, 3)
        self.register_buffer("steps", tg.Tensor(np.zeros((), np.int64)))
        self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3, bias=False)])

    def forward(self, x):
        return self.head(self.features(x).flatten(1)[:, :8])


def test_names_follow_pytorch():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "features.0.weight", "features.0.bias", "head.weight", "head.bias", "blocks.0.weight", "blocks.0.bias",
        "blocks.1.weight"]
    assert [n for n, _ in net.named_buffers()] == ["steps"]
    # PyTorch's order: a module's own parameters and buffers, then its children's
    assert list(net.state_dict()) == ["steps"] + [n for n, _ in net.named_parameters()]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Sequential", "Conv2d", "ReLU", "Dropout", "Linear",
                                                         "ModuleList", "Linear", "Linear"]
    assert net.blocks[1].bias is None and len(net.features) == 3


def test_train_eval_is_per_module_and_recursive():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.features.train()
    assert net.features[2].training and not net.head.training


def test_repr_shows_the_tree():
    r = repr(Net())
    assert "(features): Sequential(" in r and "(0): Conv2d(1, 2, kernel_size=(3, 3)" in r and "(head): Linear(" in r


def test_zero_grad_and_reassignment():
    net = Net()
    net(tg.randn(2, 1, 5, 5)).sum().backward()
    assert net.head.weight.grad is not None
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.head = nn.Identity()
    assert "head.weight" not in dict(net.named_parameters())


def test_module_without_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))
    with pytest.raises(AttributeError, match="must call super"):
        Bad()


def test_state_dict_round_trip_is_exact(tmp_path, device):
    tg.manual_seed(0)
    a = Net().to(device)
    a.steps = tg.Tensor(np.array(7, np.int64), device=device)
    path = tmp_path / "net.npz"
    a.save(path)
    tg.manual_seed(1)
    b = Net().to(device)
    assert not np.array_equal(a.head.weight.numpy(), b.head.weight.numpy())
    b.load(path)
    for (ka, ta), (kb, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and ta.dtype == tb.dtype and tb.device == device
        np.testing.assert_array_equal(ta.numpy(), tb.numpy())
    x = tg.randn(2, 1, 5, 5, device=device)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert b.steps.item() == 7


def test_checkpoint_is_plain_npz_without_pickle(tmp_path):
    path = tmp_path / "net.npz"
    Net().save(path)
    with np.load(path, allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)


def test_load_errors_name_every_bad_key(tmp_path):
    net = Net()
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    del state["head.bias"]
    state["extra.weight"] = np.zeros(3)
    state["head.weight"] = np.zeros((4, 8))
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(state)
    msg = str(info.value)
    assert "missing keys: head.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "head.weight: checkpoint (4, 8) vs model (3, 8)" in msg
    state["head.weight"] = np.zeros((3, 8))
    net.load_state_dict(state, strict=False)  # non-strict ignores missing/unexpected keys
    assert net.head.weight.numpy().sum() == 0


def test_to_cpu_keeps_parameters():
    net = Net()
    w = net.head.weight
    assert net.to("cpu") is net and net.head.weight is w and w.device == "cpu"


def test_half_and_float_cast_floating_parameters_and_buffers(device):
    net = Net().to(device)
    net.register_buffer("scale", tg.Tensor(np.ones(2, np.float32), device=device))
    w = net.head.weight.numpy()
    assert net.half() is net
    assert {t.dtype for t in net.parameters()} | {net.scale.dtype} == {np.dtype(np.float16)}
    assert net.steps.dtype == np.int64 and net.head.weight.device == device  # integers and the device are kept
    np.testing.assert_array_equal(net.head.weight.numpy(), w.astype(np.float16))
    assert net(tg.randn(2, 1, 5, 5, dtype=np.float16, device=device)).dtype == np.float16
    net.float()
    assert {t.dtype for t in net.parameters()} | {net.scale.dtype} == {np.dtype(np.float32)}


def test_save_and_load_take_the_same_path_with_or_without_npz(tmp_path):
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    written = a.save(tmp_path / "ckpt")  # NumPy adds .npz; load must find it from the same path
    assert written == str(tmp_path / "ckpt.npz")
    b.load(tmp_path / "ckpt")
    np.testing.assert_array_equal(b.weight.numpy(), a.weight.numpy())
    b.load(written)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*nowhere.*nor with \.npz added"):
        b.load(tmp_path / "nowhere")


def test_a_file_that_is_not_a_checkpoint_says_so_and_never_suggests_pickle(tmp_path):
    import pickle
    files = {"p.pkl": lambda p: p.write_bytes(pickle.dumps({"weight": 1})),
             "a.npy": lambda p: np.save(p, np.ones(3)),
             "t.txt": lambda p: p.write_text("hello"),
             "objects.npz": lambda p: np.savez(p, weight=np.array([{"x": 1}], dtype=object))}
    for name, write in files.items():
        write(tmp_path / name)
        with pytest.raises(nn.CheckpointError, match=r"is not a checkpoint written by tinygrad_norm \(Module.save or save") as e:
            nn.Linear(3, 2).load(tmp_path / name)
        assert "allow_pickle" not in str(e.value)
    with pytest.raises(nn.CheckpointError, match="holds Python objects"):
        nn.Linear(3, 2).load(tmp_path / "objects.npz")


LAYERS = [(nn.Linear(4, 3), (2, 4)), (nn.Conv2d(2, 3, 3), (2, 2, 5, 5)), (nn.Conv1d(2, 3, 3), (2, 2, 5)),
          (nn.MaxPool2d(2), (2, 2, 4, 4)), (nn.Flatten(), (2, 3, 2)), (nn.ReLU(), (2, 3)), (nn.Tanh(), (2, 3)),
          (nn.BatchNorm2d(2), (4, 2, 3, 3)), (nn.GroupNorm(2, 4), (2, 4, 3)), (nn.LayerNorm(3), (2, 3)),
          (nn.LocalResponseNorm(3), (2, 4, 3)), (nn.RNN(3, 4, batch_first=True), (2, 5, 3)),
          (nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4))]


@pytest.mark.parametrize("layer, shape", LAYERS, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_a_numpy_array_is_taken_where_a_tensor_is_expected(layer, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = layer(x)
    out = out[0] if isinstance(out, tuple) else out
    expected = layer(tg.Tensor(x))
    expected = expected[0] if isinstance(expected, tuple) else expected
    assert isinstance(out, tg.Tensor)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


@pytest.mark.parametrize("layer, shape", LAYERS, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_a_list_is_a_type_error_naming_the_layer(layer, shape):
    data = np.zeros(shape).tolist()
    first = layer[0] if isinstance(layer, nn.Sequential) else layer  # the layer that needed the Tensor
    with pytest.raises(TypeError, match=rf"{type(first).__name__} takes a Tensor \(or a NumPy or CuPy array\) as "
                                        rf"input; got list"):
        layer(data)


def test_ops_refuse_what_is_not_a_tensor():
    from tinygrad_norm import ops
    with pytest.raises(TypeError, match=r"Add takes Tensors; got Tensor, list"):
        ops.Add.apply(tg.ones(2), [1, 2])
