"""The normalization literature as plugins (plugins/), each held to its paper's equations written here in
NumPy, float64, independently of the plugin (its own `reference` is not called): the forward in training and
in eval mode, and the gradient of every input and parameter against central differences of those equations.
Where a public implementation installs (PyTorch's spectral_norm; timm's EvoNorm and FRN where timm imports),
the same numbers as it from the same weights. Then what makes them usable like the built-ins: the checker,
names, sync=True over processes, float16, state_dict round trips and pictures."""
import functools
import io

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn, norms, world
from tinygrad_norm.norms import holding
from worlds import IdenticalProcesses

LITERATURE = ["batch_renorm", "switchable", "batch_instance", "evonorm_b0", "evonorm_s0", "filter_response",
              "positional", "pixel", "scale", "mean_only_batch", "l1_batch", "adain", "conditional_batch",
              "iter_norm"]
WEIGHT_PLUGINS = ["weight_standardization", "spectral"]
EPS = 1e-5


# ---- the papers' equations, in NumPy --------------------------------------------------------------------
def per_channel(v, x):
    return np.asarray(v).reshape((1, -1) + (1,) * (x.ndim - 2))


def moments(x, axes):
    return x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)


def batch_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def spatial_axes(x):
    return tuple(range(2, x.ndim))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def batch_renorm(p, x, training, r_max, d_max, held=None):
    """Ioffe 2017, Algorithm 1; `held` = (r, d) fixes the corrections (what the gradient differentiates)."""
    rm, rv = per_channel(p["running_mean"], x), per_channel(p["running_var"], x)
    if not training:
        xhat = (x - rm) / np.sqrt(rv + EPS)
    else:
        mu, var = moments(x, batch_axes(x))
        sigma_b, sigma = np.sqrt(var + EPS), np.sqrt(rv + EPS)
        r, d = held if held is not None else (np.clip(sigma_b / sigma, 1 / r_max, r_max),
                                               np.clip((mu - rm) / sigma, -d_max, d_max))
        xhat = (x - mu) / sigma_b * r + d
    return xhat * per_channel(p["weight"], x) + per_channel(p["bias"], x)


def switchable(p, x, training):
    """Luo et al. 2019, eq. 3: k over (IN, LN, BN); BN's statistics are the running ones in eval mode."""
    stats = [moments(x, spatial_axes(x)), moments(x, tuple(range(1, x.ndim)))]
    stats.append(moments(x, batch_axes(x)) if training else (per_channel(p["running_mean"], x),
                                                            per_channel(p["running_var"], x)))
    wm, wv = softmax(p["mean_weight"]), softmax(p["var_weight"])
    mean = wm[0] * stats[0][0] + wm[1] * stats[1][0] + wm[2] * stats[2][0]
    var = wv[0] * stats[0][1] + wv[1] * stats[1][1] + wv[2] * stats[2][1]
    return (x - mean) / np.sqrt(var + EPS) * per_channel(p["weight"], x) + per_channel(p["bias"], x)


def batch_instance(p, x, training):
    """Nam & Kim 2018, eq. 4, with ρ in [0, 1]."""
    if training:
        mu, var = moments(x, batch_axes(x))
    else:
        mu, var = per_channel(p["running_mean"], x), per_channel(p["running_var"], x)
    mu_i, var_i = moments(x, spatial_axes(x))
    rho = per_channel(np.clip(p["gate"], 0, 1), x)
    mixed = rho * (x - mu) / np.sqrt(var + EPS) + (1 - rho) * (x - mu_i) / np.sqrt(var_i + EPS)
    return mixed * per_channel(p["weight"], x) + per_channel(p["bias"], x)


def evonorm_b0(p, x, training):
    """Liu et al. 2020, Table 1, B0."""
    var_b = moments(x, batch_axes(x))[1] if training else per_channel(p["running_var"], x)
    var_i = moments(x, spatial_axes(x))[1]
    v = per_channel(p["v"], x)
    denominator = np.maximum(np.sqrt(var_b + EPS), v * x + np.sqrt(var_i + EPS))
    return x / denominator * per_channel(p["weight"], x) + per_channel(p["bias"], x)


