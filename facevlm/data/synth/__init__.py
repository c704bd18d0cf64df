"""Procedural synthetic faces with exact labels (identity, expression, accessories, hair, pose...).

`generate(SynthConfig(...), workers=...)` yields `FaceRecord`s; `facevlm data synth` saves them;
`facevlm bench synth` measures speed and `facevlm bench probe` checks that labels are learnable from
pixels by a frozen ImageNet backbone. See data/cards/synthetic.md.
"""

from facevlm.data.synth.generate import SynthConfig, generate

__all__ = ["SynthConfig", "generate"]
