"""The networks sieve's benchmarks time, and the rows of timings, for the PyTorch peer scripts (pytorch-reference.py on a GPU,
pytorch-cpu-reference.py on the CPU): the same layers, shapes and initialisation-independent work as layers/models.cpp.
Imported only where torch is installed."""

import csv

import torch.nn as nn
import torch.nn.functional as F


class Rows:
    """The timed rows of a peer script: printed as they come, written to CSV at the end."""

    def __init__(self):
        self.rows = []

    def report(self, name, size, ms, items, unit):
        rate = items / (ms / 1000)
        self.rows.append({"name": name, "size": size, "median_ms": f"{ms:.4f}", "rate": f"{rate:.1f}", "unit": unit})
        print(f"{name:44s} {size:24s} {ms:10.3f} ms {rate:12.1f} {unit}", flush=True)

    def write_csv(self, path):
        if path and self.rows:
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(self.rows[0]))
                w.writeheader()
                w.writerows(self.rows)


class Block(nn.Module):
    """A pre-activation wide-ResNet block, as layers/models.cpp builds it."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if cin != cout or stride != 1 else None

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (self.shortcut(o) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    def __init__(self, depth=28, widen=2, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        blocks, width = [], 16
        for g, w in enumerate([16 * widen, 32 * widen, 64 * widen]):
            for i in range(n):
                blocks.append(Block(width, w, 2 if (i == 0 and g > 0) else 1))
                width = w
        self.blocks = nn.Sequential(*blocks)
        self.bn, self.fc = nn.BatchNorm2d(width), nn.Linear(width, classes)

    def forward(self, x):
        h = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def mlp(inputs=784, hidden=(512, 256), classes=10):
    """Flatten, Linear + ReLU per hidden width, Linear: sieve's `mlp` (mlp:512,256)."""
    layers, width = [nn.Flatten()], inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def cnn(channels=1, size=28, classes=10):
    """Conv(32)-BN-ReLU-MaxPool-Conv(64)-BN-ReLU-MaxPool-Linear(128)-ReLU-Linear: sieve's `cnn`."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU(), nn.Linear(128, classes))