def evonorm_s0(p, x, training, groups):
    """Liu et al. 2020, Table 1, S0: the group variance over (C/G, H, W), written group by group."""
    out = np.empty_like(x)
    size = x.shape[1] // groups
    v = per_channel(p["v"], x)
    for k in range(groups):
        part = slice(k * size, (k + 1) * size)
        std = np.sqrt(x[:, part].reshape(len(x), -1).var(axis=1) + EPS).reshape((-1,) + (1,) * (x.ndim - 1))
        out[:, part] = x[:, part] / (1 + np.exp(-v[:, part] * x[:, part])) / std
    return out * per_channel(p["weight"], x) + per_channel(p["bias"], x)


def filter_response(p, x, training):
    """Singh & Krishnan 2020, eqs. 1-3 (TLU)."""
    nu2 = np.mean(x * x, axis=spatial_axes(x), keepdims=True)
    return np.maximum(per_channel(p["weight"], x) * x / np.sqrt(nu2 + 1e-6) + per_channel(p["bias"], x),
                      per_channel(p["tau"], x))


def positional(p, x, training):
    """Li et al. 2019, eq. 1 (PONO): over the channels at each position."""
    mu, var = moments(x, (1,))
    return (x - mu) / np.sqrt(var + EPS)


def pixel(p, x, training):
    """Karras et al. 2018, §4.2."""
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + 1e-8)


def scale(p, x, training):
    """Nguyen & Salazar 2019, eq. 9, eps inside the root."""
    return p["g"] * x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True) + EPS)


def mean_only_batch(p, x, training):
    """Salimans & Kingma 2016, §3."""
    mu = x.mean(axis=batch_axes(x), keepdims=True) if training else per_channel(p["running_mean"], x)
    return x - mu + per_channel(p["bias"], x)


def l1_batch(p, x, training):
    """Wu et al. 2018, eqs. 8-9."""
    if training:
        mu = x.mean(axis=batch_axes(x), keepdims=True)
        sigma = np.sqrt(np.pi / 2) * np.abs(x - mu).mean(axis=batch_axes(x), keepdims=True)
    else:
        mu, sigma = per_channel(p["running_mean"], x), per_channel(p["running_sigma"], x)
    return (x - mu) / (sigma + EPS) * per_channel(p["weight"], x) + per_channel(p["bias"], x)


def adain(p, x, style, training):
    """Huang & Belongie 2017, eq. 8."""
    mu_x, var_x = moments(x, spatial_axes(x))
    mu_y, var_y = moments(style, spatial_axes(style))
    return np.sqrt(var_y + EPS) * (x - mu_x) / np.sqrt(var_x + EPS) + mu_y


def conditional_batch(p, x, e, training):
    """de Vries et al. 2017, eqs. 2-3, with linear predictors of Δγ, Δβ."""
    if training:
        mu, var = moments(x, batch_axes(x))
    else:
        mu, var = per_channel(p["running_mean"], x), per_channel(p["running_var"], x)
    gamma = np.einsum("ne,ec->nc", e, p["delta_weight"]) + p["weight"]
    beta = np.einsum("ne,ec->nc", e, p["delta_bias"]) + p["bias"]
    shape = x.shape[:2] + (1,) * (x.ndim - 2)
    return (x - mu) / np.sqrt(var + EPS) * gamma.reshape(shape) + beta.reshape(shape)


def iter_norm(p, x, training, groups, T):
    """Huang et al. 2019, Algorithm 1, one group at a time with explicit matrices."""
    n, c = x.shape[:2]
    size, out = c // groups, np.empty_like(x)
    for k in range(groups):
        xg = x[:, k * size:(k + 1) * size]
        X = np.stack([xg[:, j].reshape(-1) for j in range(size)])  # (size, m)
        if training:
            mu = X.mean(axis=1)[:, None]
            Xc = X - mu
            Sigma = np.einsum("im,jm->ij", Xc, Xc) / X.shape[1] + EPS * np.eye(size)
            P = np.eye(size)
            for _ in range(T):
                P = 1.5 * P - 0.5 * P @ P @ P @ (Sigma / np.trace(Sigma))
            W = P / np.sqrt(np.trace(Sigma))
        else:
            mu, W = p["running_mean"][k * size:(k + 1) * size, None], p["running_wm"][k]
        white = W @ (X - mu)
        for j in range(size):
            out[:, k * size + j] = white[j].reshape(xg[:, j].shape)
    return out * per_channel(p["weight"], x) + per_channel(p["bias"], x)


