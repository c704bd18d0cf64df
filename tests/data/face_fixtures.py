"""Builders of tiny datasets laid out EXACTLY as their authors distribute them (file names, header and
count lines, separators, value encodings, CRLF where the originals use it), written into tmp dirs.

Each builder returns the dataset root. `bad=True` adds one corrupt image and one malformed line so the
skip-and-count path is exercised on the real format.
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

from facevlm.schema import CELEBA_ATTRIBUTES


def jpeg(path: Path, seed: int, size: tuple[int, int] = (64, 64)) -> Path:
    """A random-texture JPEG (distinct seeds give perceptually distinct images)."""
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    img = Image.new("RGB", (8, 8))
    img.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64)])
    img = img.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(1))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG", quality=90)
    return path


def corrupt_jpeg(path: Path) -> Path:
    """A JPEG cut after its first 200 bytes: opens, but fails to decode (what interrupted downloads leave)."""
    jpeg(path, seed=999)
    data = path.read_bytes()
    path.write_bytes(data[:200])
    return path


def celeba(root: Path, n: int = 9, bad: bool = False) -> Path:
    """img_align_celeba/ + list_attr (count + header lines, -1/1) + identity + partition + landmarks + bbox."""
    rng = random.Random(0)
    files = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for i, f in enumerate(files):
        jpeg(root / "img_align_celeba" / f, seed=i, size=(178, 218))
    attr = [str(len(files)), " ".join(CELEBA_ATTRIBUTES) + " "]
    for f in files:
        attr.append(f + " " + " ".join(f"{rng.choice((-1, 1)):>2d}" for _ in CELEBA_ATTRIBUTES))
    if bad:
        attr[3] = attr[3].rsplit(" ", 3)[0]  # a line that lost its last columns
        corrupt_jpeg(root / "img_align_celeba" / files[2])
    crlf = "\r\n"
    (root / "list_attr_celeba.txt").write_text(crlf.join(attr) + crlf)
    (root / "identity_CelebA.txt").write_text(crlf.join(f"{f} {100 + i % 3}" for i, f in enumerate(files)) + crlf)
    (root / "list_eval_partition.txt").write_text(
        crlf.join(f"{f} {0 if i < n - 3 else (1 if i < n - 1 else 2)}" for i, f in enumerate(files)) + crlf
    )
    lm = [
        str(len(files)),
        "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y",
    ]
    lm += [f"{f} 69  109  106  113   77  142   73  152  108  154" for f in files]
    (root / "list_landmarks_align_celeba.txt").write_text(crlf.join(lm) + crlf)
    bbox = [str(len(files)), "image_id x_1 y_1 width height"] + [f"{f}    95  71 226 313" for f in files]
    (root / "list_bbox_celeba.txt").write_text(crlf.join(bbox) + crlf)
    return root


def fairface(root: Path, bad: bool = False) -> Path:
    rows = {
        "train": [
            ("train/1.jpg", "50-59", "Male", "East Asian", "True"),
            ("train/2.jpg", "more than 70", "Female", "Indian", "False"),
            ("train/3.jpg", "3-9", "Female", "Latino_Hispanic", "False"),
        ],
        "val": [("val/1.jpg", "20-29", "Male", "Black", "True")],
    }
    for split, items in rows.items():
        lines = ["file,age,gender,race,service_test"] + [",".join(r) for r in items]
        for i, r in enumerate(items):
            jpeg(root / r[0], seed=zlib.crc32(r[0].encode()) % 1000 + i, size=(224, 224))
        if bad and split == "train":
            lines.append("train/4.jpg,20-29,Male")  # a malformed line: two fields short
            lines.append("train/5.jpg,20-29,Male,White,True")
            corrupt_jpeg(root / "train/5.jpg")
        (root / f"fairface_label_{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def utkface(root: Path, bad: bool = False) -> Path:
    names = [
        "25_0_2_20170116174525125.jpg.chip.jpg",
        "1_1_0_20161219140623097.jpg.chip.jpg",
        "80_1_4_20170103225017457.jpg.chip.jpg",
        "45_0_3_20170119180108321.jpg.chip.jpg",
    ]
    if bad:
        names.append("39_1_20170116174525125.jpg.chip.jpg")  # a real malformed name (race missing)
    for i, name in enumerate(names):
        jpeg(root / "UTKFace" / name, seed=i, size=(200, 200))
    if bad:
        corrupt_jpeg(root / "UTKFace" / "30_1_1_20170116174525125.jpg.chip.jpg")
    return root


def fer2013(root: Path, bad: bool = False) -> Path:
    rng = random.Random(1)
    usage = ["Training", "Training", "Training", "PublicTest", "PrivateTest", "PrivateTest"]
    lines = ["emotion,pixels,Usage"]
    for i, u in enumerate(usage):
        lines.append(f"{i % 7},{' '.join(str(rng.randrange(256)) for _ in range(48 * 48))},{u}")
    if bad:
        lines.insert(2, "3,12 34 56,Training")  # a truncated pixel string
        lines.insert(3, "4,Training")  # a missing column
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    return root


def rafdb(root: Path, bad: bool = False) -> Path:
    basic = root / "basic"
    items = [
        ("train_00001.jpg", 5),
        ("train_00002.jpg", 4),
        ("train_00003.jpg", 7),
        ("test_0001.jpg", 1),
        ("test_0002.jpg", 6),
    ]
    lines = [f"{f} {label}" for f, label in items]
    if bad:
        lines.insert(1, "train_00009.jpg")  # label missing
        items.append(("train_00004.jpg", 2))
        lines.append("train_00004.jpg 2")
    for i, (f, _) in enumerate(items):
        stem = f[:-4]
        jpeg(basic / "Image" / "aligned" / f"{stem}_aligned.jpg", seed=i, size=(100, 100))
        jpeg(basic / "Image" / "original" / f, seed=50 + i, size=(320, 240))
        points = "\n".join(f"{100 + 10 * k:.4f}\t{120 + 5 * k:.4f}" for k in range(5))
        (basic / "Annotation" / "manual").mkdir(parents=True, exist_ok=True)
        (basic / "Annotation" / "manual" / f"{stem}_manu_attri.txt").write_text(f"{points}\n{i % 3}\n2\n2\n")
    if bad:
        corrupt_jpeg(basic / "Image" / "aligned" / "train_00004_aligned.jpg")
    (basic / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (basic / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
)


def affectnet(root: Path, bad: bool = False, val_header: bool = False) -> Path:
    lm = ";".join(f"{40 + (k % 20) * 3:.2f};{50 + (k // 20) * 20 + k % 7:.2f}" for k in range(68))
    train = [
        ("689/737db2483489148d783ef278f43f486c0a97e140fc4b6b61b84363ca.jpg", 1, "0.785714", "-0.055556"),
        ("392/c4db2f9b7e4b422d14b6e038f0cdc3ecee239b55326e9181ee4520f9.jpg", 0, "-0.017253", "0.004313"),
        ("468/21772b68dc8c2a11678c8739eca33adb6ccc658600e4da2224080603.jpg", 7, "-0.5", "0.3"),
        ("2/9ce4d3d0cbd6d6b1c1e4a4b4bd6c1b8b4fd0c3b1c0d7b8b94f3a5c2f.jpg", 10, "-2", "-2"),
        ("3/0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5.jpg", 6, "-0.7", "0.6"),
    ]
    val = [("1071/7a5d0b3e3e7f2f3c3cfd3c1d2b2a5d0ce8b8f4c3d1bd3f34b8e0d1f2.jpg", 3, "0.3", "0.8")]
    folder = root / "Manually_Annotated_Images"
    for i, (f, *_rest) in enumerate(train + val):
        jpeg(folder / f, seed=i, size=(256, 256))
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)

    def rows(items):
        return [f"{f},20,24,180,190,{lm},{e},{v},{a}" for f, e, v, a in items]

    train_lines = [AFFECTNET_HEADER] + rows(train)
    if bad:
        train_lines.append("5/abc.jpg,20,24,180")  # truncated line
        corrupt_jpeg(folder / train[4][0])
    (lists / "training.csv").write_text("\n".join(train_lines) + "\n")
    (lists / "validation.csv").write_text("\n".join(([AFFECTNET_HEADER] if val_header else []) + rows(val)) + "\n")
    return root


LFW_PEOPLE = {"Aaron_Eckhart": 1, "Abdullah_Gul": 3, "Ana_Palacio": 2, "Zico": 2}


def lfw(root: Path, bad: bool = False) -> Path:
    for name, n in LFW_PEOPLE.items():
        for k in range(1, n + 1):
            jpeg(
                root / "lfw" / name / f"{name}_{k:04d}.jpg",
                seed=zlib.crc32(f"{name}{k}".encode()) % 10_000,
                size=(250, 250),
            )
    train = ["Abdullah_Gul\t3", "Aaron_Eckhart\t1"] + (["Broken_Line"] if bad else [])
    test = ["Ana_Palacio\t2", "Zico\t2"]
    (root / "peopleDevTrain.txt").write_text(f"{len(train)}\n" + "\n".join(train) + "\n")
    (root / "peopleDevTest.txt").write_text(f"{len(test)}\n" + "\n".join(test) + "\n")
    (root / "people.txt").write_text("2\n2\nAbdullah_Gul\t3\nAaron_Eckhart\t1\n2\nAna_Palacio\t2\nZico\t2\n")
    (root / "pairs.txt").write_text(
        "2\t1\nAbdullah_Gul\t1\t3\nAaron_Eckhart\t1\tZico\t2\nAna_Palacio\t1\t2\nZico\t1\tAbdullah_Gul\t2\n"
    )
    (root / "pairsDevTrain.txt").write_text("1\nAbdullah_Gul\t1\t2\nAaron_Eckhart\t1\tAbdullah_Gul\t3\n")
    if bad:
        corrupt_jpeg(root / "lfw" / "Abdullah_Gul" / "Abdullah_Gul_0002.jpg")
    return root


def facecaption(root: Path, bad: bool = False) -> Path:
    """FaceCaption-v2.parquet's columns (_id, url, box as a JSON string, caption/laion_caption as lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = ["000000001", "000000002", "000000003", "000000004"]
    table = pa.table(
        {
            "_id": ids,
            "url": [f"https://example.org/{i}.jpg" for i in ids],
            "box": [
                "[10, 12, 90, 110]",
                "[5, 5, 60, 70]",
                "[0, 0, 50, 50]",
                "[30, 30, 20, 20]" if bad else "[1, 2, 40, 44]",
            ],
            "caption": [
                ["The woman has long brown hair and is smiling."],
                ["A man with a short beard."],
                ["This person wears glasses."],
                ["A young child with curly hair."],
            ],
            "laion_caption": [["photo of a woman"], ["portrait"], [], ["kid"]],
        }
    )
    pq.write_table(table, root / "FaceCaption-v2.parquet")
    for i, rid in enumerate(ids[:3] if bad else ids):  # bad: the 4th image was never downloaded
        jpeg(root / "images" / f"{rid}.jpg", seed=i, size=(128, 128))
    if bad:
        corrupt_jpeg(root / "images" / f"{ids[2]}.jpg")
    return root


