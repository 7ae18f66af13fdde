"""The normalization core and the built-in plugins: gradients, closed forms, PyTorch's semantics, errors."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import gradcheck, gradcheck_module, nn, norms
from tinygrad_norm.norms import Normalize, PatternError


@pytest.fixture(autouse=True)
def _both_kernel_paths(kernels):
    return kernels


SHAPES = {1: (4, 6, 5), 2: (4, 6, 5, 3), 3: (4, 6, 2, 3, 2)}  # (N, C, L), (N, C, H, W), (N, C, D, H, W)


def build(name, dims, device="cpu"):
    """A float64 layer of each plugin for 1-, 2- or 3-D inputs on `device`, with non-trivial γ, β."""
    shape = SHAPES[dims]
    layer = {"batch": lambda: nn.Norm("batch", 6), "instance": lambda: nn.Norm("instance", 6, affine=True),
             "group": lambda: nn.Norm("group", 3, 6), "layer": lambda: nn.Norm("layer", shape[-dims:]),
             "rms": lambda: nn.Norm("rms", shape[-dims:]), "local_response": lambda: nn.Norm("local_response", 3),
             "ghost_batch": lambda: nn.Norm("ghost_batch", 6, k=2)}[name]()
    rng = np.random.default_rng(dims)
    for p in layer.parameters():
        p.data = 1 + 0.5 * rng.standard_normal(p.shape)
    return layer.double().to(device), tg.Tensor(rng.standard_normal(shape), device=device)


ALL = ["batch", "instance", "group", "layer", "rms", "local_response", "ghost_batch"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_every_plugin_gradchecks_on_1d_2d_3d(name, dims, device):
    layer, x = build(name, dims, device)
    gradcheck_module(layer, x)


def composed_reference(layer, x):
    """The same normalization from primitive ops (autograd does the gradient): the fused op's reference."""
    b = layer.pattern.bind(x.shape, layer.sizes)
    xe = x.reshape(b.expanded_shape)
    if layer.center:
        c = xe - xe.mean(axis=b.reduce_axes, keepdims=True)
        var = (c * c).mean(axis=b.reduce_axes, keepdims=True)
    else:
        c, var = xe, (xe * xe).mean(axis=b.reduce_axes, keepdims=True)
    eps = np.finfo(x.dtype).eps if layer.eps is None else layer.eps
    y = (c / (var + eps).sqrt()).reshape(x.shape)
    if layer.weight is not None:
        shape = [1] * x.ndim
        if layer.pattern.text.startswith("..."):
            shape[x.ndim - layer.weight.ndim:] = layer.weight.shape
        else:
            shape[1] = layer.weight.shape[0]
        y = y * layer.weight.reshape(shape)
        if layer.bias is not None:
            y = y + layer.bias.reshape(shape)
    return y


