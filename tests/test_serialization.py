"""tg.save and tg.load: a whole training state (nested dicts, lists, tuples, numbers, Tensors) round-trips
exactly, without pickle, to exactly the path given; what cannot be stored, and damage, are clear errors."""
import math
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn
from tinygrad_norm.checkpoint import CheckpointError


def test_a_training_state_round_trips_exactly(tmp_path):
    w = nn.Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
    obj = {"model": OrderedDict(w=w.detach(), n=tg.Tensor(np.array(3, np.int64))), "param": w,
           "state": {0: {"step": 7, "exp_avg": tg.Tensor(np.array([1e-30, -0.0, np.nan]))}},
           "groups": [{"lr": 0.1 + 0.2, "betas": (0.9, 0.999), "nesterov": False, "foreach": None,
                       "params": [0, 1], "inf": math.inf}], "name": "run 1", "array": np.eye(2),
           "scalar": np.float32(2.5), "empty": [], "nested": ((), {}), "big": 2 ** 70}
    path = tmp_path / "state.pt"
    tg.save(obj, path)
    assert path.exists() and not (tmp_path / "state.pt.npz").exists()  # exactly the path, as torch.save
    back = tg.load(path)
    assert isinstance(back["model"], OrderedDict) and list(back["model"]) == ["w", "n"]
    np.testing.assert_array_equal(back["model"]["w"].numpy(), w.numpy())
    assert back["model"]["n"].dtype == np.int64 and back["model"]["n"].shape == ()
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    assert list(back["state"]) == [0] and back["state"][0]["step"] == 7
    a = back["state"][0]["exp_avg"].numpy()
    assert a[0] == 1e-30 and math.copysign(1, a[1]) == -1 and math.isnan(a[2])
    assert back["groups"] == [{"lr": 0.1 + 0.2, "betas": (0.9, 0.999), "nesterov": False, "foreach": None,
                               "params": [0, 1], "inf": math.inf}]
    assert type(back["groups"][0]["betas"]) is tuple
    assert back["name"] == "run 1" and back["empty"] == [] and back["nested"] == ((), {}) and back["big"] == 2 ** 70
    np.testing.assert_array_equal(back["array"], np.eye(2))
    assert back["scalar"] == np.float32(2.5) and back["scalar"].dtype == np.float32


def test_the_file_is_a_signed_npz_without_pickles(tmp_path):
    tg.save({"w": tg.ones(3)}, tmp_path / "f")
    with zipfile.ZipFile(tmp_path / "f") as z:
        assert sorted(z.namelist()) == ["__tree__.json.npy", "a0.npy"]
    arrays = np.load(tmp_path / "f", allow_pickle=False)
    np.testing.assert_array_equal(arrays["a0"], np.ones(3))


def test_a_model_checkpoint_loads_as_a_state_dict(tmp_path):
    model = nn.Linear(3, 2)
    path = model.save(tmp_path / "model")
    other = nn.Linear(3, 2)
    other.load_state_dict(tg.load(path))
    np.testing.assert_array_equal(other.weight.numpy(), model.weight.numpy())


def test_what_cannot_be_stored_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['schedule'\]\['lr_lambdas'\]\[0\] is a builtins.function"):
        tg.save({"schedule": {"lr_lambdas": [lambda e: e]}}, tmp_path / "f")
    assert not (tmp_path / "f").exists()
    with pytest.raises(TypeError, match="set"):
        tg.save({1, 2}, tmp_path / "f")


def test_damage_and_wrong_files_are_checkpoint_errors(tmp_path):
    path = tmp_path / "f"
    tg.save({"lr": 0.1, "w": tg.ones(4)}, path)
    data = bytearray(path.read_bytes())
    at = data.index(b"0.1")
    data[at:at + 3] = b"0.2"  # the structure edited: the signature no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        tg.load(path)
    (tmp_path / "text").write_text("hello")
    with pytest.raises(CheckpointError, match="not a .npz"):
        tg.load(tmp_path / "text")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        tg.load(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="folder"):
        tg.load(tmp_path)
    with pytest.raises(ValueError, match=r"weights_only=False\) would unpickle"):
        tg.load(path, weights_only=False)


def test_map_location_moves_every_tensor(tmp_path, device):
    tg.save({"w": tg.ones(2, device=device)}, tmp_path / "f")
    assert tg.load(tmp_path / "f")["w"].device == device
    assert tg.load(tmp_path / "f", map_location="cpu")["w"].device == "cpu"


def test_map_location_names_a_device_as_tensors_do(tmp_path):
    from tinygrad_norm.backend import DeviceError
    tg.save({"w": tg.ones(2)}, tmp_path / "f")
    with pytest.raises(DeviceError, match="only one GPU"):
        tg.load(tmp_path / "f", map_location="cuda:1")
