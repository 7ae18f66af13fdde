"""A third-party norm plugin end to end: install the example package in examples/frn_plugin (Filter Response
Normalization), find it through its entry point, check it, and train a CNN that uses it by name.

    python examples/custom_plugin.py [--quick]

The package is installed into <out>/frn_site (not into your environment) unless it is already installed.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import accuracy, digits, parser, plot_curves, save, seeded, train  # noqa: E402

from tinygrad_norm import nn, norms  # noqa: E402

PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frn_plugin")


def install_into(site):
    """pip-install the example plugin package into the folder `site` (built in isolation, so it needs nothing
    from the current environment); raises with pip's own output if that fails."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", site,
                             PACKAGE], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"pip could not install {PACKAGE}:\n{result.stdout}{result.stderr}")


def ensure_installed(out, log=print):
    """Make the 'frn' plugin loadable: install the example package into a folder on sys.path if needed."""
    if "frn" in norms.available():
        return "already installed"
    site = os.path.abspath(os.path.join(out, "frn_site"))
    log(f"installing {PACKAGE} into {site}")
    install_into(site)
    sys.path.insert(0, site)
    norms.refresh()  # scan the entry points again, now that the package is there
    return f"installed into {site}"


def frn_cnn():
    """The small CNN of the other examples with the plugin, by name, after each convolution."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Norm("frn", 16), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.Norm("frn", 32), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


def run(quick=False, seed=0, out="results", log=print):
    how = ensure_installed(out, log)
    report = norms.check("frn")
    log(str(report))
    x, y, xt, yt = digits(640 if quick else None)
    epochs = 3 if quick else 8
    seeded(seed)
    model = frn_cnn()
    start = time.perf_counter()
    losses = train(model, x, y, epochs, lr=0.02, batch_size=32, seed=seed, log=log, label="FRN CNN")
    rows = [{"plugin": "frn", "from": norms.origin("frn"), "conformance": "PASS" if report.ok else "FAIL",
             "test accuracy": accuracy(model, xt, yt), "seconds": time.perf_counter() - start}]
    text = save(out, "custom_plugin", rows, ["plugin", "from", "conformance", "test accuracy", "seconds"],
                {"epochs": epochs, "seed": seed, "install": how, "losses": losses})
    plot_curves(out, "custom_plugin", {f"frn ({rows[0]['test accuracy']:.3f} test accuracy)": losses},
                "CNN with the 'frn' plugin, by name")
    return rows, text


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    run(args.quick, args.seed, args.out)
