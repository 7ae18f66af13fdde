"""One training script, two frameworks: written once against PyTorch's API, it runs with PyTorch or with
tinygrad_norm behind the same names; only the imports at the top of `train` differ.

A small CNN with BatchNorm2d and GroupNorm on the 8x8 digits; AdamW with two parameter groups (no weight decay
on norm weights and biases); a linear warm-up then a cosine; gradient clipping; label smoothing; and a
checkpoint of model, optimizer and scheduler saved mid-way and resumed into fresh objects.

    python examples/port_from_pytorch.py                 # both, from the same initial weights, side by side
    python examples/port_from_pytorch.py --framework torch
"""
import argparse
import os
import tempfile

import numpy as np

from tinygrad_norm.data import load_digits  # the data as NumPy arrays, for either framework


def train(framework, init, checkpoint, steps=20, resume_at=10, batch=32):
    """Per-step losses; the initial weights come from (or, when it is absent, go to) the .npz file `init`."""
    if framework == "torch":
        import torch
        from torch import nn, optim
        from torch.nn import functional as F
    else:
        import tinygrad_norm as torch
        from tinygrad_norm import nn, optim
        from tinygrad_norm.nn import functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.conv2, self.gn2 = nn.Conv2d(8, 16, 3, padding=1), nn.GroupNorm(4, 16)
            self.fc = nn.Linear(16 * 4 * 4, 10)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = F.max_pool2d(F.relu(self.gn2(self.conv2(x))), 2)
            return self.fc(x.flatten(1))

    def build():
        model = Net()
        decay = [p for name, p in model.named_parameters() if p.ndim > 1]
        no_decay = [p for name, p in model.named_parameters() if p.ndim <= 1]
        opt = optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=3e-3)
        warmup = optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps - 5)
        return model, opt, optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[5])

    torch.manual_seed(0)
    model, opt, sched = build()
    if os.path.exists(init):
        model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(init).items()})
    else:
        np.savez(init, **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x_train, y_train, x_test, y_test = load_digits()
    order = np.random.default_rng(0).permutation(len(x_train))
    losses = []
    for step in range(steps):
        if step == resume_at:  # save everything, then carry on in fresh objects loaded from the file
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "step": step}, checkpoint)
            model, opt, sched = build()
            state = torch.load(checkpoint)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        rows = order[step * batch:(step + 1) * batch]
        xb, yb = torch.from_numpy(x_train[rows]), torch.from_numpy(y_train[rows].astype(np.int64))
        model.train()
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x_test)).argmax(1) == torch.from_numpy(y_test)).float().mean().item()
    return losses, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=["both", "torch", "tinygrad_norm"], default="both")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    frameworks = ["torch", "tinygrad_norm"] if args.framework == "both" else [args.framework]
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "init.npz")
        runs = {f: train(f, init, os.path.join(tmp, f"{f}.ckpt"), steps=args.steps) for f in frameworks}
    for step, values in enumerate(zip(*(losses for losses, _ in runs.values()))):
        print(f"step {step + 1:2d}  " + "  ".join(f"{f} {v:.6f}" for f, v in zip(runs, values)))
    for f, (_, accuracy) in runs.items():
        print(f"{f}: test accuracy after {args.steps} steps {accuracy:.3f}")
    if len(runs) == 2:
        (a, _), (b, _) = runs.values()
        print(f"largest relative difference of the per-step losses: "
              f"{max(abs(x - y) / abs(x) for x, y in zip(a, b)):.2e}")


if __name__ == "__main__":
    main()
