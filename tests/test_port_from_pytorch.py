"""The acceptance test of the PyTorch port: examples/port_from_pytorch.py, written once against PyTorch's API,
trains the same from the same initial weights with PyTorch and with tinygrad_norm behind the same names."""
import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "examples" / "port_from_pytorch.py"
spec = importlib.util.spec_from_file_location("port_from_pytorch", SCRIPT)
port = importlib.util.module_from_spec(spec)
spec.loader.exec_module(port)


def test_the_script_gives_pytorchs_losses_step_for_step(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    init = str(tmp_path / "init.npz")  # PyTorch's initial weights, which the second run loads
    theirs, their_accuracy = port.train("torch", init, str(tmp_path / "torch.ckpt"))
    ours, our_accuracy = port.train("tinygrad_norm", init, str(tmp_path / "ours.ckpt"))
    assert len(ours) == len(theirs) == 20
    worst = max(abs(a - b) / abs(b) for a, b in zip(ours, theirs))
    assert worst < 1e-4, f"per-step losses differ by up to {worst:.2e} relative:\n{ours}\n{theirs}"
    assert our_accuracy == pytest.approx(their_accuracy, abs=2 / 359)  # at most two test images apart


def test_resuming_from_the_checkpoint_changes_nothing(tmp_path):
    """Here without PyTorch: the run resumed at step 10 into fresh model, optimizer and schedule is the
    uninterrupted run, float for float, and it learns."""
    init = str(tmp_path / "init.npz")
    resumed, _ = port.train("tinygrad_norm", init, str(tmp_path / "a.ckpt"), resume_at=10)
    straight, accuracy = port.train("tinygrad_norm", init, str(tmp_path / "b.ckpt"), resume_at=None)
    assert resumed == straight
    assert sum(straight[-5:]) < sum(straight[:5]) and accuracy > 0.5
