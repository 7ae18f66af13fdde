"""Optimizers against their update rules written out by hand, and against PyTorch's trajectories where it is
installed; parameter groups, validation, state dicts that resume a run exactly, and gradient clipping."""
import math

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import backend, nn, optim


def quadratic_steps(opt_factory, steps=3, device="cpu"):
    """Minimise Σ (w - 1)² on `device`, returning the parameter (on the host) and the gradients it saw."""
    w = nn.Parameter(np.array([0.5, -2.0]))
    w.data = backend.to_device(w.data, device)
    opt = opt_factory([w])
    history = []
    for _ in range(steps):
        opt.zero_grad()
        ((w - 1) ** 2).sum().backward()
        history.append((w.numpy().copy(), w.grad.numpy().copy()))
        opt.step()
    assert w.device == device
    return w.numpy(), history


def test_sgd_plain_and_weight_decay(device):
    w, hist = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01), device=device)
    ref = np.array([0.5, -2.0])
    for _ in range(3):
        ref = ref - 0.1 * (2 * (ref - 1) + 0.01 * ref)
    np.testing.assert_allclose(w, ref)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(nesterov, device):
    w, _ = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=nesterov), steps=4, device=device)
    ref, buf = np.array([0.5, -2.0]), None
    for _ in range(4):
        g = 2 * (ref - 1)
        buf = g if buf is None else 0.9 * buf + g
        ref = ref - 0.1 * (g + 0.9 * buf if nesterov else buf)
    np.testing.assert_allclose(w, ref)


@pytest.mark.parametrize("cls,wd", [(optim.Adam, 0.0), (optim.Adam, 0.1), (optim.AdamW, 0.1)])
def test_adam_and_adamw(cls, wd, device):
    w, _ = quadratic_steps(lambda p: cls(p, lr=0.05, weight_decay=wd), steps=5, device=device)
    ref, m, v = np.array([0.5, -2.0]), 0, 0
    for t in range(1, 6):
        g = 2 * (ref - 1)
        if cls is optim.AdamW:
            ref = ref * (1 - 0.05 * wd)
        else:
            g = g + wd * ref
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        ref = ref - 0.05 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(w, ref)


def test_sgd_dampening_and_maximize(device):
    w, _ = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.5, dampening=0.3, maximize=True), steps=4,
                           device=device)
    ref, buf = np.array([0.5, -2.0]), None
    for _ in range(4):
        g = -2 * (ref - 1)  # maximize: the gradient of -loss
        buf = g if buf is None else 0.5 * buf + 0.7 * g
        ref = ref - 0.1 * buf
    np.testing.assert_allclose(w, ref)


def test_adam_amsgrad_keeps_the_largest_second_moment(device):
    w, _ = quadratic_steps(lambda p: optim.Adam(p, lr=0.3, betas=(0.5, 0.9), amsgrad=True), steps=6, device=device)
    ref, m, v, vmax = np.array([0.5, -2.0]), 0, 0, 0
    for t in range(1, 7):
        g = 2 * (ref - 1)
        m, v = 0.5 * m + 0.5 * g, 0.9 * v + 0.1 * g * g
        vmax = np.maximum(vmax, v)
        ref = ref - 0.3 * (m / (1 - 0.5 ** t)) / (np.sqrt(vmax / (1 - 0.9 ** t)) + 1e-8)
    np.testing.assert_allclose(w, ref)


# ---- trajectories, param groups and resuming --------------------------------------------------------------
CONFIGS = {
    "sgd-momentum-wd": ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    "sgd-nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd-dampening": ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.25)),
    "adam": ("Adam", dict(lr=0.02, weight_decay=0.1)),
    "adam-amsgrad": ("Adam", dict(lr=0.02, amsgrad=True)),
    "adamw": ("AdamW", dict(lr=0.02, weight_decay=0.1)),
}
X = np.random.default_rng(0).standard_normal((5, 4))
Y = np.random.default_rng(1).standard_normal((5, 3))
W0 = np.random.default_rng(2).standard_normal((3, 4))


