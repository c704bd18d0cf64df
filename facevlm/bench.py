"""`facevlm bench …`: speed and memory benchmarks, each against its reference in the same run.

Results are printed as Markdown rows for docs/benchmarks.md together with the command line that
produced them; nothing here is asserted in tests.
"""

from facevlm.lazycli import lazy_group

bench = lazy_group(
    "bench",
    "Speed/memory benchmarks, each compared with its reference in the same run.",
    {
        "detect": (
            "facevlm.data.detect_bench:bench_detect",
            "Face detectors: recall on the real labels (--real), ms/image.",
        ),
        "synth": ("facevlm.data.synth.bench:bench_synth", "Synthetic renderer images/s."),
        "probe": ("facevlm.data.synth.probe:probe_cmd", "Linear probe on frozen MobileNetV2 features of renders."),
        "clip": ("facevlm.clip.bench:bench_clip", "FaceCLIP embedding throughput vs open_clip's own forward."),
        "vlm": ("facevlm.vlm.bench_chat:bench_vlm", "FaceVLM in-process generation tokens/s per batch, bf16 vs fp32."),
        "search": ("facevlm.index.bench:bench_search", "Search latency (exact) and ANN recall vs exact."),
        "cluster": (
            "facevlm.index.cluster_bench:bench_cluster",
            "Clustering quality (pairwise/BCubed F1) on labelled faces.",
        ),
        "load": ("facevlm.index.loadtest:load_cmd", "Concurrent search clients against a running gateway."),
        "chat-load": (
            "facevlm.serve.chat_bench:chat_load_cmd",
            "Concurrent streamed chat clients against the gateway: p50/p95 latency, time to first token, 5xx.",
        ),
        "chat-backends": (
            "facevlm.serve.chat_bench_backends:chat_backends_cmd",
            "Chat tokens/s: vLLM direct vs gateway on vLLM vs gateway in-process; the gateway's overhead.",
        ),
        "vit": ("facevlm.vlm.bench_vit:bench_vit", "What dropping DINOv2's CLS token costs: cosine, linear probe."),
    },
)
