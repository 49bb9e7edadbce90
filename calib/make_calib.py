"""Rebuild the default calibration set from scikit-image's bundled public-domain / CC0 photographs.

Run from the repository root with scikit-image installed: ``python calib/make_calib.py``. Every output is a JPEG
(quality 90) whose shorter side is 288 pixels. Some photographs give more than one image (a crop or a mirror
image), to reach 24 images from 11 photographs; ATTRIBUTION.md lists them.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SHORT_SIDE = 288
QUALITY = 90

# (output name, skimage.data function, crop box as fractions (left, top, right, bottom) or None, mirror)
IMAGES = [
    ("astronaut", "astronaut", None, False),
    ("astronaut_face", "astronaut", (0.25, 0.0, 0.75, 0.55), False),
    ("astronaut_mirror", "astronaut", None, True),
    ("chelsea", "chelsea", None, False),
    ("chelsea_face", "chelsea", (0.25, 0.0, 0.8, 0.8), False),
    ("chelsea_mirror", "chelsea", None, True),
    ("coffee", "coffee", None, False),
    ("coffee_cup", "coffee", (0.1, 0.0, 0.75, 0.85), False),
    ("coffee_mirror", "coffee", None, True),
    ("rocket", "rocket", None, False),
    ("rocket_top", "rocket", (0.2, 0.0, 0.8, 0.6), False),
    ("rocket_mirror", "rocket", None, True),
    ("hubble_nw", "hubble_deep_field", (0.0, 0.0, 0.5, 0.5), False),
    ("hubble_ne", "hubble_deep_field", (0.5, 0.0, 1.0, 0.5), False),
    ("hubble_sw", "hubble_deep_field", (0.0, 0.5, 0.5, 1.0), False),
    ("hubble_se", "hubble_deep_field", (0.5, 0.5, 1.0, 1.0), False),
    ("retina", "retina", None, False),
    ("retina_center", "retina", (0.25, 0.25, 0.75, 0.75), False),
    ("camera", "camera", None, False),
    ("camera_mirror", "camera", None, True),
    ("text", "text", None, False),
    ("brick", "brick", None, False),
    ("grass", "grass", None, False),
    ("gravel", "gravel", None, False),
]


def _render(array: np.ndarray, box, mirror: bool) -> Image.Image:
    img = Image.fromarray(array)
    if box is not None:
        w, h = img.size
        img = img.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    if mirror:
        img = ImageOps.mirror(img)
    w, h = img.size
    scale = SHORT_SIDE / min(w, h)
    return img.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)


def main(out_dir: Path = Path(__file__).resolve().parent) -> None:
    import skimage.data

    for name, source, box, mirror in IMAGES:
        img = _render(getattr(skimage.data, source)(), box, mirror)
        img.save(out_dir / f"{name}.jpg", quality=QUALITY, optimize=True)
        print(f"{name}.jpg {img.size[0]}x{img.size[1]} {img.mode}")


if __name__ == "__main__":
    main()
