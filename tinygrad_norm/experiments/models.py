"""The networks the experiments train, each with a norm slot filled by name: "batch", "ghost k" (BatchNorm's
statistics over ghost batches of k samples), "group", "layer", "instance" or "none"."""
from .. import nn
from ..nn import functional as F

NORMS = ("batch", "group", "layer", "instance", "none")


def norm_layer(kind, channels, spatial):
    """A norm for (N, channels, *spatial) activations, configured as in the GN paper's comparison: GN with groups of
    4 channels, LN over (C, *spatial) per sample, IN with γ and β."""
    two_d = len(spatial) == 2
    if kind.startswith("ghost"):
        return nn.Norm("ghost_batch", channels, k=int(kind.split()[1]))
    make = {"batch": lambda: (nn.BatchNorm2d if two_d else nn.BatchNorm1d)(channels),
            "group": lambda: nn.GroupNorm(channels // 4, channels),
            "layer": lambda: nn.LayerNorm((channels, *spatial)),
            "instance": lambda: (nn.InstanceNorm2d if two_d else nn.InstanceNorm1d)(channels, affine=True),
            "none": lambda: nn.Identity()}
    if kind not in make:
        raise ValueError(f"unknown norm {kind!r}: expected one of {', '.join(make)} or 'ghost K'")
    return make[kind]()


def digits_cnn(kind, padding=1, channels=(16, 32)):
    """(N, 1, 8, 8) digits -> conv → norm → relu, twice, → max-pool → linear -> 10 logits. padding=0 gives the
    padding-free control: no zero border, so nothing but the image enters a convolution."""
    c1, c2 = channels
    s1, s2 = 8 - 2 * (1 - padding), 8 - 4 * (1 - padding)
    return nn.Sequential(nn.Conv2d(1, c1, 3, padding=padding), norm_layer(kind, c1, (s1, s1)), nn.ReLU(),
                         nn.Conv2d(c1, c2, 3, padding=padding), norm_layer(kind, c2, (s2, s2)), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * (s2 // 2) ** 2, 10))


def conv1d_net(kind, depth=6, width=32, length=40):
    """(N, 1, length) sequences -> `depth` blocks of conv1d → norm → relu (every second one halves the length
    with stride 2) → flatten → linear -> 10 logits: `depth` norm layers in a row."""
    layers, channels = [], 1
    for i in range(depth):
        stride = 2 if i % 2 else 1
        layers += [nn.Conv1d(channels, width, 3, stride=stride, padding=1)]
        length = (length - 1) // stride + 1
        layers += [norm_layer(kind, width, (length,)), nn.ReLU()]
        channels = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * length, 10))


class LeNet(nn.Module):
    """conv(1→6) → BN → relu → pool → conv(6→16) → BN → relu → pool → fc(64→120) → BN → relu → fc(120→84) → relu
    → fc(84→10): seed 001's LeNet_bn with 3x3 padded convolutions for 8x8 inputs; bn=False drops the BN layers."""

    def __init__(self, bn=True, classes=10):
        super().__init__()
        norm2d = nn.BatchNorm2d if bn else (lambda c: nn.Identity())
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 3, padding=1), norm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, 3, padding=1), norm2d(16)
        self.fc1, self.bn3 = nn.Linear(16 * 2 * 2, 120), (nn.BatchNorm1d(120) if bn else nn.Identity())
        self.fc2, self.fc3 = nn.Linear(120, 84), nn.Linear(84, classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        out = F.max_pool2d(F.relu(self.bn2(self.conv2(out))), 2)
        out = F.relu(self.bn3(self.fc1(out.flatten(1))))
        return self.fc3(F.relu(self.fc2(out)))


def mlp(bn, hidden=128):
    """(N, 1, 8, 8) -> 64 -> 128 -> 128 -> 10, BN after each hidden linear layer and before its ReLU."""
    norm = (lambda: nn.BatchNorm1d(hidden)) if bn else nn.Identity
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), norm(), nn.ReLU(),
                         nn.Linear(hidden, hidden), norm(), nn.ReLU(), nn.Linear(hidden, 10))