# name -> (the layer, its input shapes, the paper's equations)
CASES = {
    "batch_renorm": (lambda: nn.Norm("batch_renorm", 4, r_max=1.3, d_max=0.4), [(6, 4, 3, 2)],
                     lambda p, x, training: batch_renorm(p, x, training, 1.3, 0.4)),
    "switchable": (lambda: nn.Norm("switchable", 4), [(3, 4, 3, 2)], switchable),
    "batch_instance": (lambda: nn.Norm("batch_instance", 4), [(3, 4, 3, 2)], batch_instance),
    "evonorm_b0": (lambda: nn.Norm("evonorm_b0", 4), [(3, 4, 3, 2)], evonorm_b0),
    "evonorm_s0": (lambda: nn.Norm("evonorm_s0", 4, groups=2), [(3, 4, 3, 2)],
                   lambda p, x, training: evonorm_s0(p, x, training, 2)),
    "filter_response": (lambda: nn.Norm("filter_response", 4), [(3, 4, 3, 2)], filter_response),
    "positional": (lambda: nn.Norm("positional"), [(3, 4, 3, 2)], positional),
    "pixel": (lambda: nn.Norm("pixel"), [(3, 4, 3, 2)], pixel),
    "scale": (lambda: nn.Norm("scale", 5), [(3, 2, 5)], scale),
    "mean_only_batch": (lambda: nn.Norm("mean_only_batch", 4), [(5, 4, 3)], mean_only_batch),
    "l1_batch": (lambda: nn.Norm("l1_batch", 4), [(5, 4, 3)], l1_batch),
    "adain": (lambda: nn.Norm("adain"), [(3, 4, 3, 2), (3, 4, 2, 2)], adain),
    "conditional_batch": (lambda: nn.Norm("conditional_batch", 4, 3), [(5, 4, 3), (5, 3)], conditional_batch),
    "iter_norm": (lambda: nn.Norm("iter_norm", 4, num_groups=2, T=4), [(6, 4, 3)],
                  lambda p, x, training: iter_norm(p, x, training, 2, 4)),
}


def layer_and_inputs(name, seed=0):
    """The case's layer in float64 with random parameters (BIN's gate inside [0, 1]) and random buffers where
    it keeps any (eval mode reads them), and its random inputs."""
    make, shapes, _ = CASES[name]
    rng = np.random.default_rng(seed)
    layer = make().double()
    for key, p in layer.named_parameters():
        p.data = rng.uniform(0.1, 0.9, p.shape) if key == "gate" else 1 + 0.5 * rng.standard_normal(p.shape)
    for key, b in layer.named_buffers():
        if b is not None and b.dtype.kind == "f":
            b.data = (rng.uniform(0.5, 2.0, b.shape) if key in ("running_var", "running_sigma")
                      else 0.3 * rng.standard_normal(b.shape) + (np.eye(b.shape[-1]) if key == "running_wm" else 0))
    return layer, [rng.standard_normal(s) for s in shapes]


def state(layer):
    return {k: v.numpy().astype(np.float64) for k, v in layer.state_dict().items()}