def make(lib, name):
    """Two float64 parameters in two groups (the second at twice the learning rate), for framework `lib`."""
    cls, kwargs = CONFIGS[name]
    param = lib.nn.Parameter if lib is tg else (lambda a: lib.nn.Parameter(lib.tensor(a)))
    w, b = param(W0.copy()), param(np.linspace(-1, 1, 3))
    opt = getattr(lib.optim, cls)([{"params": [w]}, {"params": [b], "lr": 2 * kwargs["lr"]}], **kwargs)
    return (w, b), opt


def run(lib, params, opt, steps, start=0):
    """`steps` steps on Σ tanh(X Wᵀ + b - Y)²; after step 2 the first group's lr is halved, as a script may."""
    w, b = params
    x, y = (a if lib is tg else lib.tensor(a) for a in (X, Y))
    for step in range(start, start + steps):
        opt.zero_grad()
        loss = ((lib.tanh(x @ w.T + b - y) if lib is not tg else (x @ w.T + b - y).tanh()) ** 2).sum()
        loss.backward()
        opt.step()
        if step == 1:
            opt.param_groups[0]["lr"] *= 0.5
    return [p.detach().numpy().copy() for p in params]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_three_steps_saved_and_resumed_equal_six(name, tmp_path, device):
    params, opt = make(tg, name)
    for p in params:
        p.data = backend.to_device(p.data, device)
    straight = run(tg, params, opt, 6)
    params, opt = make(tg, name)
    for p in params:
        p.data = backend.to_device(p.data, device)
    run(tg, params, opt, 3)
    tg.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, tmp_path / "ckpt")
    fresh, opt = make(tg, name)
    state = tg.load(tmp_path / "ckpt")
    for p, saved in zip(fresh, state["params"]):
        p.data = backend.to_device(saved.numpy(), device)
    opt.load_state_dict(state["optimizer"])
    assert opt.state_dict()["param_groups"][0]["lr"] == CONFIGS[name][1]["lr"] * 0.5
    resumed = run(tg, fresh, opt, 3, start=3)
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trajectory_state_dict_and_groups_are_pytorchs(name):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    ours, opt = make(tg, name)
    theirs, topt = make(torch, name)
    for a, b in zip(run(tg, ours, opt, 3), run(torch, theirs, topt, 3)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    mine, their = opt.state_dict(), topt.state_dict()
    assert mine["param_groups"] == their["param_groups"]
    assert {i: sorted(s) for i, s in mine["state"].items()} == {i: sorted(s) for i, s in their["state"].items()}
    # PyTorch's state dict, as arrays, loads here and carries on as PyTorch does
    as_arrays = {"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in their["state"].items()},
                 "param_groups": their["param_groups"]}
    fresh, opt = make(tg, name)
    for p, t in zip(fresh, theirs):
        p.data = t.detach().numpy().copy()
    opt.load_state_dict(as_arrays)
    for a, b in zip(run(tg, fresh, opt, 3, start=3), run(torch, theirs, topt, 3, start=3)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_group_without_weight_decay_is_not_decayed(device):
    """The standard recipe: decay weights, not norms' weights and biases (which here get no gradient)."""
    w, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    w.data, b.data = backend.to_device(w.data, device), backend.to_device(b.data, device)
    opt = optim.AdamW([{"params": [w], "weight_decay": 0.5}, {"params": [b], "weight_decay": 0.0}], lr=0.1)
    (w * 0 + b * 0).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.numpy(), [0.95, 0.95])  # 1 - lr·wd, and a zero Adam step
    np.testing.assert_allclose(b.numpy(), [1.0, 1.0])


def test_frozen_parameters_stay_in_the_optimizer_and_train_once_unfrozen():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    b.requires_grad = False
    opt = optim.SGD([a, b], lr=1.0)
    assert [len(g["params"]) for g in opt.param_groups] == [2]
    (a * 3 + b).sum().backward()
    opt.step()
    np.testing.assert_allclose(a.numpy(), [-2, -2])
    np.testing.assert_allclose(b.numpy(), [1, 1])  # no gradient: left as it is
    b.requires_grad = True
    opt.zero_grad()
    (b * 2).sum().backward()
    opt.step()
    np.testing.assert_allclose(b.numpy(), [-1, -1])


def test_zero_grad_sets_none_or_zeros():
    w = nn.Parameter(np.ones(2))
    opt = optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), [0, 0])
    opt.zero_grad()
    assert w.grad is None


