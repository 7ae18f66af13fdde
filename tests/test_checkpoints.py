"""Checkpoints are transactional and tell damage apart: a load that fails changes nothing, every flipped bit of a
file either leaves what it holds intact or is a CheckpointError naming the file, and save/load agree on the path."""
import os
import zipfile

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import distributed as dist
from tinygrad_norm import nn
from tinygrad_norm.checkpoint import SIGNATURE, find_checkpoint


def small():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model(tg.randn(4, 2))  # running statistics and the step count move off their defaults
    return model


def snapshot(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def unchanged(model, before):
    after = snapshot(model)
    return after.keys() == before.keys() and all(
        np.array_equal(after[k], before[k]) and after[k].dtype == before[k].dtype for k in before)


@pytest.mark.parametrize("last", ["a string", "a shape", "an object"])
def test_a_load_that_fails_at_its_last_key_changes_nothing(last):
    model, source = small(), small()
    with tg.no_grad():
        for p in source.parameters():
            p.data = p.data + 1
    state = {k: v.numpy() for k, v in source.state_dict().items()}
    key = list(state)[-1]  # num_batches_tracked: every other key would have been written before it
    state[key] = {"a string": np.array("three"), "a shape": np.zeros(2), "an object": np.array([None])}[last]
    before = snapshot(model)
    with pytest.raises(nn.StateDictError, match=key):
        model.load_state_dict(state)
    assert unchanged(model, before)


def test_a_value_that_is_not_numbers_names_its_key():
    model = small()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["0.bias"] = np.array(["a", "b", "c"])
    with pytest.raises(nn.StateDictError, match=r"values that are not numbers: 0\.bias: checkpoint holds <U1 values, "
                                                r"not numbers to cast to float32"):
        model.load_state_dict(state)


def test_strict_false_returns_pytorchs_missing_and_unexpected_keys():
    model = small()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    assert result == (["0.bias"], ["extra"]) and isinstance(result, tuple)
    assert repr(small().load_state_dict(small().state_dict())) == "<All keys matched successfully>"
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(2, 3).load_state_dict({"weight": torch.zeros(3, 2), "extra": torch.zeros(1)}, strict=False)
    ours = nn.Linear(2, 3).load_state_dict({"weight": np.zeros((3, 2)), "extra": np.zeros(1)}, strict=False)
    assert (ours.missing_keys, ours.unexpected_keys) == (theirs.missing_keys, theirs.unexpected_keys)


def test_a_flipped_bit_in_any_byte_is_harmless_or_a_checkpoint_error_naming_the_file(tmp_path):
    """One bit of every byte of the file (the bit cycling through the eight): zip headers, the directory, the
    .npy headers, the data and the signature."""
    model = small()
    path = model.save(tmp_path / "ck")
    raw = open(path, "rb").read()
    want = snapshot(model)
    damaged = tmp_path / "damaged.npz"
    outcomes = {"intact": 0, "refused": 0}
    for position in range(len(raw)):
        for bit in (position % 8,):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            damaged.write_bytes(flipped)
            target = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
            before = snapshot(target)
            try:
                target.load(damaged)
            except nn.CheckpointError as e:
                assert str(damaged) in str(e), str(e)
                assert unchanged(target, before)
                outcomes["refused"] += 1
            else:
                assert unchanged(target, want), f"bit {bit} of byte {position} changed what loaded"
                outcomes["intact"] += 1
    assert outcomes["refused"] > 0.5 * len(raw) and outcomes["intact"] > 0  # dates and flags are not data


def test_a_file_whose_arrays_differ_from_what_was_signed_is_damaged(tmp_path):
    path = small().save(tmp_path / "ck")
    with zipfile.ZipFile(path) as z:
        comment = z.comment
    arrays = dict(np.load(path))
    arrays["0.weight"] = arrays["0.weight"] + 1  # every zip checksum is right, the content is not what save wrote
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as z:
        z.comment = comment
    with pytest.raises(nn.CheckpointError, match=r"is damaged: its arrays are not the ones save wrote \(it signed 7 arrays"):
        small().load(path)


def test_a_plain_npz_without_a_signature_still_loads(tmp_path):
    model = small()
    np.savez(tmp_path / "plain.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
    other = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert other.load(tmp_path / "plain") == ([], [])
    assert unchanged(other, snapshot(model))


def test_the_checkpoint_stays_a_plain_npz_for_numpy_and_other_frameworks(tmp_path):
    model = small()
    path = model.save(tmp_path / "ck")
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(model.state_dict())  # the signature is no extra array
    with zipfile.ZipFile(path) as z:
        assert z.comment.startswith(SIGNATURE) and b"arrays=7 sha256=" in z.comment


def test_a_folder_beside_the_npz_does_not_make_save_and_load_disagree(tmp_path):
    (tmp_path / "both").mkdir()
    model = small()
    assert model.save(tmp_path / "both") == str(tmp_path / "both.npz")
    assert find_checkpoint(tmp_path / "both") == str(tmp_path / "both.npz")
    other = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    other.load(tmp_path / "both")
    assert unchanged(other, snapshot(model))
    (tmp_path / "lonely").mkdir()
    with pytest.raises(nn.CheckpointError, match=r"lonely' is a folder, not a checkpoint"):
        other.load(tmp_path / "lonely")
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(nn.CheckpointError, match="it is a folder"):
        model.save(tmp_path / "folder.npz")


def test_a_save_that_fails_leaves_the_earlier_file_whole(tmp_path, monkeypatch):
    model = small()
    path = model.save(tmp_path / "ck")
    before = open(path, "rb").read()

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np.lib.format, "write_array", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["ck.npz"]


def test_data_parallel_loads_its_own_checkpoint_and_its_own_state_dict(tmp_path):
    wrapped = dist.DataParallel(small())
    path = tmp_path / "dp.npz"
    wrapped.save(path)  # the bare model's keys
    fresh = dist.DataParallel(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    assert fresh.load(path) == ([], [])
    assert unchanged(fresh, snapshot(wrapped))
    again = dist.DataParallel(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    again.load_state_dict(wrapped.state_dict())  # keys with the module. prefix
    assert unchanged(again, snapshot(wrapped))
    bare = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    bare.load(path)
    assert unchanged(bare, snapshot(wrapped.module))