def numeric_gradients(f, arrays, w, eps=1e-6):
    """d<w, f(*arrays)>/d(each array) by central differences."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for k in np.ndindex(a.shape):
            orig = a[k]
            a[k] = orig + eps
            hi = np.sum(w * f())
            a[k] = orig - eps
            lo = np.sum(w * f())
            a[k] = orig
            g[k] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("name", LITERATURE)
def test_forward_is_the_papers_equations_in_training_and_eval(name):
    layer, xs = layer_and_inputs(name)
    equations = CASES[name][2]
    want = equations(state(layer), *xs, training=True)  # before the step moves the running statistics
    np.testing.assert_allclose(layer(*map(tg.Tensor, xs)).numpy(), want, rtol=1e-10, atol=1e-10)
    layer.eval()
    np.testing.assert_allclose(layer(*map(tg.Tensor, xs)).numpy(), equations(state(layer), *xs, training=False),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", LITERATURE)
def test_gradients_are_those_of_the_papers_equations(name):
    """Autograd's gradient of <w, y> for every input and parameter, against central differences of the NumPy
    equations; batch renormalization's with r and d fixed, as its paper differentiates."""
    layer, xs = layer_and_inputs(name)
    equations, p = CASES[name][2], state(layer)
    inputs = [tg.Tensor(x, requires_grad=True) for x in xs]
    y = layer(*inputs)
    w = np.random.default_rng(5).standard_normal(y.shape)
    (y * tg.Tensor(w)).sum().backward()
    names = [k for k, _ in layer.named_parameters()]
    if name == "batch_renorm":
        mu, var = moments(xs[0], batch_axes(xs[0]))
        sigma = np.sqrt(per_channel(p["running_var"], xs[0]) + EPS)
        held = (np.clip(np.sqrt(var + EPS) / sigma, 1 / 1.3, 1.3),
                np.clip((mu - per_channel(p["running_mean"], xs[0])) / sigma, -0.4, 0.4))
        assert (held[0] == 1.3).any() or (held[0] == 1 / 1.3).any() or (np.abs(held[1]) == 0.4).any(), \
            "the example should clip some correction"
        equations = lambda p, x, training: batch_renorm(p, x, training, 1.3, 0.4, held)
    numeric = numeric_gradients(lambda: equations(p, *xs, training=True), xs + [p[k] for k in names], w)
    for what, got, want in zip([f"input {i}" for i in range(len(xs))] + names,
                               [t.grad.numpy() for t in inputs] + [q.grad.numpy() for _, q in layer.named_parameters()],
                               numeric):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=f"{name}: gradient of {what}")


