"""Escaping for the HTML report: every string from the trace is untrusted.

Text goes through :func:`esc` into markup and attributes; data for the page's script goes
through :func:`script_json`, which escapes ``<``, ``>`` and ``&`` so a model named
``</script><script>...`` stays text.
"""

from __future__ import annotations

import html
import json


def esc(value: object) -> str:
    """``value`` as text, escaped for HTML markup and quoted attributes."""
    return html.escape(str(value), quote=True)


def script_json(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element whatever the strings hold."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
