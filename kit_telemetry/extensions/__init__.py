"""Extensions: plain Python modules whose event handlers run as a span processor.

``api`` holds what an extension sees (``ExtensionAPI``, ``ExtensionContext``,
``CommandDefinition``, ``LoadedExtension``); ``loader`` imports extension modules;
``processor`` is the ``ExtensionSpanProcessor`` that turns spans into events and calls
the handlers; ``async_runner`` runs ``async def`` handlers on one background loop.
"""

from .api import CommandDefinition, ExtensionAPI, ExtensionContext, LoadedExtension
from .processor import ExtensionSpanProcessor

__all__ = [
    "CommandDefinition",
    "ExtensionAPI",
    "ExtensionContext",
    "ExtensionSpanProcessor",
    "LoadedExtension",
]