def test_batch_renorm_with_r_max_1_and_d_max_0_is_batchnorm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 3))
    brn, bn = nn.Norm("batch_renorm", 4, r_max=1.0, d_max=0.0).double(), nn.BatchNorm1d(4).double()
    for layer in (brn, bn):
        layer.running_var.data = np.full(4, 3.0)
    xs = [tg.Tensor(x, requires_grad=True) for _ in range(2)]
    ys = [brn(xs[0]), bn(xs[1])]
    np.testing.assert_allclose(ys[0].numpy(), ys[1].numpy(), rtol=1e-12)
    for y, xt in zip(ys, xs):
        (y ** 2).sum().backward()
    np.testing.assert_allclose(xs[0].grad.numpy(), xs[1].grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(brn.running_mean.numpy(), bn.running_mean.numpy(), rtol=1e-12)


def test_iter_norm_whitens_each_group():
    """Property of the method: with enough iterations each group's output covariance is the identity (for a
    well-conditioned covariance: see the plugin's docstring on ill-conditioned ones)."""
    x = np.random.default_rng(1).standard_normal((64, 4, 5))
    mix = np.array([[1, 0.9, 0, 0], [0, 1, 0, 0], [0, 0, 1.5, 0.6], [0, 0, 0, 1]])  # correlated channels
    x = np.einsum("dc,nds->ncs", mix, x)
    layer = nn.Norm("iter_norm", 4, num_groups=2, T=10, eps=1e-8, affine=False).double()
    y = layer(tg.Tensor(x)).numpy()
    for k in range(2):
        g = np.moveaxis(y[:, 2 * k:2 * k + 2], 1, 0).reshape(2, -1)
        np.testing.assert_allclose(np.cov(g, bias=True), np.eye(2), atol=1e-6)


def test_positional_and_pixel_are_wholly_declared():
    """Where a pattern says it all, the plugin is the declaration: NormLayer's own forward, the fused op."""
    from tinygrad_norm.norms import NormLayer
    for name in ("positional", "pixel"):
        assert norms.get(name).forward is NormLayer.forward


# ---- public implementations ---------------------------------------------------------------------------
def test_spectral_norm_gives_pytorchs_numbers_from_the_same_weights_and_vectors():
    torch = pytest.importorskip("torch")
    from torch.nn.utils.parametrizations import spectral_norm
    rng = np.random.default_rng(0)
    torch.manual_seed(0)  # the layer's weights and PyTorch's first u and v
    theirs = spectral_norm(torch.nn.Conv2d(3, 5, 3).double(), n_power_iterations=2)
    ours = nn.spectral_norm(nn.Conv2d(3, 5, 3).double(), n_power_iterations=2)  # PyTorch's name
    plain = theirs.parametrizations.weight
    with torch.no_grad():
        ours.weight_orig.data = plain.original.numpy().copy()
        ours.bias.data = theirs.bias.numpy().copy()
        ours.weight_u.data, ours.weight_v.data = plain[0]._u.numpy().copy(), plain[0]._v.numpy().copy()
    for step in range(3):  # training: each forward runs the power iteration, then eval reuses u and v
        x = rng.standard_normal((2, 3, 6, 6))
        xt, xo = torch.tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True)
        yt, yo = theirs(xt), ours(xo)
        np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        yt.square().sum().backward()
        (yo ** 2).sum().backward()
        np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.weight_orig.grad.numpy(), plain.original.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.weight_u.numpy(), plain[0]._u.numpy(), rtol=1e-10, atol=1e-12)
        ours.weight_orig.grad = None
        plain.original.grad = None
        if step == 1:
            theirs.eval(), ours.eval()
    # the method's promise: the reparametrized weight's largest singular value is 1 (after the iterations)
    ours.train()
    for _ in range(100):
        ours(tg.Tensor(rng.standard_normal((1, 3, 6, 6))))
    assert abs(np.linalg.svd(ours.weight.numpy().reshape(5, -1), compute_uv=False)[0] - 1) < 1e-6


def test_weight_standardization_standardizes_each_output_channels_fan_in():
    rng = np.random.default_rng(0)
    conv = norms.get("weight_standardization").apply(nn.Conv2d(3, 4, 3).double())
    w = rng.standard_normal((4, 3, 3, 3)) * 2 + 1
    conv.weight_orig.data = w.copy()
    x = rng.standard_normal((2, 3, 5, 5))
    flat = w.reshape(4, -1)
    standardized = ((flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + EPS)).reshape(w.shape)
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))  # (2, 3, 3, 3, 3, 3)
    want = np.einsum("nchwij,ocij->nohw", windows, standardized) + per_channel(conv.bias.numpy(), x)
    xt = tg.Tensor(x, requires_grad=True)
    y = conv(xt)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    (y * tg.Tensor(g)).sum().backward()

    def conv_of(wv):
        f = wv.reshape(4, -1)
        s = ((f - f.mean(1, keepdims=True)) / np.sqrt(f.var(1, keepdims=True) + EPS)).reshape(wv.shape)
        return np.einsum("nchwij,ocij->nohw", windows, s)
    (numeric,) = numeric_gradients(lambda: conv_of(w), [w], g)
    np.testing.assert_allclose(conv.weight_orig.grad.numpy(), numeric, rtol=1e-5, atol=1e-7)


TIMM_WHY = ("timm is not installed (CI installs it with --no-deps: its torchvision does not import beside the CPU "
            "build of torch 2.13.0, so only its layer files are loaded)")


def timm_layer_files():
    """timm's own layer modules from the installed wheel, loaded without timm's __init__ (which imports
    torchvision for its data and model code), as the benchmark loads them; skips where timm is not installed."""
    layers = bench_literature().timm_layers()
    if layers is None:
        pytest.skip(TIMM_WHY)
    return layers


