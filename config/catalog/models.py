"""Model architectures the capacity planner knows (from each model's config.json / card).

`params_b` is the total parameter count in billions (all experts for MoE: every expert's
weights stay resident). `weight_bytes` is bytes per parameter as published (2 = bf16,
1 = FP8); `kv_bytes` is bytes per KV-cache element (engines keep bf16 KV unless told
otherwise). A model missing here needs `model_spec` in the graph config.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    params_b: float
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_context: int
    weight_bytes: float = 2.0
    kv_bytes: float = 2.0

    @property
    def weights_bytes_total(self) -> float:
        return self.params_b * 1e9 * self.weight_bytes

    def kv_bytes_per_token(self, tensor_parallel: int = 1) -> float:
        """K and V for every layer, per GPU. With TP > KV heads, engines replicate heads, so
        each GPU still holds at least one."""
        heads_per_gpu = max(1.0, self.kv_heads / tensor_parallel)
        return 2 * self.layers * heads_per_gpu * self.head_dim * self.kv_bytes

    @property
    def dtype_name(self) -> str:
        return {2.0: "bf16", 1.0: "fp8", 0.5: "int4"}.get(self.weight_bytes, f"{self.weight_bytes}B")


_LLAMA_31_8B = ModelSpec(8.03, 32, 4096, 32, 8, 128, 131072)
_LLAMA_31_70B = ModelSpec(70.6, 80, 8192, 64, 8, 128, 131072)
_LLAMA_31_405B = ModelSpec(405.9, 126, 16384, 128, 8, 128, 131072)

MODELS: dict[str, ModelSpec] = {
    # Llama 3.x (meta-llama)
    "meta-llama/Llama-3.1-8B": _LLAMA_31_8B,
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA_31_8B,
    "meta-llama/Llama-3.1-70B": _LLAMA_31_70B,
    "meta-llama/Llama-3.1-70B-Instruct": _LLAMA_31_70B,
    "meta-llama/Llama-3.3-70B-Instruct": _LLAMA_31_70B,
    "meta-llama/Llama-3.1-405B-Instruct": _LLAMA_31_405B,
    "meta-llama/Llama-3.2-1B-Instruct": ModelSpec(1.24, 16, 2048, 32, 8, 64, 131072),
    "meta-llama/Llama-3.2-3B-Instruct": ModelSpec(3.21, 28, 3072, 24, 8, 128, 131072),
    "nvidia/Llama-3.1-8B-Instruct-FP8": ModelSpec(8.03, 32, 4096, 32, 8, 128, 131072, weight_bytes=1.0),
    "nvidia/Llama-3.1-70B-Instruct-FP8": ModelSpec(70.6, 80, 8192, 64, 8, 128, 131072, weight_bytes=1.0),
    # DeepSeek-R1 distillations (Llama 3.1-8B / 3.3-70B and Qwen2.5 bases)
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": _LLAMA_31_8B,
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": _LLAMA_31_70B,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": ModelSpec(1.78, 28, 1536, 12, 2, 128, 131072),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": ModelSpec(7.62, 28, 3584, 28, 4, 128, 131072),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": ModelSpec(14.8, 48, 5120, 40, 8, 128, 131072),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": ModelSpec(32.8, 64, 5120, 40, 8, 128, 131072),
    # Qwen3 (head_dim 128 is set explicitly in their config, not hidden/heads)
    "Qwen/Qwen3-0.6B": ModelSpec(0.6, 28, 1024, 16, 8, 128, 40960),
    "Qwen/Qwen3-8B": ModelSpec(8.2, 36, 4096, 32, 8, 128, 40960),
    "Qwen/Qwen3-14B": ModelSpec(14.8, 40, 5120, 40, 8, 128, 40960),
    "Qwen/Qwen3-32B": ModelSpec(32.8, 64, 5120, 64, 8, 128, 40960),
    "Qwen/Qwen3-30B-A3B": ModelSpec(30.5, 48, 2048, 32, 4, 128, 40960),
    "Qwen/Qwen3-235B-A22B": ModelSpec(235.0, 94, 4096, 64, 4, 128, 40960),
}

_BY_LOWER = {name.lower(): spec for name, spec in MODELS.items()}


# Models that write their reasoning between think tags, and the Dynamo parser that takes it
# out of `content` (names from config/catalog/dynamo_parsers.json; a test checks they exist).
REASONING_PARSER_BY_PREFIX: dict[str, str] = {
    "deepseek-ai/deepseek-r1": "deepseek_r1",
    "qwen/qwen3-": "qwen3",
}


def reasoning_parser_for(model_id: str) -> str | None:
    lowered = model_id.lower()
    for prefix, parser in REASONING_PARSER_BY_PREFIX.items():
        if lowered.startswith(prefix):
            return parser
    return None


def find_model(model_id: str) -> ModelSpec | None:
    """Hugging Face ids are case-insensitive on the Hub; so is this lookup."""
    return _BY_LOWER.get(model_id.lower())
