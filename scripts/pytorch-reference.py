#!/usr/bin/env python3
"""The steps sieve-bench times, written in PyTorch, timed the same way (CUDA events around each step, warm-up, median),
so that the README can put sieve's throughput next to PyTorch's on the same GPU:

  * WRN-28-2 (pre-activation, as layers/wide_resnet.cpp builds it) on 32x32x3 inputs, batch 128: forward, per-example
    cross-entropy, weighted mean, backward, SGD with momentum 0.9 and weight decay 5e-4 -- the uniform training step;
    in float32 with TF32 convolutions (cuDNN's and sieve's default) and with bf16 autocast.
  * LSTM, hidden 128, one layer, 784 steps of one value, batch 128 (pixel-by-pixel MNIST): forward, and forward+backward
    with the linear classifier on the last hidden state.

Usage (on a GPU machine, where python3 has torch): scripts/pytorch-reference.py [--repeats 30] [--csv FILE]
"""

import argparse
import statistics
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--csv", default=None)
    args = p.parse_args()
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from pytorch_models import Rows, WideResNet
    except ImportError:
        print("pytorch-reference: PyTorch is not installed here", file=sys.stderr)
        return 1
    if not torch.cuda.is_available():
        print("pytorch-reference: no CUDA GPU visible", file=sys.stderr)
        return 1
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True

    def median_ms(fn):
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(args.repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return statistics.median(times)

    rows = Rows()
    report = rows.report

    print(f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    g = torch.Generator(device=dev).manual_seed(0)
    b = 128
    x = torch.randn(b, 3, 32, 32, device=dev, generator=g)
    y = torch.randint(0, 10, (b,), device=dev, generator=g)
    w = torch.rand(b, device=dev, generator=g) + 0.5
    model = WideResNet().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def wrn_step(bf16):
        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                losses = F.cross_entropy(model(x), y, reduction="none")
            loss = (losses.float() * w).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    ms = median_ms(wrn_step(False))
    report("pytorch wrn-28-2 train step (fp32, tf32 conv)", "b128 32x32", ms, b, "images/s")
    ms = median_ms(wrn_step(True))
    report("pytorch wrn-28-2 train step (bf16 autocast)", "b128 32x32", ms, b, "images/s")

    def wrn_scoring():
        with torch.no_grad():
            model.eval()
            z = model(torch.cat([x] * 5))
            p = torch.softmax(z, 1)
            p[torch.arange(5 * b, device=dev), y.repeat(5)] -= 1
            p.norm(dim=1)
            model.train()
    ms = median_ms(wrn_scoring)
    report("pytorch wrn-28-2 eval forward + score", "B640 32x32", ms, 5 * b, "images/s")

    lstm = nn.LSTM(1, 128, batch_first=True).to(dev)
    head = nn.Linear(128, 10).to(dev)
    seq = torch.randn(b, 784, 1, device=dev, generator=g)

    def lstm_forward():
        with torch.no_grad():
            head(lstm(seq)[0][:, -1])

    def lstm_train():
        loss = F.cross_entropy(head(lstm(seq)[0][:, -1]), y)
        loss.backward()

    report("pytorch lstm forward", "b128 T784 H128", median_ms(lstm_forward), b, "sequences/s")
    report("pytorch lstm forward+backward", "b128 T784 H128", median_ms(lstm_train), b, "sequences/s")

    rows.write_csv(args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