def imagefolder(root: Path, bad: bool = False) -> Path:
    for split, classes in {"train": ["happy", "Angry", "neutral"], "test": ["sad"]}.items():
        for c, cls in enumerate(classes):
            for k in range(2):
                jpeg(root / split / cls / f"{k}.jpg", seed=c * 10 + k + (100 if split == "test" else 0))
    if bad:
        corrupt_jpeg(root / "train" / "happy" / "2.jpg")
        jpeg(root / "train" / "contempt" / "0.jpg", seed=77)
    return root


def jsonl(root: Path, bad: bool = False) -> Path:
    objs = [
        {
            "image": "img/a.jpg",
            "identity": "p1",
            "box": [4, 4, 40, 44],
            "attributes": {"Eyeglasses": "1", "expression": "happy"},
            "captions": ["A person with glasses, smiling."],
            "split": "train",
        },
        {
            "image": "img/b.jpg",
            "attributes": [{"name": "age", "value": "31", "origin": "pseudo", "prob": 0.7, "model": "m"}],
            "caption": "Someone.",
            "split": "test",
        },
        {"image": "img/c.jpg", "identity": "p2"},
    ]
    for i, name in enumerate("abc"):
        jpeg(root / "img" / f"{name}.jpg", seed=i)
    lines = [json.dumps(o) for o in objs]
    if bad:
        lines.insert(1, '{"image": "img/a.jpg", "attributes": ')  # a truncated line
        lines.append(json.dumps({"image": "img/c.jpg", "attributes": {"expression": "bored"}}))
    (root / "faces.jsonl").write_text("\n".join(lines) + "\n")
    return root / "faces.jsonl"


def samples(root: Path, frames: int = 12) -> Path:
    """A samples asset folder: two photos and one short MP4 written with OpenCV."""
    import cv2
    import numpy as np

    jpeg(root / "photo1.jpg", seed=1, size=(160, 120))
    jpeg(root / "photo2.jpg", seed=2, size=(160, 120))
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for k in range(frames):
        writer.write(np.full((48, 64, 3), 10 * k, dtype=np.uint8))
    writer.release()
    entries = [
        {
            "file": "photo1.jpg",
            "source_package": "pkg-a 1.0",
            "licence": "public domain",
            "kind": "image",
            "labels": {"identity": "grace", "expression": "happy"},
        },
        {"file": "photo2.jpg", "source_package": "pkg-b 2.0", "licence": "MIT", "kind": "image", "labels": {}},
        {"file": "clip.mp4", "source_package": "pkg-c 3.0", "licence": "CC0", "kind": "video", "labels": {}},
    ]
    (root / "samples.json").write_text(json.dumps(entries))
    return root
