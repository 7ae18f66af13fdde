"""A third-party norm plugin end to end: the package in bgn_plugin/ (Batch Group Normalization, shipped with
tinygrad_norm as an example of what a user writes) is pip-installed into <out>/bgn_site unless it is already
installed, found through its entry point, checked, and used by name in a CNN trained on the digits.

    python -m tinygrad_norm.experiments.custom_plugin [--quick] [--seeds N] [--device cuda]
"""
import os
import pathlib
import subprocess
import sys

from .. import nn, norms
from .protocol import accuracy, compare, digits
from .report import main, pm, save

PACKAGE = pathlib.Path(__file__).resolve().parent / "bgn_plugin"
NAME = "bgn"
METRICS = ["test accuracy"]


def install_into(site):
    """pip-install the example plugin package into the folder `site` (built in isolation, so it needs nothing
    from the current environment); raises with pip's own output if that fails."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", site,
                             str(PACKAGE)], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"pip could not install {PACKAGE}:\n{result.stdout}{result.stderr}")


def ensure_installed(out, log=print):
    """Make the 'bgn' plugin loadable: install the example package into a folder on sys.path if needed."""
    if NAME in norms.available():
        return "already installed"
    site = os.path.abspath(os.path.join(out, "bgn_site"))
    log(f"installing {PACKAGE} into {site}")
    install_into(site)
    sys.path.insert(0, site)
    norms.refresh()  # scan the entry points again, now that the package is there
    return f"installed into {site}"


def plugin_cnn():
    """A small CNN with the plugin, by name, after each convolution (groups of 4 channels)."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Norm(NAME, 16, num_groups=4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.Norm(NAME, 32, num_groups=8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


def settings(quick):
    return dict(train=640, epochs=3, grid=(0.02,), seeds=3) if quick else \
        dict(train=None, epochs=10, grid=(0.003, 0.01, 0.03, 0.1), seeds=3)


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    s = settings(quick)
    seeds = list(range(seeds or s["seeds"]))
    how = ensure_installed(out, log)
    report = norms.check(NAME)
    log(str(report))
    data = digits(s["train"])
    xt, yt = data.x_test, data.y_test
    results = compare({f"CNN with nn.Norm('{NAME}', C)": plugin_cnn}, data, s["grid"], dict(epochs=s["epochs"], log=None),
                      seeds, lambda model, run: {"test accuracy": accuracy(model, xt, yt, device)}, device, log)
    result = {"experiment": "custom_plugin", "title": "A third-party plugin, installed and used by name",
              "data": data.description, "seeds": seeds,
              "settings": {**s, "seeds": len(seeds)}, "methods": results, "from": norms.origin(NAME),
              "install": how, "conformance": "PASS" if report.ok else "FAIL",
              "claim": "a norm from another package plugs in by name, passes the checker and trains.",
              "test": "the conformance checker passes and the CNN learns (test accuracy above chance, 0.1).",
              "verdict": f"conformance {'PASS' if report.ok else 'FAIL'}; the plugin came from {norms.origin(NAME)}."}
    return result, save(out, result, METRICS)


def headline(result):
    (label, m), = result["methods"].items()
    return f"conformance {result['conformance']}; {label}: test accuracy {pm(m['per_seed']['test accuracy'])}"


if __name__ == "__main__":
    main(run, __doc__, full_seeds=3)