@pytest.mark.parametrize("name", ["evonorm_b0", "evonorm_s0", "filter_response"])
def test_timm_gives_the_same_numbers_from_the_same_weights(name):
    """Training forward (and the running variance it moves), eval forward, and the input gradient."""
    torch = pytest.importorskip("torch")
    timm = timm_layer_files()
    evo, frn = timm.evo_norm, timm.filter_response_norm
    theirs = {"evonorm_b0": lambda: evo.EvoNorm2dB0(4, eps=EPS), "evonorm_s0": lambda: evo.EvoNorm2dS0(4, groups=2, eps=EPS),
              "filter_response": lambda: frn.FilterResponseNormTlu2d(4, eps=1e-6)}[name]().double()
    layer, (x,) = layer_and_inputs(name)
    with torch.no_grad():
        for key, p in theirs.named_parameters():
            p.copy_(torch.tensor(getattr(layer, key).numpy()))
        for key, b in theirs.named_buffers():
            b.copy_(torch.tensor(getattr(layer, key).numpy()))
    tol = dict(rtol=1e-5, atol=1e-7)  # timm computes the statistics in float32 (x.float()), even for float64 x
    for mode in ("train", "eval"):
        getattr(theirs, mode)(), getattr(layer, mode)()
        xt, xo = torch.tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True)
        yt, yo = theirs(xt), layer(xo)
        np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), **tol)
        yt.square().sum().backward()
        (yo ** 2).sum().backward()
        np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), **tol)
        for key, b in theirs.named_buffers():
            np.testing.assert_allclose(getattr(layer, key).numpy(), b.numpy(), err_msg=key, **tol)


def test_timm_std_conv_gives_the_same_numbers_as_weight_standardization():
    torch = pytest.importorskip("torch")
    std_conv = timm_layer_files().std_conv
    theirs = std_conv.StdConv2d(3, 4, 3, padding=0, bias=True, eps=1e-6).double()
    ours = norms.get("weight_standardization").apply(nn.Conv2d(3, 4, 3).double(), eps=1e-6)
    ours.weight_orig.data, ours.bias.data = theirs.weight.detach().numpy().copy(), theirs.bias.detach().numpy().copy()
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    xt, xo = torch.tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True)
    yt, yo = theirs(xt), ours(xo)
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    yt.square().sum().backward()
    (yo ** 2).sum().backward()
    np.testing.assert_allclose(ours.weight_orig.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)


# ---- usable like the built-ins ------------------------------------------------------------------------
@pytest.mark.parametrize("name", LITERATURE + WEIGHT_PLUGINS)
def test_passes_the_conformance_checker(name):
    """Every check, and the same checks the committed benchmark run recorded for the README's table."""
    import json
    import pathlib
    report = norms.check(name)
    assert report.ok, str(report)
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "bench_literature.json"
    recorded = {r["plugin"]: r.get("checks") for r in json.loads(path.read_text())["rows"]}
    assert [check for check, _, _ in report.results] == recorded[name]


def test_the_checker_holds_what_the_gradient_does_not_flow_through():
    """Without holding r and d fixed, central differences see them move: the check would fail for a reason
    that is the paper's definition, not a bug; inside holding() it passes."""
    from tinygrad_norm.gradcheck import GradcheckError, gradcheck_module
    layer, (x,) = layer_and_inputs("batch_renorm")
    with pytest.raises(GradcheckError):
        gradcheck_module(layer, tg.Tensor(x))
    with holding():
        gradcheck_module(layer, tg.Tensor(x))


SYNCED = ["batch_renorm", "switchable", "batch_instance", "evonorm_b0", "mean_only_batch", "l1_batch",
          "conditional_batch", "iter_norm"]


