"""A small MambaVision trained on scikit-learn's digits: real labels for the validate tests.

The 8x8 digits are upscaled (PIL bicubic) to the 'test' variant's input size and written as PNGs in an ImageFolder
tree with class-index folder names (``0`` .. ``9``), so the edgemv data code reads them like any user's data set.
Training reads the same PNG pixels (already at the input size, so the evaluation transform's resize is a no-op)
normalised with the variant's mean/std: train and evaluation see identical tensors.

The model is ``create_model('test')`` (the repo's tiny variant: every code path, 10 classes) trained from scratch
with AdamW for a few epochs; it reaches >= 95% on the held-out split in well under a minute on 2 CPU cores.
Weights are cached in the directory given (a pytest tmp dir): nothing is committed.

Run as a script to (re)build a cache by hand: ``python tests/digits_model.py OUT_DIR``.
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

VARIANT = "test"
NUM_CLASSES = 10
# No layer scale, as MambaVision-T/T2/S: with the test variant's 1e-5 the level 2-3 blocks start as near-identity
# and a few epochs leave them so, and their quantization would then measure nothing.
OVERRIDES = {"layer_scale": None}
IMAGE_SIZE = 32  # the variant's 64 would cost 3-4x the training time for the same accuracy


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    return train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)


def _to_pil(img8x8, size):
    from PIL import Image

    arr = np.clip(np.round(img8x8 * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "L").resize((size, size), Image.Resampling.BICUBIC).convert("RGB")


def write_split(images, labels, root, size):
    """An ImageFolder tree root/<label>/<i>.png."""
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, str(int(label)))
        os.makedirs(folder, exist_ok=True)
        _to_pil(img, size).save(os.path.join(folder, f"{i:04d}.png"))


def _tensor(images, size, mean, std):
    arr = np.stack([np.asarray(_to_pil(img, size), dtype=np.float32) / 255.0 for img in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def train(epochs=2, batch_size=48, lr=4e-3, seed=0, size=IMAGE_SIZE, log=print):
    """Train from scratch; returns (model, held-out accuracy, seconds)."""
    from edgemv.models import create_model

    torch.manual_seed(seed)
    x_tr, x_te, y_tr, y_te = _digits()
    model = create_model(VARIANT, num_classes=NUM_CLASSES, **OVERRIDES)
    cfg = model.pretrained_cfg
    xt, xv = _tensor(x_tr, size, cfg.mean, cfg.std), _tensor(x_te, size, cfg.mean, cfg.std)
    yt, yv = torch.as_tensor(y_tr), torch.as_tensor(y_te)
    # A_log stays at Mamba's initialisation: the scan op's backward gives NaN gradients for A (reported to the ops
    # owner); everything else trains.
    for name, p in model.named_parameters():
        p.requires_grad_(not name.endswith("A_log"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.05)
    steps = epochs * ((len(xt) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    start = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(xt[idx]), yt[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xv).argmax(-1) == yv).float().mean().item()
        log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, held-out top-1 {acc * 100:.2f}%")
    return model.eval(), acc, time.perf_counter() - start


def build(out_dir, log=print):
    """Train (or reuse) the model and write the data: returns a dict of paths and numbers.

    out_dir/digits.pth (state dict), out_dir/val/<label>/*.png (held-out), out_dir/calib/<label>/*.png (a slice of
    the training split, for calibration), out_dir/val.csv (path,label), out_dir/digits.json.
    """
    meta_path = os.path.join(out_dir, "digits.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            return json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    model, acc, seconds = train(log=log)
    weights = os.path.join(out_dir, "digits.pth")
    torch.save(model.state_dict(), weights + ".tmp")
    os.replace(weights + ".tmp", weights)
    x_tr, x_te, y_tr, y_te = _digits()
    size = IMAGE_SIZE
    val, calib = os.path.join(out_dir, "val"), os.path.join(out_dir, "calib")
    write_split(x_te, y_te, val, size)
    write_split(x_tr[:48], y_tr[:48], calib, size)
    csv_path = os.path.join(out_dir, "val.csv")
    with open(csv_path, "w") as f:
        f.write("path,label\n")
        for label in sorted(os.listdir(val), key=int):
            for name in sorted(os.listdir(os.path.join(val, label))):
                f.write(f"val/{label}/{name},{label}\n")
    meta = {"weights": weights, "val": val, "calib": calib, "val_csv": csv_path, "accuracy": acc,
            "train_seconds": seconds, "variant": VARIANT, "num_classes": NUM_CLASSES, "input_size": [3, size, size],
            "overrides": OVERRIDES, "n_val": int(len(y_te))}
    tmp = meta_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, meta_path)
    return meta


def load_model(meta):
    """The trained model through edgemv's own weight loading (so runs record the file and its sha256), with the
    pretrained config's input size set to the digits' resolution."""
    from dataclasses import replace

    from edgemv.models import create_model

    overrides = dict(meta.get("overrides") or {})
    model = create_model(meta["variant"], weights=meta["weights"], num_classes=meta["num_classes"], **overrides)
    model.create_overrides = overrides  # recorded by edgemv quantize, so runs rebuild this architecture
    model.pretrained_cfg = replace(model.pretrained_cfg, input_size=tuple(meta["input_size"]))
    return model.eval()


if __name__ == "__main__":
    print(json.dumps(build(sys.argv[1] if len(sys.argv) > 1 else "digits-cache"), indent=2))