def test_add_param_group_and_named_parameters():
    w, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(1))
    opt = optim.SGD([("w", w)], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [("b", b)], "lr": 0.01})
    groups = opt.state_dict()["param_groups"]
    assert [g["params"] for g in groups] == [[0], [1]] and [g["param_names"] for g in groups] == [["w"], ["b"]]
    assert groups[1]["lr"] == 0.01 and groups[1]["momentum"] == 0.9


W = nn.Parameter(np.ones(2))
BAD = [  # (how, exception, our message); PyTorch raises the same exception type for each, where installed
    ("SGD(w)", lambda o, w: o.SGD(w), TypeError, "iterable of Tensors or dicts"),
    ("SGD([array])", lambda o, w: o.SGD([np.ones(2)]), TypeError, "only optimize Tensors.*numpy.ndarray"),
    ("SGD([w * 2])", lambda o, w: o.SGD([w * 2]), ValueError, "can't optimize a non-leaf Tensor"),
    ("SGD([])", lambda o, w: o.SGD([]), ValueError, "empty parameter list"),
    ("SGD(lr=-1)", lambda o, w: o.SGD([w], lr=-1.0), ValueError, "Invalid learning rate: -1"),
    ("SGD(lr='a')", lambda o, w: o.SGD([w], lr="a"), TypeError, "lr must be a real number; got str"),
    ("SGD(momentum=-0.1)", lambda o, w: o.SGD([w], momentum=-0.1), ValueError, "Invalid momentum value: -0.1"),
    ("SGD(weight_decay=-1)", lambda o, w: o.SGD([w], weight_decay=-1.0), ValueError, "Invalid weight_decay value"),
    ("SGD(nesterov)", lambda o, w: o.SGD([w], nesterov=True), ValueError, "Nesterov momentum requires a momentum"),
    ("Adam(betas=(0.9, 1))", lambda o, w: o.Adam([w], betas=(0.9, 1.0)), ValueError, "beta parameter at index 1: 1"),
    ("Adam(betas=(-0.1, .9))", lambda o, w: o.Adam([w], betas=(-0.1, 0.9)), ValueError, "beta parameter at index 0"),
    ("Adam(eps=-1)", lambda o, w: o.Adam([w], eps=-1.0), ValueError, "Invalid epsilon value"),
    ("AdamW(lr=-1)", lambda o, w: o.AdamW([w], lr=-1.0), ValueError, "Invalid learning rate"),
    ("two groups share w", lambda o, w: o.SGD([{"params": [w]}, {"params": [w]}]), ValueError, "more than one"),
    ("add_param_group([w])", lambda o, w: o.SGD([w]).add_param_group([w]), TypeError, "must be a dict"),
    ("differentiable", lambda o, w: o.SGD([w], differentiable=True), NotImplementedError, "not supported"),
]


@pytest.mark.parametrize("how,make_bad,error,message", BAD, ids=[b[0] for b in BAD])
def test_bad_parameters_and_hyperparameters_are_refused(how, make_bad, error, message):
    with pytest.raises(error, match=message):
        make_bad(optim, W)
    if how == "differentiable":
        return  # PyTorch supports it; we say we do not
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    with pytest.raises(error):
        make_bad(torch.optim, torch.nn.Parameter(torch.ones(2)))


def test_a_parameter_listed_twice_is_refused_not_moved_twice():
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([W, W])