@pytest.mark.parametrize("name", SYNCED)
def test_sync_is_one_process_on_the_whole_batch(name, monkeypatch):
    """3 processes with the same local batch make the whole batch [x; x; x]: each synchronized process gives
    the whole batch's output, input gradient and running statistics for its copy."""
    layer, xs = layer_and_inputs(name)
    whole, _ = layer_and_inputs(name)
    n = len(xs[0])
    big = [tg.Tensor(np.concatenate([x] * 3), requires_grad=True) for x in xs]
    w = np.random.default_rng(3).standard_normal(xs[0].shape)  # each copy's loss is the same
    y_whole = whole(*big)
    (y_whole * tg.Tensor(np.concatenate([w] * 3))).sum().backward()
    layer.set_sync()
    monkeypatch.setattr(world, "world", lambda: IdenticalProcesses(3))
    small = [tg.Tensor(x, requires_grad=True) for x in xs]
    y = layer(*small)
    (y * tg.Tensor(w)).sum().backward()
    np.testing.assert_allclose(y.numpy(), y_whole.numpy()[:n], rtol=1e-10, atol=1e-12)
    for a, b in zip(small, big):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy()[:n], rtol=1e-9, atol=1e-11)
    for (key, a), (_, b) in zip(layer.named_buffers(), whole.named_buffers()):
        if a is not None:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", ["adain", "positional", "pixel", "evonorm_s0", "filter_response", "scale"])
def test_sync_is_refused_where_every_statistic_belongs_to_one_sample(name):
    make = CASES[name][0]
    with pytest.raises(ValueError, match="sync=True needs a pattern that pools the batch axis"):
        make().set_sync()


@pytest.mark.parametrize("name", LITERATURE)
def test_float16_in_float16_out_close_to_float64(name):
    layer, xs = layer_and_inputs(name)
    want = layer(*map(tg.Tensor, xs)).numpy()
    layer, xs = layer_and_inputs(name)
    got = layer.half()(*[tg.Tensor(x.astype(np.float16)) for x in xs])
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.numpy().astype(np.float64), want, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("name", WEIGHT_PLUGINS)
def test_weight_plugins_in_float16(name):
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 6))
    want = norms.get(name).apply(nn.Conv2d(2, 4, 3).double())
    got = norms.get(name).apply(nn.Conv2d(2, 4, 3).half())
    got.weight_orig.data = want.weight_orig.data.astype(np.float16)
    got.bias.data = want.bias.data.astype(np.float16)
    for key in ("u", "v"):
        if hasattr(want, f"weight_{key}"):
            getattr(got, f"weight_{key}").data = getattr(want, f"weight_{key}").data.astype(np.float16)
    want.eval(), got.eval()
    y = got(tg.Tensor(x.astype(np.float16)))
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.numpy().astype(np.float64), want(tg.Tensor(x)).numpy(), rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("name", LITERATURE + WEIGHT_PLUGINS)
def test_state_dict_round_trips_exactly_without_pickle(name, tmp_path):
    if name in WEIGHT_PLUGINS:
        make = lambda: norms.get(name).apply(nn.Linear(5, 4))
        xs = [np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)]
        layer = make()
        layer(tg.Tensor(xs[0]))  # a training forward moves spectral norm's vectors
    else:
        layer, xs = layer_and_inputs(name)
        layer = layer.float()
        xs = [x.astype(np.float32) for x in xs]
        layer(*map(tg.Tensor, xs))  # moves the running statistics
    tg.save(layer.state_dict(), tmp_path / "layer.tgn")
    fresh = make() if name in WEIGHT_PLUGINS else CASES[name][0]()
    fresh.load_state_dict(tg.load(tmp_path / "layer.tgn"))
    for (k, a), (_, b) in zip(layer.state_dict().items(), fresh.state_dict().items()):
        assert a.dtype == b.dtype and np.array_equal(a.numpy(), b.numpy()), k
    layer.eval(), fresh.eval()
    assert np.array_equal(layer(*map(tg.Tensor, xs)).numpy(), fresh(*map(tg.Tensor, xs)).numpy())


def test_each_is_listed_with_its_patterns_and_origin():
    from tinygrad_norm.cli import main
    out = io.StringIO()
    import contextlib
    with contextlib.redirect_stdout(out):
        main(["plugins"])
    text = out.getvalue()
    for name in LITERATURE + WEIGHT_PLUGINS:
        assert f"\n{name} " in text
    assert "n c ... -> c; instance: n c ... -> n c; layer: n ... -> n" in text  # switchable's three patterns


