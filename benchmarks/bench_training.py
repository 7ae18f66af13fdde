"""One training step (forward, loss, backward, SGD-momentum step) of small models, ours beside the same model
in PyTorch, float32, median ms over interleaved runs. On the CPU also the digits CNN trained end to end.

    python benchmarks/bench_training.py [--device cuda] [--smoke] [--repeat 15] [--threads N] [--json out.json]

On the CPU the LSTM rows are our layer-normalized LSTM against the same cell written with torch modules, and
our plain nn.LSTM against PyTorch's built-in one (its fused C++ cell). --threads N gives both frameworks N
threads; by default ours keeps numba's (the cores) and PyTorch gets os.cpu_count().

On a GPU (--device cuda) the GPU cases run (issue 10's: an MLP with BatchNorm1d at batch 512, LeNet-BN at batch
256, a 4-conv VGG-style net at batch 256 with BatchNorm2d and with GroupNorm(32)); the synthetic batch sits on
the device already, and every step ends with a synchronization (cupy.cuda.Device().synchronize() for ours,
torch.cuda.synchronize() for PyTorch's). float32 means float32 arithmetic on both sides: PyTorch's TF32 for
matmuls and cuDNN convolutions is switched off (CuPy uses no TF32 unless CUPY_TF32=1). Each GPU row notes
each framework's loss on that one batch at the first and the last step it ran, a check that both train
alike (same model and data, different initial weights; it should fall over the steps).

--smoke runs the GPU cases at batch 8 on the given device (the CPU too): a check that they run, not a
measurement.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (default_json, device_name, free_device_memory, median_ms_or_error, report,  # noqa: E402
                    synchronizer, try_torch)

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn, optim  # noqa: E402
from tinygrad_norm.data import load_digits  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402


def mlp(m, norm):
    return m.Sequential(m.Flatten(), m.Linear(784, 256), norm(m, 256), m.ReLU(), m.Linear(256, 256), norm(m, 256),
                        m.ReLU(), m.Linear(256, 10))


def lenet(m, norm):
    """Seed 001's LeNet_bn on 3x32x32 input: conv5(3→6) norm relu pool conv5(6→16) norm relu pool fc 400→120→84→10."""
    return m.Sequential(m.Conv2d(3, 6, 5), norm(m, 6), m.ReLU(), m.MaxPool2d(2), m.Conv2d(6, 16, 5), norm(m, 16),
                        m.ReLU(), m.MaxPool2d(2), m.Flatten(), m.Linear(400, 120), m.ReLU(), m.Linear(120, 84),
                        m.ReLU(), m.Linear(84, 10))


def digits_cnn(m, norm):
    return m.Sequential(m.Conv2d(1, 16, 3, padding=1), norm(m, 16), m.ReLU(), m.MaxPool2d(2),
                        m.Conv2d(16, 32, 3, padding=1), norm(m, 32), m.ReLU(), m.MaxPool2d(2), m.Flatten(),
                        m.Linear(128, 10))


def vgg(m, norm):
    """A 4-convolution VGG-style net on 3x32x32: (conv3 norm relu) x2, pool, (conv3 norm relu) x2, pool, fc."""
    block = lambda cin, cout: [m.Conv2d(cin, cout, 3, padding=1), norm(m, cout), m.ReLU()]
    return m.Sequential(*block(3, 64), *block(64, 64), m.MaxPool2d(2), *block(64, 128), *block(128, 128),
                        m.MaxPool2d(2), m.Flatten(), m.Linear(128 * 8 * 8, 10))


BN1 = lambda m, c: m.BatchNorm1d(c)
BN2 = lambda m, c: m.BatchNorm2d(c)
GN = lambda m, c: m.GroupNorm(2, c)
GN32 = lambda m, c: m.GroupNorm(32, c)

CPU_CASES = [
    ("MLP 784-256-256-10 + BN, batch 128", lambda m: mlp(m, BN1), (128, 784)),
    ("LeNet + BN (seed 001), 3x32x32, batch 64", lambda m: lenet(m, BN2), (64, 3, 32, 32)),
    ("LeNet + GN(2), 3x32x32, batch 64", lambda m: lenet(m, GN), (64, 3, 32, 32)),
    ("LSTM + LN in the cell, 28 steps, batch 64", None, (64, 28, 28)),
    ("LSTM(28->128), 28 steps, batch 64, vs nn.LSTM", "lstm", (64, 28, 28)),
]
SMOKE_BATCH = 8
GPU_CASES = [  # the training steps of issue 10's H100 measurements
    ("MLP 784-256-256-10 + BN, batch 512", lambda m: mlp(m, BN1), (512, 784)),
    ("LeNet + BN (seed 001), 3x32x32, batch 256", lambda m: lenet(m, BN2), (256, 3, 32, 32)),
    ("VGG-style 4 conv + BN, 3x32x32, batch 256", lambda m: vgg(m, BN2), (256, 3, 32, 32)),
    ("VGG-style 4 conv + GN(32), 3x32x32, batch 256", lambda m: vgg(m, GN32), (256, 3, 32, 32)),
]


