"""Provider names: OpenTelemetry GenAI names and common spellings -> genai-prices ids.

Provider names may be OpenTelemetry GenAI names (``gcp.vertex_ai``, ``aws.bedrock``,
``mistral_ai``, ``x_ai``, ``azure.ai.openai`` ...) or ``genai-prices`` ids; an empty or
unknown provider falls back to matching by model name alone.
"""

from __future__ import annotations

__all__ = ["KNOWN_PROVIDER_NAMES", "provider_key"]

# OpenTelemetry GenAI provider names (current and legacy gen_ai.system values) and common
# spellings -> genai-prices provider ids. Names not listed are passed to genai-prices as is.
_PROVIDER_ALIASES: dict[str, str] = {
    alias: provider_id
    for provider_id, aliases in {
        "openai": ("openai",),
        "azure": (
            "azure.ai.openai",
            "az.ai.openai",
            "azure.ai.inference",
            "az.ai.inference",
            "azure_openai",
            "azure",
        ),
        "anthropic": ("anthropic",),
        "google": (
            "gcp.gemini",
            "gcp.vertex_ai",
            "gcp.gen_ai",
            "google",
            "gemini",
            "vertex_ai",
            "vertexai",
            "google_genai",
        ),
        "aws": ("aws.bedrock", "bedrock", "aws"),
        "mistral": ("mistral_ai", "mistralai", "mistral"),
        "deepseek": ("deepseek",),
        "x-ai": ("x_ai", "xai", "x-ai"),
        "cohere": ("cohere",),
        "groq": ("groq",),
        "perplexity": ("perplexity",),
        "together": ("together", "together_ai"),
        "fireworks": ("fireworks", "fireworks_ai"),
        "openrouter": ("openrouter",),
        "cerebras": ("cerebras",),
        "moonshotai": ("moonshot", "moonshotai"),
    }.items()
    for alias in aliases
}
KNOWN_PROVIDER_NAMES = frozenset(_PROVIDER_ALIASES) | frozenset(_PROVIDER_ALIASES.values())
"""Every provider name or alias known here.

A "provider:model" override key is split only on these, because model ids may hold a colon
themselves (Bedrock's "anthropic.claude-3-5-sonnet-20240620-v1:0", Ollama's "llama3:8b").
"""


def provider_key(provider: str | None) -> str:
    """The genai-prices id of ``provider``, or its lower-cased name when it has no alias."""
    name = (provider or "").strip().lower()
    return _PROVIDER_ALIASES.get(name, name)
