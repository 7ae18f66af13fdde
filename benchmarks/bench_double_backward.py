"""Second-order steps, ours beside the same model in PyTorch, float32, median ms over interleaved runs:

  - a WGAN-GP critic step (Gulrajani et al., 2017): a small conv critic with BatchNorm, LayerNorm, GroupNorm
    or no norm; the gradient penalty on interpolates x̂ = ε·real + (1-ε)·fake, λ = 10, then Adam.
    grad(D(x̂).sum(), x̂, create_graph=True), penalty (‖∇D(x̂)‖ - 1)², loss.backward(), opt.step();
  - a Hessian-vector product of an MLP with BatchNorm w.r.t. its parameters:
    g = grad(loss, θ, create_graph=True), Hv = grad(Σ g·v, θ).

    python benchmarks/bench_double_backward.py [--device cuda] [--repeat 15] [--batch 64] [--json out.json]

The critic rows also give each framework's step time over its own no-norm critic ("/ none"): the
question pytorch issue 3076 raised, where BatchNorm made double backprop about 6x slower than no norm.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import default_json, device_name, median_ms_or_error, report, synchronizer, try_torch  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn, optim  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402

NORMS = {
    "none": lambda m, c, hw: m.Identity(),
    "BatchNorm2d": lambda m, c, hw: m.BatchNorm2d(c),
    "LayerNorm": lambda m, c, hw: m.LayerNorm((c, hw, hw)),
    "GroupNorm(8)": lambda m, c, hw: m.GroupNorm(8, c),
}


def critic(m, norm):
    """DCGAN-style critic on 3x32x32: conv4/2 (3→32) lrelu, conv4/2 (32→64) norm lrelu, conv4/2 (64→128) norm
    lrelu, linear 128·4·4 → 1."""
    return m.Sequential(m.Conv2d(3, 32, 4, 2, 1), m.LeakyReLU(0.2),
                        m.Conv2d(32, 64, 4, 2, 1), norm(m, 64, 8), m.LeakyReLU(0.2),
                        m.Conv2d(64, 128, 4, 2, 1), norm(m, 128, 4), m.LeakyReLU(0.2),
                        m.Flatten(), m.Linear(128 * 4 * 4, 1))


def mlp(m):
    return m.Sequential(m.Linear(784, 256), m.BatchNorm1d(256), m.ReLU(), m.Linear(256, 256), m.BatchNorm1d(256),
                        m.ReLU(), m.Linear(256, 10))


def critic_steps(torch, norm, batch, device):
    """[ours, torch's]: one WGAN-GP critic step each on fixed real, fake and ε."""
    rng = np.random.default_rng(0)
    real, fake = (rng.standard_normal((batch, 3, 32, 32)).astype(np.float32) for _ in range(2))
    eps = rng.random((batch, 1, 1, 1)).astype(np.float32)
    tg.manual_seed(0)
    ours = critic(nn, NORMS[norm]).to(device)
    opt, sync = optim.Adam(ours.parameters(), lr=1e-4, betas=(0.5, 0.9)), synchronizer(device)
    r, f, e = (tg.Tensor(a, device=device) for a in (real, fake, eps))

    def ours_step():
        xhat = (e * r + (1 - e) * f).detach()
        xhat.requires_grad = True
        (g,) = tg.grad(ours(xhat).sum(), xhat, create_graph=True)
        penalty = (((g * g).sum(axis=(1, 2, 3)) + 1e-12).sqrt() - 1) ** 2
        loss = ours(f).mean() - ours(r).mean() + 10 * penalty.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
    if torch is None:
        return [ours_step]
    theirs = critic(torch.nn, NORMS[norm]).to(device)
    topt, tsync = torch.optim.Adam(theirs.parameters(), lr=1e-4, betas=(0.5, 0.9)), synchronizer(device, torch)
    tr, tf, te = (torch.tensor(a, device=device) for a in (real, fake, eps))

    def torch_step():
        xhat = (te * tr + (1 - te) * tf).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(theirs(xhat).sum(), xhat, create_graph=True)
        penalty = (((g * g).sum(dim=(1, 2, 3)) + 1e-12).sqrt() - 1) ** 2
        loss = theirs(tf).mean() - theirs(tr).mean() + 10 * penalty.mean()
        topt.zero_grad()
        loss.backward()
        topt.step()
        tsync()
    return [ours_step, torch_step]


def hvp_fns(torch, batch, device):
    """[ours, torch's]: H·v of the MLP's cross-entropy w.r.t. all its parameters, v fixed."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, 784)).astype(np.float32), rng.integers(0, 10, batch)
    tg.manual_seed(0)
    ours = mlp(nn).to(device)
    params = list(ours.parameters())
    vs = [tg.Tensor(rng.standard_normal(p.shape).astype(np.float32), device=device) for p in params]
    xs, ys, sync = tg.Tensor(x, device=device), tg.Tensor(y, device=device), synchronizer(device)

    def ours_hvp():
        gs = tg.grad(F.cross_entropy(ours(xs), ys), params, create_graph=True)
        tg.grad(sum((g * v).sum() for g, v in zip(gs, vs)), params)
        sync()
    if torch is None:
        return [ours_hvp]
    theirs = mlp(torch.nn).to(device)
    tparams = list(theirs.parameters())
    tvs = [torch.tensor(v.numpy(), device=device) for v in vs]
    tx, ty, tsync = torch.tensor(x, device=device), torch.tensor(y, device=device), synchronizer(device, torch)

    def torch_hvp():
        gs = torch.autograd.grad(torch.nn.functional.cross_entropy(theirs(tx), ty), tparams, create_graph=True)
        torch.autograd.grad(sum((g * v).sum() for g, v in zip(gs, tvs)), tparams)
        tsync()
    return [ours_hvp, torch_hvp]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64, help="the critic's batch (the MLP's is twice it)")
    ap.add_argument("--only", default="", help="substring filter on case names")
    ap.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/"
                                                 "bench_double_backward[_cuda].json)")
    args = ap.parse_args(argv)
    common.set_device(args.device)
    torch = try_torch(threads=os.cpu_count() if args.device == "cpu" else None)
    if args.device == "cuda" and torch:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rows = []
    for norm in NORMS:
        name = f"WGAN-GP critic step, {norm}, batch {args.batch}"
        if args.only in name:
            ms, errors = median_ms_or_error(critic_steps(torch, norm, args.batch, args.device), repeat=args.repeat)
            rows.append({"name": name, "norm": norm, "ours_ms": ms[0], "torch_ms": ms[1] if torch else None,
                         **({"errors": errors} if any(errors) else {})})
    baseline = next((r for r in rows if r["norm"] == "none"), None)
    for r in rows:
        if baseline and r is not baseline:
            r["ours_over_none"] = r["ours_ms"] / baseline["ours_ms"] if r["ours_ms"] and baseline["ours_ms"] else None
            r["torch_over_none"] = r["torch_ms"] / baseline["torch_ms"] if r["torch_ms"] and baseline["torch_ms"] else None
            r["note"] = f"/ none: ours {r['ours_over_none']:.2f}" + \
                (f", torch {r['torch_over_none']:.2f}" if r["torch_over_none"] else "")
    name = f"Hessian-vector product, MLP 784-256-256-10 + BN, batch {2 * args.batch}"
    if args.only in name:
        ms, errors = median_ms_or_error(hvp_fns(torch, 2 * args.batch, args.device), repeat=args.repeat)
        rows.append({"name": name, "ours_ms": ms[0], "torch_ms": ms[1] if torch else None,
                     **({"errors": errors} if any(errors) else {})})
    report(f"second order, {args.device}, float32, median of {args.repeat}", rows,
           args.json or default_json(__file__, "bench_double_backward", args.device), device_name(args.device, torch))
    return rows


if __name__ == "__main__":
    main()
