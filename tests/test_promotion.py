"""One promotion rule for every op: each binary op, reduction and float op swept over the dtype pairs, a tensor
beside a tensor, a 0-d tensor and a Python number, in both orders, against PyTorch's result dtype and values
(where PyTorch is installed) and against the rule's own table (always)."""
import itertools
import operator

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import dtypes

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
SCALARS = [True, 2, 2.5]
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
          "pow": operator.pow, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
          "maximum": "maximum", "minimum": "minimum", "where": "where"}


def values(dtype, zero_d=False):
    """Small positive values of a dtype (no overflow, no division by zero, no negative integer powers)."""
    a = np.array(True) if dtype == "bool" and zero_d else np.array([True, True, False]) if dtype == "bool" else \
        np.array(2, dtype) if zero_d else np.array([1, 2, 3], dtype)
    return a


def ours(op, a, b):
    wrap = lambda v: tg.Tensor(v) if isinstance(v, np.ndarray) else v
    a, b = wrap(a), wrap(b)
    if op == "where":
        return tg.where(np.array([True, False, True]), a, b)
    if op in ("maximum", "minimum"):
        return getattr(tg, op)(a, b)
    return BINARY[op](a, b)


def theirs(torch, op, a, b):
    wrap = lambda v: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
    a, b = wrap(a), wrap(b)
    if op == "where":
        return torch.where(torch.tensor([True, False, True]), a, b)
    if op in ("maximum", "minimum"):
        as_tensor = lambda v, like: v if isinstance(v, torch.Tensor) else torch.tensor(v)
        return getattr(torch, op)(as_tensor(a, b), as_tensor(b, a))
    return BINARY[op](a, b)


def operand_pairs():
    """(description, a, b): tensor-tensor, tensor-0d, tensor-scalar, and the reversed orders."""
    for x, y in itertools.product(DTYPES, DTYPES):
        yield f"{x} tensor, {y} tensor", values(x), values(y)
        yield f"{x} tensor, {y} 0-d", values(x), values(y, zero_d=True)
        yield f"{y} 0-d, {x} tensor", values(y, zero_d=True), values(x)
    for x, s in itertools.product(DTYPES, SCALARS):
        yield f"{x} tensor, {s!r}", values(x), s
        yield f"{s!r}, {x} tensor", s, values(x)


def outcome(fn):
    """("ok", dtype, values) or ("refused", the exception's type)."""
    try:
        r = fn()
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as e:
        return "refused", type(e).__name__
    data = r.numpy() if isinstance(r, tg.Tensor) else r.numpy()
    return "ok", str(data.dtype), data


@pytest.mark.parametrize("op", list(BINARY))
def test_every_binary_op_promotes_as_pytorch_over_every_dtype_pair(op):
    torch = pytest.importorskip("torch")
    checked = 0
    for what, a, b in operand_pairs():
        if op == "where" and (np.ndim(a) == 0 and not isinstance(a, np.ndarray) or
                              isinstance(a, np.ndarray) and a.ndim == 0 or isinstance(b, np.ndarray) and b.ndim == 0):
            continue  # where broadcasts its condition; the 0-d rule is swept by the other ops
        want = outcome(lambda: theirs(torch, op, a, b))
        got = outcome(lambda: ours(op, a, b))
        if want[0] == "refused":
            assert got[0] == "refused", f"{op}({what}): PyTorch refuses ({want[1]}), we gave {got[1]}"
            continue
        assert got[0] == "ok", f"{op}({what}): PyTorch gives {want[1]}, we refused with {got[1]}"
        assert got[1] == want[1].replace("torch.", ""), f"{op}({what}): {got[1]}, PyTorch {want[1]}"
        np.testing.assert_allclose(got[2].astype(np.float64), want[2].astype(np.float64), rtol=2e-3,
                                   err_msg=f"{op}({what})")
        checked += 1
    assert checked > 100


