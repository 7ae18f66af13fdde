"""Type promotion: the one rule that decides every op's result dtype, PyTorch's.

Operands come in three strengths. Tensors (and NumPy/CuPy arrays) with at least one dimension are the
strongest; 0-d tensors are weaker; Python numbers (and lists of them) are weakest, "weak scalars". A weaker
operand changes the result only when it is of a higher category (bool < integer < floating):

    float32 tensor * 0.5             -> float32    a float scalar keeps a float tensor's dtype
    int64 tensor * 0.5               -> float32    ... and gives an integer tensor the default float dtype
    int32 tensor + 7                 -> int32      an int scalar keeps an integer tensor's dtype
    bool tensor + 1                  -> int64
    float32 tensor + float64 0-d     -> float32    a 0-d tensor of the same category does not widen
    int32 tensor + float64 0-d       -> float64    ... one of a higher category does
    float16 tensor + float32 tensor  -> float32    two dimensioned tensors: the wider
    uint8 tensor + int8 tensor       -> int16      the smallest integer type that holds both
    int16 tensor + float16 tensor    -> float16    the floating one, whatever the integer's width

Division of integers and the float ops (exp, log, sqrt, tanh, sigmoid, gelu, softmax) on integers give the
default float dtype (float32); sums and cumulative sums of bool or integers give int64; means and variances of
integers give float32 (PyTorch refuses them); comparisons give bool.
"""
import numpy as np

DEFAULT_FLOAT = np.dtype(np.float32)
INT64, BOOL = np.dtype(np.int64), np.dtype(bool)
_WEAK = {bool: BOOL, int: INT64, float: DEFAULT_FLOAT}
_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}  # category: bool < integer < floating


def category(dtype):
    """0 for bool, 1 for integers, 2 for floating point; a TypeError for anything else (complex, strings)."""
    try:
        return _RANK[dtype.kind]
    except KeyError:
        raise TypeError(f"{dtype} is not a supported dtype: expected bool, an integer or a floating-point dtype "
                        f"(float16, float32, float64)") from None


def promote(a, b):
    """The smallest dtype that holds both a and b: within a category the wider, across categories the higher
    one's (PyTorch: any integer with float16 is float16)."""
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    if ca == 1 and a.kind != b.kind:  # one signed, one unsigned: a signed type wider than the unsigned one
        signed, unsigned = (a, b) if a.kind == "i" else (b, a)
        if signed.itemsize > unsigned.itemsize:
            return signed
        if unsigned.itemsize == 8:
            raise TypeError(f"no integer dtype holds both {a} and {b}; cast one of them first")
        return np.dtype(f"int{16 * unsigned.itemsize}")
    return a if a.itemsize >= b.itemsize else b


def _combine(higher, lower):
    """PyTorch's combine_categories: the weaker operand `lower` counts only when its category is higher."""
    if higher is None:
        return lower
    if lower is None or category(higher) == 2:
        return higher
    if category(higher) == 0 or category(lower) == 2:
        return promote(higher, lower)
    return higher


def weak_dtype(value):
    """The dtype a Python number (or a list of them) stands for: bool, int64 or the default float."""
    kind = type(value)
    if kind in _WEAK:
        return _WEAK[kind]
    if isinstance(value, (bool, int, float)):  # subclasses such as np.float64 (a float) count as Python numbers
        return _WEAK[bool if isinstance(value, bool) else int if isinstance(value, int) else float]
    return {"b": BOOL, "i": INT64, "u": INT64, "f": DEFAULT_FLOAT}[np.asarray(value).dtype.kind]


def is_weak(value):
    """A Python number, or a (nested) list or tuple of them."""
    return isinstance(value, (bool, int, float, list, tuple))


def result_type(*operands):
    """The dtype an op on these operands computes in. Each operand is an array or a Tensor (anything with
    .dtype and .ndim) or a Python number or list (weak)."""
    strengths = {"dim": None, "zero": None, "weak": None}
    for x in operands:
        if is_weak(x):
            strength, dtype = "weak", weak_dtype(x)
        else:
            strength, dtype = ("dim" if x.ndim else "zero"), np.dtype(x.dtype)
        current = strengths[strength]
        strengths[strength] = dtype if current is None else promote(current, dtype)
    return _combine(strengths["dim"], _combine(strengths["zero"], strengths["weak"]))


def float_of(dtype):
    """The dtype a float op (exp, division, mean, ...) returns: dtype itself when floating, else the default float."""
    return dtype if dtype.kind == "f" else DEFAULT_FLOAT


def sum_of(dtype):
    """The dtype of a sum: int64 for bool and integers (PyTorch's rule), else dtype."""
    return dtype if dtype.kind == "f" else INT64


TABLE_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")


def promotion_table():
    """The rule as a Markdown table (the README's): the result dtype of a tensor of the row's dtype beside a
    tensor of the column's, or beside a Python number."""
    short = lambda d: {"bool": "bool"}.get(d, d.replace("float", "f").replace("uint", "u").replace("int", "i"))
    head = ["tensor ⊕"] + [short(d) for d in TABLE_DTYPES] + ["`True`", "`2`", "`2.5`"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a in TABLE_DTYPES:
        left = np.zeros(1, a)
        cells = [short(str(result_type(left, np.zeros(1, b)))) for b in TABLE_DTYPES]
        cells += [short(str(result_type(left, s))) for s in (True, 2, 2.5)]
        rows.append("| " + " | ".join([f"**{short(a)}**"] + cells) + " |")
    return "\n".join(rows) + "\n"
