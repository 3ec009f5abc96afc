"""Drop-in instrumentation of provider SDKs: ``tel.instrument("openai", "anthropic")``.

Every call of a patched SDK method becomes kit-telemetry's own LLM call (a ``chat
{model}`` span in the current run, or in an implicit run), admitted against every budget
before the request is sent, then priced and recorded from the usage the provider returns.
The SDKs are optional: each is imported only when ``instrument`` names it.

Modules: ``instrumentor`` (what is patched, and undoing it), ``patch`` (one method
swapped and restored), ``methods`` (the sync and async wrappers), ``call`` (one SDK call
as a kit LLM call), ``streams`` (streams that end their call), ``estimate`` (input
estimates for admission), ``arguments`` (reading SDK keyword arguments), and one module
per SDK: ``openai`` and ``anthropic``.
"""

from __future__ import annotations

from .instrumentor import PROVIDERS, ProviderInstrumentor

__all__ = ["PROVIDERS", "ProviderInstrumentor"]
