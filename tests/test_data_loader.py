"""ImageBatches (streaming, corrupt files skipped and counted), make_forward_loop, the shipped calib/ set and the
ImageNet class table."""

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from edgemv.data import (ImageBatches, default_calib_dir, discover_images, eval_transform, imagenet_class_names,
                         imagenet_synsets, make_forward_loop)
from edgemv.errors import DataError
from edgemv.models.variants import PretrainedConfig

CFG = PretrainedConfig(hf_repo="", filename="", input_size=(3, 32, 32), crop_pct=0.875)
TRANSFORM = eval_transform(CFG)


def _photo(path, seed=0, size=(48, 40), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def _truncated_jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def _collect(batches):
    return [(x, y, p) for x, y, p in batches]


def test_batches_shapes_order_and_counts(tmp_path):
    for i in range(7):
        _photo(tmp_path / f"{i}.png", seed=i)
    found = discover_images(tmp_path)
    batches = ImageBatches(found, TRANSFORM, batch_size=3, workers=3)
    out = _collect(batches)
    assert [x.shape[0] for x, _, _ in out] == [3, 3, 1] and len(batches) == 3
    assert all(x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32 for x, _, _ in out)
    assert all(y is None for _, y, _ in out)
    assert [p for *_, ps in out for p in ps] == [p for p, _ in found.items]  # deterministic order
    assert (batches.seen, batches.used, batches.skipped) == (7, 7, [])
    # each image equals the transform applied on its own
    assert torch.equal(out[1][0][2], TRANSFORM(Image.open(found.items[5][0])))


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    for i in range(4):
        _photo(tmp_path / f"good{i}.jpg", seed=i, fmt="JPEG")
    _truncated_jpeg(tmp_path / "truncated.jpg")
    (tmp_path / "random.png").write_bytes(np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8).tobytes())
    (tmp_path / "empty.jpg").write_bytes(b"")
    batches = ImageBatches(discover_images(tmp_path), TRANSFORM, batch_size=2)
    out = _collect(batches)
    assert sum(x.shape[0] for x, _, _ in out) == 4
    assert batches.seen == 7 and batches.used == 4 and len(batches.skipped) == 3
    reasons = {os.path.basename(p): r for p, r in batches.skipped}
    assert reasons["truncated.jpg"] == "truncated image data"
    assert reasons["random.png"] == reasons["empty.jpg"] == "not an image file PIL can read"
    assert batches.summary()["skipped"] == 3
    # iterating again starts the counts over
    _collect(batches)
    assert (batches.seen, batches.used, len(batches.skipped)) == (7, 4, 3)


def test_missing_file_in_a_list_is_skipped(tmp_path):
    _photo(tmp_path / "a.png")
    (tmp_path / "l.txt").write_text("a.png\ngone.png\n")
    batches = ImageBatches(discover_images(tmp_path / "l.txt"), TRANSFORM)
    _collect(batches)
    assert batches.skipped == [(str(tmp_path / "gone.png"), "file not found")]


def test_every_file_bad_is_a_data_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"junk")
    with pytest.raises(DataError) as e:
        _collect(ImageBatches(discover_images(tmp_path), TRANSFORM))
    msg = str(e.value)
    assert "\n" not in msg and "none of the 2 images" in msg and "a.jpg" in msg


def test_labels_from_an_imagefolder(tmp_path):
    _photo(tmp_path / "n01440764" / "a.png")
    _photo(tmp_path / "n01443537" / "b.png")
    _photo(tmp_path / "n01443537" / "c.png")
    (x, y, paths), = _collect(ImageBatches(discover_images(tmp_path), TRANSFORM, batch_size=8))
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 1] and x.shape[0] == 3


def test_stopping_early_does_not_hang(tmp_path):
    for i in range(40):
        _photo(tmp_path / f"{i:02d}.png", seed=i)
    calls = []

    def counting(img):
        calls.append(1)
        return TRANSFORM(img)

    batches = ImageBatches(discover_images(tmp_path), counting, batch_size=4, workers=2)
    for x, _, _ in batches:
        break
    assert batches.seen == 4 and len(calls) <= 4 + 2 * 4  # only a bounded window ahead was decoded


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    _photo(tmp_path / "a.png")
    _collect(ImageBatches(discover_images(tmp_path), TRANSFORM, progress=True, desc="calibrating"))
    captured = capsys.readouterr()
    assert "calibrating" in captured.err and captured.out == ""


def test_tensor_set_normalised_passes_through(tmp_path):
    arr = np.random.default_rng(0).standard_normal((10, 3, 8, 8)).astype(np.float32)
    arr[4, 0, 0, 0] = np.nan
    labels = np.arange(10) % 3
    np.savez(tmp_path / "d.npz", images=arr, labels=labels)
    found = discover_images(tmp_path / "d.npz")
    batches = ImageBatches(found, None, batch_size=4)
    out = _collect(batches)
    images = torch.cat([x for x, _, _ in out])
    kept = [i for i in range(10) if i != 4]
    assert torch.equal(images, torch.from_numpy(arr[kept]))
    assert torch.cat([y for _, y, _ in out]).tolist() == labels[kept].tolist()
    assert batches.skipped == [("d.npz[4]", "non-finite values (NaN or inf)")]


def test_tensor_set_uint8_goes_through_the_transform(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (6, 40, 50, 3), dtype=np.uint8)
    np.save(tmp_path / "u.npy", arr)
    found = discover_images(tmp_path / "u.npy", seed=0, limit=4)
    out = _collect(ImageBatches(found, TRANSFORM, batch_size=3))
    images = torch.cat([x for x, _, _ in out])
    assert images.shape == (4, 3, 32, 32)
    assert torch.equal(images[0], TRANSFORM(Image.fromarray(arr[found.indices[0]])))


def test_forward_loop_runs_batches_without_grad(tmp_path):
    for i in range(5):
        _photo(tmp_path / f"{i}.png", seed=i)
    found = discover_images(tmp_path)
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)

        def forward(self, x):
            seen.append((x.shape[0], torch.is_grad_enabled(), x.dtype))
            return self.conv(x)

    make_forward_loop(lambda: ImageBatches(found, TRANSFORM, batch_size=2))(Probe())
    assert seen == [(2, False, torch.float32), (2, False, torch.float32), (1, False, torch.float32)]
    seen.clear()
    make_forward_loop(ImageBatches(found, TRANSFORM, batch_size=2), max_batches=2)(Probe().double())
    assert seen == [(2, False, torch.float64), (2, False, torch.float64)]


# -- the shipped calibration set and class table ----------------------------------------------------------------
def test_calib_set_is_small_real_and_decodes():
    root = default_calib_dir()
    files = sorted(f for f in os.listdir(root) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    assert 16 <= len(files) <= 32
    assert sum(os.path.getsize(root / f) for f in os.listdir(root)) <= 5 * 1024 * 1024
    batches = ImageBatches(discover_images(root), TRANSFORM, batch_size=16)
    assert sum(x.shape[0] for x, _, _ in batches) == len(files) and batches.skipped == []
    attribution = (root / "ATTRIBUTION.md").read_text()
    assert all(f in attribution for f in files)


def test_imagenet_classes():
    names, synsets = imagenet_class_names(), imagenet_synsets()
    assert len(names) == len(synsets) == len(set(synsets)) == 1000
    assert synsets[0] == "n01440764" and names[0].startswith("tench")
    assert synsets == sorted(synsets)  # class index order is the sorted folder-name order
    assert imagenet_class_names(short=True)[1] == "goldfish"
