"""Extensions: plain Python modules whose event handlers run as a span processor.

``api`` holds what an extension sees (``ExtensionAPI``, ``ExtensionContext``,
``CommandDefinition``, ``LoadedExtension``); ``loader`` imports extension modules;
``processor`` is the ``ExtensionSpanProcessor`` that loads them and receives the events the
aggregator builds from spans; ``registry`` keeps what each extension registered;
``dispatch`` delivers each event to its handlers, ``decide`` folds their answers at a
decision point into one verdict; ``handlers`` calls async handlers and reports failing
ones; ``async_runner`` runs ``async def`` handlers on one background loop per extension.
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
