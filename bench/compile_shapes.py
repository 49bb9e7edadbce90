"""What docs/model.md's fast-inference recipe costs and assumes, measured: MambaVision-T (random weights), fp16,
channels_last, ``torch.compile(mode="reduce-overhead")``. Prints the time of each call in a sequence of batch sizes
(first calls compile and record a CUDA graph; a new batch size compiles and records again; a size seen before
replays), and whether an output kept without ``.clone()`` is still readable after the next call.

    python bench/compile_shapes.py
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from edgemv.models import create_model  # noqa: E402


def main():
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    model = create_model("t").cuda().eval().half().to(memory_format=torch.channels_last)
    fast = torch.compile(model, mode="reduce-overhead")
    inputs = {b: torch.randn(b, 3, 224, 224, device="cuda").half().to(memory_format=torch.channels_last)
              for b in (128, 64, 32)}
    with torch.inference_mode():
        for step, b in enumerate((128, 128, 128, 64, 64, 128, 32, 64, 128)):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fast(inputs[b])
            torch.cuda.synchronize()
            print(f"call {step + 1}: batch {b:3d}  {1e3 * (time.perf_counter() - t0):9.1f} ms", flush=True)
        kept = fast(inputs[128])
        fast(inputs[128])
        try:
            kept.float().sum().item()
            print("an output kept across the next call: still readable", flush=True)
        except RuntimeError as exc:
            print(f"an output kept across the next call: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        same = (fast(inputs[128]).clone() - model(inputs[128])).abs().max().item()
        print(f"compiled vs eager logits, batch 128: max abs difference {same:.2e}")


if __name__ == "__main__":
    main()
