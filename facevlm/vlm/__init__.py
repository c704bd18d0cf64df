"""FaceVLM: a stock vision-language architecture (Idefics3, the SmolVLM layout) that vLLM serves unpatched.

The vision tower is the one pretrained ViT that installs offline, the DINOv2 ViT-S/14 of the
`dinov2-vits14-imgfocus` asset, converted onto Idefics3's SigLIP-style vision transformer by
`facevlm.vlm.dinov2`. Modules import torch and transformers at the top, so nothing here is imported by
`facevlm --help`; commands reach them through lazy entry points.
"""
