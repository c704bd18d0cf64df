"""Reference outputs of OpenCV's own Caffe runtime for the res10 SSD, for tests/vision/test_detect.py.

OpenCV 5 (our pin) has no Caffe importer, so this runs OpenCV 4 from a throwaway target folder:

    .venv/bin/pip install --no-deps --target /tmp/opencv4 opencv-python-headless==4.13.0.92
    PYTHONPATH=/tmp/opencv4 .venv/bin/python scripts/ssd_reference.py     # after `facevlm assets fetch`

It stores the network input of one sample photo (uint8 BGR at the detector's input shape) and OpenCV's
detections on it (rows [image, label, score, x0, y0, x1, y1] with score > 0.05) in
tests/fixtures/ssd_reference.npz (~150 KB).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    from facevlm import assets
    from facevlm.assets import local_path
    from facevlm.image import to_array
    from facevlm.vision.detect import _SSD_FILES, _SSD_MEAN, _ssd_shape

    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        raise SystemExit(f"OpenCV {cv2.__version__} has no Caffe importer: see this script's docstring")
    photo = next(s["path"] for s in assets.samples("image") if Path(s["file"]).name == "multi_face.jpg")
    rgb = to_array(photo)
    shape = _ssd_shape(rgb.shape[:2], 300)
    bgr = cv2.resize(rgb[:, :, ::-1], shape)
    directory = local_path("face-detector-ssd")
    net = cv2.dnn.readNetFromCaffe(*(str(directory / f) for f in _SSD_FILES))
    net.setInput(cv2.dnn.blobFromImage(bgr, 1.0, shape, tuple(float(m) for m in _SSD_MEAN)))
    rows = net.forward().reshape(-1, 7)
    out = REPO / "tests/fixtures/ssd_reference.npz"
    np.savez_compressed(out, bgr=bgr, rows=rows[rows[:, 2] > 0.05], opencv=cv2.__version__)
    print(
        f"wrote {out} ({out.stat().st_size // 1024} KB): {int((rows[:, 2] > 0.05).sum())} detections, "
        f"OpenCV {cv2.__version__}"
    )


if __name__ == "__main__":
    main()