def test_load_state_dict_refuses_what_does_not_fit_and_changes_nothing():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    (a.sum() + b.sum()).backward()
    opt.step()
    good = opt.state_dict()
    before = {k: v["exp_avg"].numpy().copy() for k, v in good["state"].items()}
    sgd = optim.SGD([a, b], lr=0.1, momentum=0.9)
    sgd.step()
    cases = [
        ({"state": {}, "param_groups": []}, "different number of parameter groups"),
        ({"state": {}, "param_groups": [dict(good["param_groups"][0], params=[0])]}, "doesn't match the size"),
        ({"state": {0: dict(good["state"][0], exp_avg=tg.zeros(5))}, "param_groups": good["param_groups"]},
         r"exp_avg has shape \(5,\) but the parameter has \(2,\)"),
        (sgd.state_dict(), r"keeps \['step', 'exp_avg'.*\['momentum_buffer'\]"),
        ({"state": {7: good["state"][0]}, "param_groups": good["param_groups"]}, "parameter 7, which no parameter group"),
        ({"state": {}, "param_groups": [dict(good["param_groups"][0], lr=-1.0)]}, "Invalid learning rate"),
        ([1, 2], "keys 'state' and 'param_groups'"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["param_groups"] == good["param_groups"]
    assert {k: v["exp_avg"].numpy().tolist() for k, v in after["state"].items()} == \
        {k: v.tolist() for k, v in before.items()}


# ---- gradient clipping -----------------------------------------------------------------------------------
def grads(*values, device="cpu"):
    params = []
    for v in values:
        p = nn.Parameter(np.zeros(len(v)))
        p.grad = tg.Tensor(np.array(v, dtype=np.float64), device=device)
        params.append(p)
    return params


def test_clip_grad_norm_scales_by_the_total_norm(device):
    params = grads([3.0, 0.0], [0.0, 4.0], device=device)  # total 2-norm 5
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert total.item() == pytest.approx(5.0)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(np.concatenate([p.grad.numpy() for p in params]), [3 * scale, 0, 0, 4 * scale])
    params = grads([3.0, -7.0], [1.0], device=device)
    assert nn.utils.clip_grad_norm_(params, 10.0, norm_type="inf").item() == 7.0
    np.testing.assert_allclose(params[0].grad.numpy(), [3.0, -7.0])  # under the limit: unchanged
    params = grads([1.0, 2.0], device=device)
    assert nn.utils.clip_grad_norm_(params, 10.0, norm_type=1).item() == pytest.approx(3.0)
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.ones(2))], 1.0).item() == 0.0  # no gradients at all
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(grads([np.inf, 1.0], device=device), 1.0, error_if_nonfinite=True)


def test_clip_grad_value_clamps_each_element(device):
    params = grads([3.0, -0.5, -2.0], device=device)
    nn.utils.clip_grad_value_(params[0], 1.0)
    np.testing.assert_array_equal(params[0].grad.numpy(), [1.0, -0.5, -1.0])


def test_clip_grad_norm_is_pytorchs():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    values = [np.random.default_rng(i).standard_normal(n).astype(np.float32) for i, n in enumerate((5, 7, 1))]
    for norm_type in (2.0, 1.0, 3.0, float("inf")):
        ours = grads(*values)
        for p in ours:
            p.grad = p.grad.astype("float32")
        theirs = [torch.nn.Parameter(torch.zeros(len(v))) for v in values]
        for p, v in zip(theirs, values):
            p.grad = torch.tensor(v)
        a = nn.utils.clip_grad_norm_(ours, 0.5, norm_type=norm_type)
        b = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type=norm_type)
        assert a.item() == pytest.approx(b.item(), rel=1e-6)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6)


def test_a_state_missing_what_the_rule_needs_is_refused():
    opt = optim.Adam([nn.Parameter(np.ones(2))])
    with pytest.raises(ValueError, match=r"all of \['step', 'exp_avg', 'exp_avg_sq'\] once it has any.*\['step'\]"):
        opt.load_state_dict({"state": {0: {"step": 3}}, "param_groups": opt.state_dict()["param_groups"]})


def test_clip_grad_norm_minus_inf_is_the_smallest_magnitude():
    params = grads([3.0, -0.5], [2.0])
    assert nn.utils.clip_grad_norm_(params, 10.0, norm_type=-math.inf).item() == 0.5