def lstm_model(m, hidden, norm=None):
    """LSTM(28 -> hidden) over the sequence, a linear head on the last h: in either framework; norm="layer" is our
    layer-normalized LSTM (PyTorch has none built in: its side is ln_lstm_torch)."""
    class Model(m.Module):
        def __init__(self):
            super().__init__()
            self.lstm = m.LSTM(28, hidden, batch_first=True, **({"norm": norm} if norm else {}))
            self.head = m.Linear(hidden, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[1][0][-1])
    return Model()


def ln_lstm_torch(torch, hidden):
    """The same layer-normalized LSTM (Ba et al.) written with torch modules: torch has no built-in one."""
    tnn = torch.nn

    class Model(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ih, self.hh = tnn.Linear(28, 4 * hidden, bias=False), tnn.Linear(hidden, 4 * hidden)
            self.ln_ih, self.ln_hh, self.ln_c = tnn.LayerNorm(4 * hidden), tnn.LayerNorm(4 * hidden), tnn.LayerNorm(hidden)
            self.head = tnn.Linear(hidden, 10)

        def forward(self, x):
            h = c = x.new_zeros(x.shape[0], hidden)
            for t in range(x.shape[1]):
                z = self.ln_ih(self.ih(x[:, t])) + self.ln_hh(self.hh(h))
                i, f, g, o = z.chunk(4, 1)
                c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                h = o.sigmoid() * self.ln_c(c).tanh()
            return self.head(h)
    return Model()


def step_fns(torch, ours, theirs, lr=0.01, device="cpu"):
    """[ours, torch's]: step(x, y) runs one SGD-momentum training step on a batch that is a NumPy array or
    already on `device` (torch's only if installed), waiting for the device at the end; it returns the loss
    as a detached scalar array/tensor (reading it is left to the caller, outside the timing)."""
    ours.to(device)
    opt, sync = optim.SGD(ours.parameters(), lr=lr, momentum=0.9), synchronizer(device)

    def ours_step(x, y):
        loss = F.cross_entropy(ours(tg.Tensor(x, device=device)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        return loss.data
    if torch is None:
        return [ours_step]
    theirs.to(device)
    topt, tsync = torch.optim.SGD(theirs.parameters(), lr=lr, momentum=0.9), synchronizer(device, torch)

    def torch_step(x, y):
        loss = torch.nn.functional.cross_entropy(theirs(torch.as_tensor(x, device=device)),
                                                 torch.as_tensor(y, device=device))
        topt.zero_grad()
        loss.backward()
        topt.step()
        tsync()
        return loss.detach()
    return [ours_step, torch_step]


def batches(torch, x, y, device):
    """The batch each framework's step takes: the NumPy arrays on the CPU, device arrays on a GPU."""
    if device == "cpu":
        return [(x, y), (x, y)]
    import cupy
    return [(cupy.asarray(x), cupy.asarray(y))] + ([(torch.tensor(x, device=device), torch.tensor(y, device=device))]
                                                  if torch else [])


def train_digits(torch, epochs=5, batch=32):
    """Seconds to train the digits CNN (with BN) for `epochs`, ours then torch's, same data order."""
    x, y, _, _ = load_digits()
    order = [np.random.default_rng(e).permutation(len(x)) for e in range(epochs)]
    tg.manual_seed(0)
    times = []
    for step in step_fns(torch, digits_cnn(nn, BN2), digits_cnn(torch.nn, BN2) if torch else None, lr=0.05):
        t = time.perf_counter()
        for idx in order:
            for k in range(0, len(x) - batch + 1, batch):
                step(x[idx[k:k + batch]], y[idx[k:k + batch]])
        times.append(time.perf_counter() - t)
    return times


def run_case(torch, label, make, shape, device, repeat, check_loss):
    """One row: the median step time of each framework on one synthetic batch. A case that fails to build has
    no times; a framework whose step raises gets no time; either way the error is in the row and the
    benchmark goes on. With check_loss, the note gives each framework's first and last loss."""
    row = {"name": f"train step: {label}", "ours_ms": None, "torch_ms": None}
    try:
        tg.manual_seed(0)
        if make is None:  # the layer-normalized LSTM, hand-written on PyTorch's side
            ours, theirs = lstm_model(nn, 128, "layer"), ln_lstm_torch(torch, 128) if torch else None
        elif make == "lstm":  # against PyTorch's built-in nn.LSTM
            ours, theirs = lstm_model(nn, 128), lstm_model(torch.nn, 128) if torch else None
        else:
            ours, theirs = make(nn), make(torch.nn) if torch else None
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, shape[0])
        steps = step_fns(torch, ours, theirs, device=device)
        data = batches(torch, x, y, device)
    except Exception as e:
        row["errors"] = [f"build: {type(e).__name__}: {e}"[:200]]
        row["note"] = "FAILED " + row["errors"][0]
        return row
    losses = [[None, None] for _ in steps]  # first and latest loss of each framework

    def logged(step, xy, log):
        def run():
            loss = step(*xy)
            log[0] = loss if log[0] is None else log[0]
            log[1] = loss
        return run
    ms, failed = median_ms_or_error([logged(*a) for a in zip(steps, data, losses)], repeat=repeat)
    row.update(ours_ms=ms[0], torch_ms=ms[1] if torch else None)
    notes = []
    if check_loss:
        for who, (first, last) in zip(("ours", "torch"), losses):
            if first is not None:
                row[f"{who}_loss"] = [float(first), float(last)]
                notes.append(f"{who} loss {float(first):.3f}->{float(last):.3f}")
    failures = [f"{who}: {f}" for who, f in zip(("ours", "torch"), failed) if f]
    if failures:
        row["errors"] = failures
        notes.append("FAILED " + "; ".join(failures))
    if notes:
        row["note"] = "; ".join(notes)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--smoke", action="store_true", help=f"the GPU cases at batch {SMOKE_BATCH} on the given "
                                                         "device: a check that they run, not a measurement")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None, help="threads for both frameworks (tg.set_num_threads, "
                                                                 "torch.set_num_threads); default: each its own")
    ap.add_argument("--only", default="", help="substring filter on case names")
    ap.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/"
                                                 "bench_training[_smoke][_cuda].json)")
    args = ap.parse_args(argv)
    common.set_device(args.device)
    torch = try_torch(threads=args.threads or (os.cpu_count() if args.device == "cpu" else None))
    if args.threads:
        tg.set_num_threads(args.threads)
    gpu_cases = args.device == "cuda" or args.smoke
    notes = []
    if args.device == "cuda" and torch:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        notes.append(f"PyTorch: TF32 off (matmul and cuDNN), cudnn.benchmark={torch.backends.cudnn.benchmark}; "
                     f"synthetic batch generated once on the host, then copied to the device before timing")
    if args.smoke:
        cases = [(label.replace(f"batch {shape[0]}", f"batch {SMOKE_BATCH} smoke"), make, (SMOKE_BATCH,) + shape[1:])
                 for label, make, shape in GPU_CASES]
    else:
        cases = GPU_CASES if gpu_cases else CPU_CASES
    rows = []
    for label, make, shape in cases:
        if args.only not in label:
            continue
        rows.append(run_case(torch, label, make, shape, args.device, args.repeat, check_loss=gpu_cases))
        free_device_memory(args.device, torch)
    if not gpu_cases and args.only in "digits CNN + BN":
        times = train_digits(torch)
        rows.append({"name": "digits CNN + BN, 5 epochs end to end", "ours_ms": times[0] * 1e3,
                     "torch_ms": times[1] * 1e3 if torch else None})
    title = f"training, {args.device}, float32, median of {args.repeat}, " + \
        (f"{args.threads} thread(s) each" if args.threads else f"default threads (ours {tg.get_num_threads()}, "
         f"torch {torch.get_num_threads() if torch else '-'})") + \
        (" (end to end: one run each)" if not gpu_cases else "") + \
        (f" (SMOKE: batch {SMOKE_BATCH}, not a measurement)" if args.smoke else "")
    report(title, rows, args.json or default_json(__file__, "bench_training" + ("_smoke" if args.smoke else "") +
                                                  (f"_threads{args.threads}" if args.threads else ""), args.device),
           device_name(args.device, torch), notes)
    return rows


if __name__ == "__main__":
    main()
