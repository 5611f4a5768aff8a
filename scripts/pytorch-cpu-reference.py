#!/usr/bin/env python3
"""The CPU training steps sieve-bench times (its train_step and lstm rows with --device cpu), written in PyTorch and
timed the same way (the steady clock around each step, warm-up, median), for the README's CPU table:

  * MLP 784-512-256-10, batch 128: forward, per-example cross-entropy, weighted mean, backward, SGD (momentum 0.9);
    and upper-bound importance sampling: a no-gradient evaluation-mode forward of B = 256, the score
    |softmax(z) - onehot(y)|, b = 128 drawn with replacement in proportion, weights 1 / (B p), then the step on them.
  * The CNN (sieve's `cnn`) on 28x28x1, batch 128, uniform.
  * WRN-28-2 on 32x32x3, batch 16, uniform and upper-bound with B = 64 (sieve-bench's CPU sizes).
  * LSTM, hidden 128, one layer, 196 steps of one value, batch 32, and the pixel-by-pixel shape, 784 steps, batch
    128: forward without gradient, and forward + backward to the input and every weight from a given output gradient.

Usage, where python3 has torch (a venv with torch from PyPI): scripts/pytorch-cpu-reference.py [--threads 2]
[--repeats 10] [--csv FILE]. Where it has not, it says so and exits 1.
"""

import argparse
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's choice)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--csv", default=None)
    args = p.parse_args()
    try:
        import torch
        import torch.nn.functional as F
        from pytorch_models import Rows, WideResNet, cnn, mlp
    except ImportError:
        print("pytorch-cpu-reference: PyTorch is not installed here (python3 -m venv v && v/bin/pip install torch, "
              "then run this script with v/bin/python)", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def median_ms(fn, repeats=None):
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(repeats or args.repeats):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    rows = Rows()
    report = rows.report

    print(f"PyTorch {torch.__version__} on the CPU, {torch.get_num_threads()} threads")

    def step_of(model, x, y, w):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def step(x=x, y=y, w=w):
            loss = (F.cross_entropy(model(x), y, reduction="none") * w).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    def upper_bound_step(model, data_x, data_y, b, presample):
        train = step_of(model, None, None, None)

        def step():
            idx = torch.randint(0, data_x.shape[0], (presample,))
            with torch.no_grad():
                model.eval()
                p = torch.softmax(model(data_x[idx]), 1)
                model.train()
                p[torch.arange(presample), data_y[idx]] -= 1
                scores = p.norm(dim=1)
            prob = scores / scores.sum()
            pick = torch.multinomial(prob, b, replacement=True)
            train(data_x[idx[pick]], data_y[idx[pick]], 1.0 / (presample * prob[pick]))
        return step

    def images(n, c, s):
        return torch.randn(n, c, s, s), torch.randint(0, 10, (n,))

    x, y = images(60000, 1, 28)
    b = 128
    net = mlp()
    ms = median_ms(step_of(net, x[:b], y[:b], torch.ones(b)))
    report("pytorch train_step uniform", "mlp:512,256 b 128", ms, b, "images/s")
    ms = median_ms(upper_bound_step(net, x, y, b, 256))
    report("pytorch train_step upper-bound", "mlp:512,256 b 128 B 256", ms, b, "images/s")
    ms = median_ms(step_of(cnn(), x[:b], y[:b], torch.ones(b)))
    report("pytorch train_step uniform", "cnn b 128", ms, b, "images/s")

    cx, cy = images(50000, 3, 32)
    b = 16
    wrn = WideResNet()
    ms = median_ms(step_of(wrn, cx[:b], cy[:b], torch.ones(b)), repeats=min(args.repeats, 5))
    report("pytorch train_step uniform", "wrn-28-2 b 16", ms, b, "images/s")
    ms = median_ms(upper_bound_step(wrn, cx, cy, b, 64), repeats=min(args.repeats, 5))
    report("pytorch train_step upper-bound", "wrn-28-2 b 16 B 64", ms, b, "images/s")

    lstm = torch.nn.LSTM(1, 128, batch_first=True)
    for batch, steps, repeats in ((32, 196, None), (128, 784, min(args.repeats, 5))):
        seq = torch.rand(batch, steps, 1) * 2 - 1
        dy = torch.randn(batch, steps, 128) * 1e-3

        def lstm_forward(seq=seq):
            with torch.no_grad():
                lstm(seq)

        def lstm_train(seq=seq, dy=dy):
            lstm.zero_grad()
            s = seq.clone().requires_grad_()
            lstm(s)[0].backward(dy)

        size = f"b{batch} T{steps} I1 H128"
        report("pytorch lstm forward", size, median_ms(lstm_forward, repeats), batch, "sequences/s")
        report("pytorch lstm forward+backward", size, median_ms(lstm_train, repeats), batch, "sequences/s")

    rows.write_csv(args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
