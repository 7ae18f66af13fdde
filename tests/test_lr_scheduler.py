"""Learning-rate schedules: each against its formula written out here, against PyTorch's sequence exactly
(float for float) where it is installed, and their state dicts: PyTorch's keys, and a schedule saved half-way
and loaded into a fresh one carries on as if never interrupted."""
import math
import warnings

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn, optim

S = optim.lr_scheduler
SCHEDULES = {  # name: (make(lr_scheduler module, optimizer), formula(epoch, base_lr) or None)
    "StepLR": (lambda L, o: L.StepLR(o, step_size=3, gamma=0.5), lambda e, lr: lr * 0.5 ** (e // 3)),
    "MultiStepLR": (lambda L, o: L.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.1),
                    lambda e, lr: lr * 0.1 ** ((e >= 2) + 2 * (e >= 5))),
    "ExponentialLR": (lambda L, o: L.ExponentialLR(o, gamma=0.9), lambda e, lr: lr * 0.9 ** e),
    "CosineAnnealingLR": (lambda L, o: L.CosineAnnealingLR(o, T_max=8, eta_min=0.01),
                          lambda e, lr: 0.01 + (lr - 0.01) * (1 + math.cos(math.pi * e / 8)) / 2),
    "LambdaLR": (lambda L, o: L.LambdaLR(o, lambda e: 1 / (1 + e)), lambda e, lr: lr / (1 + e)),
    "LinearLR": (lambda L, o: L.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
                 lambda e, lr: lr * (0.25 + 0.75 * min(e, 4) / 4)),
    "ConstantLR": (lambda L, o: L.ConstantLR(o, factor=0.5, total_iters=3), lambda e, lr: lr * (0.5 if e < 3 else 1)),
    "OneCycleLR": (lambda L, o: L.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=12), None),
    "OneCycleLR-linear-3phase": (lambda L, o: L.OneCycleLR(o, max_lr=1.0, total_steps=12, anneal_strategy="linear",
                                                           three_phase=True), None),
    "SequentialLR": (lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=3),
                                                     L.CosineAnnealingLR(o, T_max=6)], milestones=[3]),
                     lambda e, lr: lr * (0.1 + 0.9 * e / 3) if e < 3 else lr * (1 + math.cos(math.pi * (e - 3) / 6)) / 2),
}


def optimizer(lib):
    param = (lambda: nn.Parameter(np.zeros(1))) if lib is tg else (lambda: lib.nn.Parameter(lib.zeros(1)))
    return lib.optim.SGD([{"params": [param()]}, {"params": [param()], "lr": 0.2}], lr=0.1, momentum=0.9)


def sequence(lib, name, steps=12):
    opt = optimizer(lib)
    schedule = SCHEDULES[name][0](lib.optim.lr_scheduler, opt)
    lrs = [list(schedule.get_last_lr())]
    for _ in range(steps):
        opt.step()
        schedule.step()
        lrs.append(list(schedule.get_last_lr()) + [g["momentum"] for g in opt.param_groups])
    return lrs, schedule, opt


@pytest.mark.parametrize("name", [n for n, (_, f) in SCHEDULES.items() if f is not None])
def test_each_schedule_follows_its_formula(name):
    lrs, _, opt = sequence(tg, name)
    formula = SCHEDULES[name][1]
    for epoch, got in enumerate(lrs):
        assert got[:2] == pytest.approx([formula(epoch, 0.1), formula(epoch, 0.2)], rel=1e-12, abs=1e-15), epoch
    assert [g["lr"] for g in opt.param_groups] == lrs[-1][:2]


def test_one_cycle_follows_smiths_two_phases_and_moves_momentum_the_other_way():
    """Phase 1 (to step 0.3·12 - 1 = 2.6) anneals by a cosine from max_lr/25 to max_lr, phase 2 to
    max_lr/25/1e4 at step 11; momentum goes from 0.95 to 0.85 and back in the same phases."""
    lrs, schedule, _ = sequence(tg, "OneCycleLR", steps=11)
    cos = lambda start, end, pct: end + (start - end) * (1 + math.cos(math.pi * pct)) / 2
    for step, got in enumerate(lrs):
        pct, phase = (step / 2.6, 0) if step <= 2.6 else ((step - 2.6) / (11 - 2.6), 1)
        for top, lr in zip((1.0, 2.0), got[:2]):
            ends = [(top / 25, top), (top, top / 25 / 1e4)][phase]
            assert lr == pytest.approx(cos(*ends, pct), rel=1e-12)
        if step:
            assert got[2] == pytest.approx(cos(*[(0.95, 0.85), (0.85, 0.95)][phase], pct), rel=1e-12)
    schedule.step()
    with pytest.raises(ValueError, match="Tried to step 13 times"):
        schedule.step()


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_sequence_and_state_dict_are_pytorchs_exactly(name):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    ours, schedule, _ = sequence(tg, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's notes on step order
        theirs, their_schedule, _ = sequence(torch, name)
    assert ours == theirs  # every float equal
    mine, their = schedule.state_dict(), their_schedule.state_dict()
    if name == "LambdaLR":
        assert mine["lr_lambdas"] == their["lr_lambdas"] == [None, None]
    assert mine == their


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_schedule_saved_half_way_carries_on_in_a_fresh_one(name, tmp_path):
    straight, _, _ = sequence(tg, name)
    opt = optimizer(tg)
    schedule = SCHEDULES[name][0](S, opt)
    for _ in range(5):
        opt.step()
        schedule.step()
    tg.save({"optimizer": opt.state_dict(), "scheduler": schedule.state_dict()}, tmp_path / "state")
    opt = optimizer(tg)
    schedule = SCHEDULES[name][0](S, opt)
    state = tg.load(tmp_path / "state")
    opt.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["scheduler"])
    resumed = []
    for _ in range(7):
        opt.step()
        schedule.step()
        resumed.append(list(schedule.get_last_lr()) + [g["momentum"] for g in opt.param_groups])
    assert resumed == straight[6:]


def test_a_callable_object_schedule_keeps_its_attributes():
    class Halving:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, epoch):
            return self.rate ** epoch

    opt, fn = optimizer(tg), Halving()
    schedule = S.LambdaLR(opt, fn)
    fn.rate = 0.25
    state = schedule.state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.25}, {"rate": 0.25}]
    other = Halving()
    S.LambdaLR(optimizer(tg), other).load_state_dict(state)
    assert other.rate == 0.25


def test_schedule_errors_are_clear():
    opt = optimizer(tg)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR("sgd", step_size=2)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        S.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="2 lr_lambdas, but got 3"):
        S.LambdaLR(opt, [abs, abs, abs])
    with pytest.raises(ValueError, match="number of milestones"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="same optimizer"):
        S.SequentialLR(opt, [S.StepLR(optimizer(tg), 2)], milestones=[])
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        S.OneCycleLR(opt, max_lr=[1.0], total_steps=5)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(optimizer(tg), 2, last_epoch=3)
    with pytest.raises(ValueError, match="missing keys: step_size"):
        S.StepLR(opt, 2).load_state_dict(S.ExponentialLR(opt, 0.9).state_dict())


def test_a_lambda_objects_shared_attributes_stay_shared():
    shared = {"rate": 0.5}

    class Scaled:
        def __init__(self):
            self.config = shared

        def __call__(self, epoch):
            return self.config["rate"] ** epoch

    fn = Scaled()
    schedule = S.LambdaLR(optimizer(tg), fn)
    schedule.load_state_dict(schedule.state_dict())
    assert fn.config is shared  # PyTorch copies the attributes shallowly too
