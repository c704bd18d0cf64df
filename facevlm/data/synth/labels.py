"""Ground-truth labels of a render, read off the parameters that drew it.

Only what is drawn is labelled: hair colour is not labelled on a bald head, earrings only when at least
one is visible at this pose, and attributes the renderer cannot show (Attractive, Big_Nose, Chubby,
Wavy_Hair ...) are left out rather than guessed. Every value has origin "gt".
"""

from __future__ import annotations

from facevlm.data.synth.expressions import mouth_is_open
from facevlm.data.synth.identity import Identity
from facevlm.data.synth.render import Rendered
from facevlm.data.synth.scene import Scene
from facevlm.schema import AttributeValue, age_to_group

YOUNG_MAX_AGE = 35  # CelebA's "Young" has no stated cut-off; 35 is ours and is recorded in the card


def labels(ident: Identity, scene: Scene, out: Rendered) -> list[AttributeValue]:
    bald = ident.hair_length == "bald"
    fh = ident.facial_hair
    values: dict[str, object] = {
        "expression": scene.expression,
        "Smiling": scene.expression == "happy",
        "Mouth_Slightly_Open": mouth_is_open(out.shape),
        "age": ident.age,
        "age_group": age_to_group(ident.age),
        "Young": ident.age <= YOUNG_MAX_AGE,
        "gender_presentation": ident.gender_presentation,
        "Male": ident.masculine,
        "skin_tone": ident.skin_tone,
        "Pale_Skin": ident.skin_tone == "1",
        "yaw": round(scene.yaw, 2),
        "pitch": round(scene.pitch, 2),
        "roll": round(scene.roll, 2),
        "Eyeglasses": scene.eyewear != "none",
        "sunglasses": scene.eyewear == "sunglasses",
        "5_o_Clock_Shadow": fh == "stubble",
        "Mustache": fh in ("moustache", "full"),
        "Goatee": fh == "goatee",
        "Sideburns": fh == "full",
        "No_Beard": fh in ("none", "stubble", "moustache"),
        "hair_length": ident.hair_length,
        "Bald": bald,
        "Bangs": ident.bangs and not bald,
        "Receding_Hairline": not bald and ident.hairline > 0.1,
        "Black_Hair": not bald and ident.hair_color == "black",
        "Brown_Hair": not bald and ident.hair_color == "brown",
        "Blond_Hair": not bald and ident.hair_color == "blond",
        "Gray_Hair": not bald and ident.hair_color in ("gray", "white"),
        "Wearing_Hat": out.drawn["hat"],
        "Wearing_Earrings": out.drawn["earrings"],
        "Wearing_Necklace": out.drawn["necklace"],
        "Wearing_Lipstick": scene.lipstick,
        "Heavy_Makeup": scene.heavy_makeup,
        "Rosy_Cheeks": ident.rosy or scene.heavy_makeup,
        "Arched_Eyebrows": ident.brow_arch > 0.07,
        "Bushy_Eyebrows": ident.brow_thick > 0.09,
    }
    if not bald:
        values["hair_color"] = ident.hair_color
    return [AttributeValue(name, str(v).lower() if isinstance(v, bool) else v, "gt") for name, v in values.items()]