@pytest.mark.parametrize("name", ["batch", "instance", "group", "layer", "rms"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_fused_op_equals_primitive_composition(name, dims, device):
    layer, x = build(name, dims, device)
    x.requires_grad = True
    g = np.random.default_rng(5).standard_normal(x.shape)
    fused = layer(x)
    fused.backward(g)
    grads = [x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]
    x.grad = None
    layer.zero_grad()
    ref = composed_reference(layer, x)
    ref.backward(g)
    np.testing.assert_allclose(fused.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(grads, [x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_batchnorm_closed_form():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 4, 4))
    bn = nn.BatchNorm2d(3).double()
    bn.weight.data, bn.bias.data = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    expected = (x - mu) / np.sqrt(var + 1e-5) * bn.weight.data[:, None, None] + bn.bias.data[:, None, None]
    np.testing.assert_allclose(bn(tg.Tensor(x)).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("shape", [(8, 3, 2, 3), (8, 3), (8, 3, 600)])  # columns I > 1, I = 1 (wide), large
def test_ghost_batchnorm_closed_form_forward_backward_and_running_stats(shape, kernels):
    """Each ghost batch of k samples is batch-normalized alone: per chunk and channel, x̂ = (x − μ)/σ and
    dx = γ(g − mean(g) − x̂·mean(g·x̂))/σ over (k, ...); dγ = Σ dy·x̂ and dβ = Σ dy over every chunk; the running
    mean moves by the chunks' average mean. On every CPU backend (the fused columns layout, G = 2)."""
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    gbn = nn.Norm("ghost_batch", 3, k=4, momentum=1.0).double()
    gbn.weight.data, gbn.bias.data = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    xt = tg.Tensor(x, requires_grad=True)
    gbn(xt).backward(dy)
    axes = (0,) + tuple(range(2, len(shape)))
    along = lambda v: v.reshape((3,) + (1,) * (len(shape) - 2))
    g, b = along(gbn.weight.data), along(gbn.bias.data)
    out, dx, means, dw = [], [], [], 0
    for c in (slice(0, 4), slice(4, 8)):
        mu = x[c].mean(axis=axes, keepdims=True)
        sigma = np.sqrt(x[c].var(axis=axes, keepdims=True) + 1e-5)
        xhat = (x[c] - mu) / sigma
        out.append(xhat * g + b)
        mean = lambda v: v.mean(axis=axes, keepdims=True)
        dx.append(g * (dy[c] - mean(dy[c]) - xhat * mean(dy[c] * xhat)) / sigma)
        means.append(mu.ravel())
        dw = dw + (dy[c] * xhat).sum(axis=axes)
    np.testing.assert_allclose(gbn(tg.Tensor(x)).numpy(), np.concatenate(out), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(xt.grad.numpy(), np.concatenate(dx), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gbn.weight.grad.numpy(), dw, rtol=1e-10)
    np.testing.assert_allclose(gbn.bias.grad.numpy(), dy.sum(axis=axes), rtol=1e-10)
    np.testing.assert_allclose(gbn.running_mean.numpy(), np.mean(means, axis=0), rtol=1e-6)
    gbn.eval()  # any batch size in eval mode: the running statistics serve each sample alone
    assert gbn(tg.Tensor(x[:3])).shape == (3,) + shape[1:]
    with pytest.raises(PatternError, match="k=4 does not divide"):
        gbn.train()(tg.Tensor(x[:3]))


def test_layernorm_closed_form_backward():
    """dx = (g - mean(g) - x̂·mean(g·x̂)) / σ over the last axis, written out with NumPy."""
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    ln = nn.LayerNorm(7, elementwise_affine=False).double()
    xt = tg.Tensor(x, requires_grad=True)
    ln(xt).backward(dy)
    mu, sigma = x.mean(1, keepdims=True), np.sqrt(x.var(1, keepdims=True) + 1e-5)
    xhat = (x - mu) / sigma
    expected = (dy - dy.mean(1, keepdims=True) - xhat * (dy * xhat).mean(1, keepdims=True)) / sigma
    np.testing.assert_allclose(xt.grad.numpy(), expected, rtol=1e-10)


def test_groupnorm_with_one_group_is_layernorm_over_chw():
    x = tg.Tensor(np.random.default_rng(2).standard_normal((3, 6, 4, 5)))
    gn = nn.GroupNorm(1, 6).double()
    ln = nn.LayerNorm((6, 4, 5)).double()
    np.testing.assert_allclose(gn(x).numpy(), ln(x).numpy(), rtol=1e-12, atol=1e-12)


def test_groupnorm_with_one_channel_per_group_is_instancenorm():
    x = tg.Tensor(np.random.default_rng(3).standard_normal((3, 6, 4, 5)))
    gn = nn.GroupNorm(6, 6).double()
    inorm = nn.InstanceNorm2d(6).double()
    np.testing.assert_allclose(gn(x).numpy(), inorm(x).numpy(), rtol=1e-12, atol=1e-12)


def test_batchnorm_running_statistics_follow_momentum_with_unbiased_variance():
    rng = np.random.default_rng(4)
    bn = nn.BatchNorm1d(3, momentum=0.3).double()
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.standard_normal((10, 3, 4)) * 2 + 1
        bn(tg.Tensor(x))
        rm = 0.7 * rm + 0.3 * x.mean(axis=(0, 2))
        rv = 0.7 * rv + 0.3 * x.var(axis=(0, 2), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm)
    np.testing.assert_allclose(bn.running_var.numpy(), rv)
    assert bn.num_batches_tracked.item() == 3
    bn.eval()
    x = rng.standard_normal((2, 3, 4))
    expected = (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5)
    np.testing.assert_allclose(bn(tg.Tensor(x)).numpy(), expected)
    assert bn.num_batches_tracked.item() == 3  # eval mode does not update


def test_momentum_none_is_a_cumulative_average():
    rng = np.random.default_rng(5)
    bn = nn.BatchNorm2d(2, momentum=None).double()
    batches = [rng.standard_normal((4, 2, 3, 3)) + k for k in range(4)]
    for x in batches:
        bn(tg.Tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(axis=(0, 2, 3)) for x in batches], axis=0))


def test_eval_gradient_treats_running_statistics_as_constants():
    bn = nn.BatchNorm1d(3).double()
    bn.running_mean.data, bn.running_var.data = np.array([0.5, -1.0, 2.0]), np.array([2.0, 0.5, 1.5])
    bn.eval()
    gradcheck_module(bn, tg.Tensor(np.random.default_rng(6).standard_normal((5, 3))))


def test_train_eval_is_per_module():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm1d(3))
    model[0].eval()
    assert not model[0].training and model[1].training


def test_instance_norm_with_running_stats_averages_over_the_batch():
    rng = np.random.default_rng(7)
    inorm = nn.InstanceNorm2d(3, track_running_stats=True, momentum=1.0).double()
    x = rng.standard_normal((4, 3, 5, 5))
    inorm(tg.Tensor(x))
    np.testing.assert_allclose(inorm.running_mean.numpy(), x.mean(axis=(2, 3)).mean(0))
    np.testing.assert_allclose(inorm.running_var.numpy(), x.var(axis=(2, 3), ddof=1).mean(0))


def test_instance_norm_leaves_num_batches_tracked_at_zero_as_pytorch_does():
    inorm = nn.InstanceNorm1d(3, track_running_stats=True)
    for _ in range(3):
        inorm(tg.randn(4, 3, 5))
    assert int(inorm.num_batches_tracked.numpy()) == 0 and not np.allclose(inorm.running_var.numpy(), 1)
    cumulative = nn.InstanceNorm1d(3, track_running_stats=True, momentum=None)  # PyTorch: momentum 0, no update
    cumulative(tg.randn(4, 3, 5))
    assert np.array_equal(cumulative.running_mean.numpy(), np.zeros(3))
    bn = nn.BatchNorm1d(3)
    bn(tg.randn(4, 3))
    assert int(bn.num_batches_tracked.numpy()) == 1


@pytest.mark.parametrize("make, what", [(lambda: nn.GroupNorm(0, 8), "axis g"), (lambda: nn.GroupNorm(2, 0), "num_features"),
                                        (lambda: nn.BatchNorm2d(0), "num_features"), (lambda: nn.BatchNorm2d(2.5), "num_features"),
                                        (lambda: nn.LayerNorm((3, -1)), "num_features")])
def test_sizes_must_be_positive_integers(make, what):
    with pytest.raises(ValueError, match=rf"\(plugin '\w+'\): the size of {what} \(pattern '.*'\) must be a positive "
                                         rf"integer; got"):
        make()


BN_ARGS = ["num_features", "eps", "momentum", "affine", "track_running_stats", "bias"]
TORCH_SIGNATURES = {  # PyTorch 2.13, without its device and dtype keywords
    "BatchNorm1d": BN_ARGS, "BatchNorm2d": BN_ARGS, "BatchNorm3d": BN_ARGS, "SyncBatchNorm": BN_ARGS,
    "InstanceNorm1d": BN_ARGS, "InstanceNorm2d": BN_ARGS, "InstanceNorm3d": BN_ARGS,
    "GroupNorm": ["num_groups", "num_channels", "eps", "affine", "bias"],
    "LayerNorm": ["normalized_shape", "eps", "elementwise_affine", "bias"],
    "RMSNorm": ["normalized_shape", "eps", "elementwise_affine"],
    "LocalResponseNorm": ["size", "alpha", "beta", "k"],
}


@pytest.mark.parametrize("name", sorted(TORCH_SIGNATURES))
def test_pytorch_names_are_classes_with_pytorch_signatures_and_docstrings(name):
    import inspect
    cls = getattr(nn, name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)
    assert list(inspect.signature(cls).parameters) == TORCH_SIGNATURES[name]
    assert "PyTorch's" in cls.__doc__ and len(cls.__doc__.split()) > 15
    torch = pytest.importorskip("torch", reason="PyTorch's own signature is compared where it is installed")
    theirs = [p for p in inspect.signature(getattr(torch.nn, name)).parameters if p not in ("device", "dtype")]
    if name == "SyncBatchNorm":
        theirs.remove("process_group")  # one world here: every process
    assert theirs == TORCH_SIGNATURES[name]


def test_a_pytorch_named_layer_is_an_instance_of_its_class_and_of_its_plugin():
    bn = nn.BatchNorm2d(3)
    assert isinstance(bn, nn.BatchNorm2d) and isinstance(bn, norms.get("batch")) and type(bn).__name__ == "BatchNorm2d"
    assert not isinstance(bn, nn.BatchNorm1d) and not isinstance(nn.Norm("batch", 3), nn.BatchNorm2d)
    assert type(bn) is nn.BatchNorm2d and type(nn.BatchNorm2d(4)) is nn.BatchNorm2d  # one class, PyTorch's name
    assert list(nn.BatchNorm2d(3, bias=False).state_dict()) == ["weight", "running_mean", "running_var",
                                                                 "num_batches_tracked"]  # PyTorch 2.13's keys
    assert repr(nn.GroupNorm(2, 4)).startswith("GroupNorm(4, g=2")


@pytest.mark.parametrize("name", sorted(TORCH_SIGNATURES))
def test_pytorch_named_layers_are_their_classes_and_pickle_and_deepcopy(name):
    import copy
    import pickle
    args = {"GroupNorm": (2, 4), "LayerNorm": ((4,),), "RMSNorm": ((4,),), "LocalResponseNorm": (2,)}.get(name, (4,))
    layer = getattr(nn, name)(*args)
    assert type(layer) is getattr(nn, name)
    x = tg.randn(*{"BatchNorm1d": (3, 4), "InstanceNorm1d": (3, 4, 5), "BatchNorm3d": (3, 4, 2, 2, 2),
                   "InstanceNorm3d": (3, 4, 2, 2, 2)}.get(name, (3, 4, 3, 4)))
    for twin in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert type(twin) is type(layer) and list(twin.state_dict()) == list(layer.state_dict())
        np.testing.assert_array_equal(twin(x).numpy(), layer(x).numpy())


def test_a_plugin_and_its_pytorch_name_take_the_same_arguments():
    import inspect
    for name, plugin in [("GroupNorm", "group"), ("BatchNorm2d", "batch"), ("InstanceNorm2d", "instance"),
                         ("LayerNorm", "layer"), ("RMSNorm", "rms"), ("LocalResponseNorm", "local_response")]:
        assert list(inspect.signature(norms.get(plugin)).parameters) == TORCH_SIGNATURES[name], name
    assert repr(nn.Norm("group", 2, 6)) == repr(nn.GroupNorm(2, 6))


def test_a_plugin_that_normalizes_weights_is_not_a_layer():
    with pytest.raises(norms.NormPluginError, match=r"'weight' normalizes a layer's weights.*nn.weight_norm"):
        nn.Norm("weight", 4)


def test_a_replaced_plugin_is_picked_up_by_the_pytorch_names():
    builtin = norms.get("group")

    class LoudGroupNorm(builtin):
        calls = 0

        def forward(self, x):
            LoudGroupNorm.calls += 1
            return super().forward(x)
    norms.register(LoudGroupNorm, name="group", replace=True)
    try:
        gn = nn.GroupNorm(2, 4)
        gn(tg.randn(2, 4, 3))
        assert isinstance(gn, LoudGroupNorm) and type(gn) is nn.GroupNorm and LoudGroupNorm.calls == 1
    finally:
        norms.refresh()  # the entry points again: the built-in, with its origin
    again = nn.GroupNorm(2, 4)
    assert not isinstance(again, LoudGroupNorm) and type(again) is nn.GroupNorm and norms.get("group") is builtin


def test_instance_norm_defaults_match_pytorch():
    layer = nn.InstanceNorm2d(4)
    assert layer.weight is None and layer.running_mean is None and list(layer.state_dict()) == []


def test_batchnorm_training_with_one_value_per_channel_raises():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"BatchNorm1d: training needs more than one value.*\(1, 4\).*eval\(\).*keeps the batch axis"):
        bn(tg.randn(1, 4))
    bn.eval()
    assert bn(tg.randn(1, 4)).shape == (1, 4)


def test_group_divisibility_is_checked_at_construction():
    with pytest.raises(PatternError, match=r"GroupNorm.*\(g c\) has size 10, which g=3 does not divide"):
        nn.GroupNorm(3, 10)


def test_input_that_does_not_fit_the_pattern_names_plugin_pattern_and_shape():
    with pytest.raises(PatternError, match=r"BatchNorm.*'batch'.*'n c \.\.\. -> c' expects axis c of size 6; input shape \(2, 5, 3\)"):
        nn.Norm("batch", 6)(tg.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expects 4-D input; got shape \(2, 6, 3\)"):
        nn.BatchNorm2d(6)(tg.randn(2, 6, 3))
    with pytest.raises(PatternError, match=r"'\.\.\. d0 d1 -> \.\.\.' expects axis d1 of size 4"):
        nn.LayerNorm((3, 4))(tg.randn(2, 3, 5))
    with pytest.raises(PatternError, match=r"needs input with at least 2 axes; got shape \(6,\)"):
        nn.Norm("group", 2, 6)(tg.randn(6))
    with pytest.raises(TypeError, match="floating-point input"):
        nn.LayerNorm(3)(tg.Tensor(np.arange(3)))


@pytest.mark.parametrize("bad,why", [("n c", "exactly one '->'"), ("n c -> q", "keeps axis 'q'"),
                                     ("n n -> n", "repeats an axis"), ("n (g c -> n", "unclosed"),
                                     ("n ((g) c) -> n", "nested"), ("n c -> (n c)", "cannot be grouped")])
def test_bad_declarations_are_clear_errors(bad, why):
    with pytest.raises(PatternError, match=why):
        norms.Pattern(bad, owner="mynorm")


def test_large_offset_normalizes_as_well_as_centred_input():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((16, 8, 6, 6)).astype(np.float32)
    for layer, x in [(nn.BatchNorm2d(8), x), (nn.LayerNorm(6), x), (nn.GroupNorm(4, 8), x), (nn.InstanceNorm2d(8), x),
                     (nn.BatchNorm1d(8), x[:, :, 0, 0]), (nn.RMSNorm(6), x - x.mean(-1, keepdims=True))]:
        centred = layer(tg.Tensor(x)).numpy()
        shifted = layer(tg.Tensor(x + np.float32(1e4))).numpy() if layer.center else centred
        # x + 1e4 in float32 is rounded to steps of 1e-3, i.e. 1e-3 of a standard deviation
        assert np.abs(shifted - centred).max() < 5e-3, layer


def test_rmsnorm_closed_form_and_default_eps():
    x = np.random.default_rng(9).standard_normal((3, 5)).astype(np.float32)
    rms = nn.RMSNorm(5)
    expected = x / np.sqrt((x ** 2).mean(1, keepdims=True) + np.finfo(np.float32).eps)
    np.testing.assert_allclose(rms(tg.Tensor(x)).numpy(), expected, rtol=1e-6)
    assert [n for n, _ in rms.named_parameters()] == ["weight"]


def test_local_response_norm_matches_the_definition():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 7, 3, 3))
    for size in (1, 2, 3, 5, 8):
        lrn = nn.LocalResponseNorm(size, alpha=0.1, beta=0.75, k=2.0)
        expected = np.empty_like(x)
        for c in range(7):
            lo, hi = max(0, c - size // 2), min(7, c + (size - 1) // 2 + 1)
            expected[:, c] = x[:, c] / (2.0 + 0.1 / size * (x[:, lo:hi] ** 2).sum(1)) ** 0.75
        np.testing.assert_allclose(lrn(tg.Tensor(x)).numpy(), expected, rtol=1e-12)
    assert list(nn.LocalResponseNorm(3).parameters()) == []


@pytest.mark.parametrize("make,shape", [(lambda: nn.Linear(5, 4), (3, 5)), (lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
                                        (lambda: nn.Conv1d(2, 3, 3), (2, 2, 6))])
def test_weight_norm_on_linear_and_conv(make, shape):
    tg.manual_seed(0)
    layer = make().double()
    w0 = layer.weight.data.copy()
    nn.weight_norm(layer)
    assert {"weight_g", "weight_v"} <= {n for n, _ in layer.named_parameters()} and "weight" not in layer._parameters
    x = tg.Tensor(np.random.default_rng(0).standard_normal(shape))
    layer(x)
    np.testing.assert_allclose(layer.weight.numpy(), w0)  # g = ‖v‖ at the start: the same function
    layer.weight_g.data = layer.weight_g.data * 2
    layer(x)
    np.testing.assert_allclose(layer.weight.numpy(), 2 * w0)
    rng = np.random.default_rng(1)  # w = g·v/‖v‖ on random g and v, ‖v‖ over every axis but the first
    layer.weight_g.data, layer.weight_v.data = rng.random(layer.weight_g.shape) + 0.5, rng.standard_normal(w0.shape)
    layer(x)
    v = layer.weight_v.data
    norm = np.sqrt((v ** 2).reshape(len(v), -1).sum(1)).reshape((-1,) + (1,) * (v.ndim - 1))
    np.testing.assert_allclose(layer.weight.numpy(), layer.weight_g.data * v / norm, rtol=1e-12)
    gradcheck_module(layer, x)
    assert sorted(n for n, _ in layer.named_parameters()) == ["bias", "weight_g", "weight_v"]
    with pytest.raises(TypeError, match="no parameter 'kernel'"):
        nn.weight_norm(nn.Linear(2, 2), name="kernel")


def test_norm_state_dict_round_trip_is_exact(tmp_path):
    bn = nn.BatchNorm2d(3)
    for _ in range(2):
        bn(tg.randn(4, 3, 2, 2))
    bn.save(tmp_path / "bn.npz")
    other = nn.BatchNorm2d(3)
    other.load(tmp_path / "bn.npz")
    for (k, a), (_, b) in zip(bn.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert other.num_batches_tracked.dtype == np.int64


def test_recurrent_layers_take_a_plugin_name():
    lstm = nn.LSTM(3, 4, norm="layer")
    assert type(lstm.norm_c_l0).__name__ == "LayerNorm"
    out, (h, c) = lstm(tg.randn(5, 2, 3))
    assert out.shape == (5, 2, 4)


def test_normalize_op_directly():
    """The op on its own: LayerNorm's view of a (6, 4) input, no parameters, planned by hand."""
    from tinygrad_norm.norms import kernels
    from tinygrad_norm.norms.plan import Plan
    plan = Plan((6, 4), (1,), (1, 1), (), True, None, kernels.get("reference"))
    x = tg.Tensor(np.random.default_rng(11).standard_normal((6, 4)), requires_grad=True)
    gradcheck(lambda t: Normalize.apply(t, plan=plan, eps=1e-5), x)


@pytest.mark.parametrize("make,shape,kind", [
    (lambda: nn.BatchNorm2d(8), (4, 8, 3, 3), "columns"), (lambda: nn.BatchNorm1d(8), (16, 8), "columns"),
    (lambda: nn.LayerNorm(5), (3, 4, 5), "rows"), (lambda: nn.GroupNorm(2, 8), (3, 8, 4), "rows"),
    (lambda: nn.InstanceNorm2d(8, affine=True), (3, 8, 2, 2), "rows"), (lambda: nn.RMSNorm((4, 5)), (3, 4, 5), "rows")])
def test_builtins_take_the_fused_kernels_when_numba_is_there(make, shape, kind, kernels):
    plan = make().plan(shape)
    assert plan.layout[0] == kind
    assert plan.kernels.name == ("reference" if kernels == "numpy" else "numba_cpu")
    assert make().plan(shape, "cuda").kernels.name == "cuda"  # planning needs no GPU


def test_small_inputs_use_serial_kernels_and_large_ones_parallel(kernels):
    from tinygrad_norm.norms.kernels import numba_cpu
    if kernels != "numba":
        pytest.skip("about the numba kernels' own size switch")
    layout = nn.LayerNorm(512).plan((4, 512)).layout
    assert numba_cpu._kernel(layout, 0)[0] is numba_cpu.KERNELS["elementwise"][0][1]  # serial
    layout = nn.LayerNorm(512).plan((1024, 512)).layout
    assert numba_cpu._kernel(layout, 0)[0] is numba_cpu.KERNELS["elementwise"][0][0]  # parallel