def test_a_plugin_with_several_patterns_gets_one_picture_per_pattern():
    from tinygrad_norm import viz
    shape = (4, 6, 3, 3)
    n, c, h, w = np.indices(shape)
    layer = nn.Norm("switchable", 6)
    want = {None: c == 0, "instance": (n == 0) & (c == 0), "layer": n == 0}
    for which, mask in want.items():
        np.testing.assert_array_equal(viz.statistic_mask(layer, shape, which), mask)
    svg = viz.axes_svg(["switchable", "adain", "evonorm_s0"], shape)
    for title in ("switchable: n c ... -&gt; c", "switchable [instance]: n c ... -&gt; n c",
                  "switchable [layer]: n ... -&gt; n", "adain: n c ... -&gt; n c", "evonorm_s0: n (g c) ... -&gt; n g"):
        assert title in svg


def test_a_bad_statistics_declaration_names_the_plugin_the_pattern_and_the_fault():
    from tinygrad_norm.norms import NormLayer
    bad = type("Mixed", (NormLayer,), {"pattern": "n c -> c", "statistics": {"instance": "n c -> n n"},
                                       "forward": lambda self, x: x})
    assert norms.problem(bad) == ("Mixed, statistics 'instance': pattern 'n c -> n n' keeps axis 'n' twice; each "
                                  "kept axis is named once")
    assert "a pattern's name is an identifier" in norms.problem(type("M", (NormLayer,), {"pattern": "n c -> c",
                                                                                           "statistics": {"a b": "n c -> n"}}))
    assert "bounded maps a parameter's name to (low, high) with low < high; got 'gate': (1.0, 0.0)" in norms.problem(
        type("B", (NormLayer,), {"pattern": "n c -> c", "bounded": {"gate": (1.0, 0.0)}}))
    with pytest.raises(KeyError, match=r"SwitchableNorm \(plugin 'switchable'\): no statistics pattern named 'batch'"):
        nn.Norm("switchable", 4).moments(tg.randn(2, 4, 3), "batch")


@functools.lru_cache(maxsize=None)
def bench_literature():
    """benchmarks/bench_literature.py as a module, loaded once: its table, line counts and timm loader."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_literature.py"
    spec = importlib.util.spec_from_file_location("bench_literature", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_committed_benchmark_run_and_the_current_source():
    """Times and checks from benchmarks/results/bench_literature.json, lines and fused parts from the plugins'
    source as it is: the README's table is what `bench_literature.py --table` prints."""
    import pathlib
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    begin, end = "<!-- literature: generated by benchmarks/bench_literature.py --table -->\n", "\n<!-- end of literature -->"
    assert readme[readme.index(begin) + len(begin):readme.index(end)] == bench_literature().table()


def test_the_committed_run_records_the_checks_each_plugin_passes_now():
    import json
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "bench_literature.json"
    rows = {r["plugin"]: r for r in json.loads(path.read_text())["rows"]}
    for name in LITERATURE + WEIGHT_PLUGINS:
        assert rows[name]["checks_ok"], name
        assert rows[name]["checks"], name
    # every plugin is at most about 40 lines: more would mean the contract is missing something
    module = bench_literature()
    assert all(module.code_lines(norms.get(name))[0] <= 40 for name in LITERATURE + WEIGHT_PLUGINS)


def test_the_benchmark_runs_and_times_the_public_implementation_beside_ours(tmp_path):
    """bench_literature.py end to end on a tiny input (its times mean nothing here): a row per plugin with our
    time, PyTorch's BatchNorm's and, where timm is installed, timm's, and the checks it records."""
    pytest.importorskip("torch")
    rows = bench_literature().main(["--shape", "2,4,2,2", "--repeat", "1", "--only", "evonorm_b0",
                                    "--json", str(tmp_path / "out.json")])
    (row,) = rows
    assert row["plugin"] == "evonorm_b0" and row["ours_ms"] > 0 and row["torch_ms"] > 0 and row["checks_ok"]
    assert (row["public_ms"] is not None) == (bench_literature().timm_layers() is not None)