def reductions():
    return {"sum": lambda t: t.sum(), "sum axis": lambda t: t.sum(axis=0), "cumsum": lambda t: t.cumsum(0),
            "max": lambda t: t.max(), "min": lambda t: t.min()}


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_and_float_ops_give_pytorchs_dtypes(dtype):
    torch = pytest.importorskip("torch")
    a = values(dtype).reshape(3, 1)
    t, tt = tg.Tensor(a), torch.from_numpy(a)
    pairs = [(name, fn(t), fn(tt) if name != "sum axis" else tt.sum(0)) for name, fn in reductions().items()]
    pairs[3:] = [("max", t.max(), tt.amax()), ("min", t.min(), tt.amin())]
    for name in ("exp", "log", "sqrt", "tanh", "sigmoid"):
        pairs.append((name, getattr(t, name)(), getattr(tt, name)()))
    for name, got, want in pairs:
        assert str(got.dtype) == str(want.dtype).replace("torch.", ""), f"{name} of {dtype}: {got.dtype}, PyTorch {want.dtype}"
        np.testing.assert_allclose(got.numpy().astype(np.float64), want.numpy().astype(np.float64), rtol=2e-3,
                                   err_msg=f"{name} of {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_means_and_variances_of_integers_are_float32_where_pytorch_refuses_them(dtype):
    t = tg.Tensor(values(dtype))
    want = np.float64 if dtype == "float64" else np.float16 if dtype == "float16" else np.float32
    assert t.mean().dtype == want and t.var().dtype == want
    np.testing.assert_allclose(t.mean().item(), values(dtype).astype(np.float64).mean(), rtol=1e-3)
    np.testing.assert_allclose(t.var().item(), values(dtype).astype(np.float64).var(ddof=1), rtol=1e-3)


def test_the_issues_examples():
    t = tg.tensor(np.arange(3))
    assert (t * 0.5).numpy().tolist() == [0, 0.5, 1] and (t * 0.5).dtype == np.float32
    assert (t + 0.5).numpy().tolist() == [0.5, 1.5, 2.5]
    assert tg.tensor(np.array([1, 2])).mean().item() == 1.5
    assert (t / 2).dtype == np.float32 and (t / 2).numpy().tolist() == [0, 0.5, 1]
    assert (t < 0.5).dtype == bool and (t < 0.5).numpy().tolist() == [True, False, False]
    assert (t + 1).dtype == np.int64 and t.sum().dtype == np.int64


@pytest.mark.parametrize("a, b, want", [
    ("float32", 0.5, "float32"), ("int64", 0.5, "float32"), ("int32", 7, "int32"), ("bool", 1, "int64"),
    ("uint8", -5, "uint8"), ("bool", True, "bool"), ("float16", 2.5, "float16"),
    ("float32", ("float64", 0), "float32"), ("int32", ("float64", 0), "float64"), ("int32", ("int64", 0), "int32"),
    ("float16", "float32", "float32"), ("uint8", "int8", "int16"), ("int16", "float16", "float16"),
    ("uint8", "int16", "int16"), ("uint32", "int32", "int64"), ("bool", "uint8", "uint8"),
])
def test_the_rule_as_documented(a, b, want):
    """The table in dtypes.py's docstring and the README, row by row (runs without PyTorch)."""
    left = np.zeros(2, a)
    right = b if not isinstance(b, (str, tuple)) else np.zeros((), b[0]) if isinstance(b, tuple) else np.zeros(2, b)
    assert dtypes.result_type(left, right) == np.dtype(want)


def test_uint64_with_a_signed_integer_has_no_common_integer_dtype():
    with pytest.raises(TypeError, match="no integer dtype holds both uint64 and int8"):
        dtypes.result_type(np.zeros(2, np.uint64), np.zeros(2, np.int8))


def test_float_gradients_flow_back_through_a_promotion_in_their_own_dtype():
    a = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    b = tg.Tensor(np.full(3, 2.0), requires_grad=True)  # float64
    y = (a * b).sum()
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float32 and a.grad.numpy().tolist() == [2, 2, 2] and b.grad.dtype == np.float64
    c = a.astype("float64")
    (c * 3).sum().backward()
    assert a.grad.numpy().tolist() == [5, 5, 5]  # astype is differentiable: the gradient reached a


def test_bool_subtraction_negation_and_integer_negative_powers_are_refused_as_in_pytorch():
    b = tg.Tensor(np.array([True, False]))
    for fn, says in [(lambda: b - b, "subtraction"), (lambda: -b, "negation"), (lambda: b.relu(), "relu"),
                     (lambda: tg.ones(2) - True, "subtraction"), (lambda: b ** b, "pow"),
                     (lambda: tg.tensor(np.arange(3)) ** -1, "integers to negative integer powers")]:
        with pytest.raises((TypeError, ValueError), match=says):
            fn()


def test_the_readme_states_the_table_the_rule_gives():
    import pathlib
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert dtypes.promotion_table() in readme, "README's promotion table is not dtypes.promotion_table()"
