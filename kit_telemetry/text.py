"""User-given text (ids, names, content): made valid UTF-8 and bounded at the API's edge.

A Python ``str`` may hold what no exporter can send: a lone surrogate cannot be encoded as
UTF-8 (an OTLP/HTTP batch holding one is dropped whole), and a NUL byte cannot be part of a
file name. Text cleaned here reaches spans, labels, file names and exporters as it is:

- a lone surrogate and a NUL each become U+FFFD (a surrogate *pair* becomes the character
  it spells);
- text longer than its bound keeps its start and ends in ``…#`` and 12 hex digits of a
  hash of the whole value, so two long ids that share a start stay two ids.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._errors import ErrorPolicy

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_PATH_CHARS",
    "MAX_STACKTRACE_CHARS",
    "MAX_TEXT_CHARS",
    "REPLACEMENT_CHAR",
    "clean_content",
    "clean_text",
    "edge_path",
    "edge_text",
]

MAX_TEXT_CHARS: Final = 256
"""The bound of an id or a name, in characters (the bound of a metric label value too)."""

MAX_PATH_CHARS: Final = 4096
"""The bound of a file path shown on a span (PATH_MAX of Linux)."""

MAX_MESSAGE_CHARS: Final = 4096
"""The bound of an exception message on a span."""

MAX_STACKTRACE_CHARS: Final = 32768
"""The bound of an exception's stack trace on a span."""

REPLACEMENT_CHAR: Final = "\ufffd"
"""What a lone surrogate or a NUL becomes."""

_DIGEST_CHARS = 12
_MARKER_CHARS = len("…#") + _DIGEST_CHARS
# Shown in a message instead of a very long value (the whole of it helps no one in a log).
_SHOWN_CHARS = 80


def clean_content(value: str, *, max_chars: int) -> str:
    """Content (a prompt, tool arguments, a result, an error message) fit for a span.

    Cleaned as :func:`clean_text` cleans, but cut to ``max_chars`` characters followed by
    ``...[truncated N chars]``: content is read, not matched, so no hash is needed.

    Args:
        value: the text.
        max_chars: the bound, before the marker.

    Returns:
        The cleaned text (``value`` itself when it was clean and short enough).
    """
    text = _valid(value)
    if len(text) > max_chars:
        text = text[:max_chars] + f"...[truncated {len(text) - max_chars} chars]"
    return text


def _valid(value: str) -> str:
    """``value`` as valid UTF-8 text without NUL."""
    text = value
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # UTF-16 joins a surrogate pair into its character and replaces a lone one.
            text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT_CHAR)
    return text


def clean_text(value: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``value`` as valid UTF-8 text without NUL, of at most ``max_chars`` characters.

    Text that is already clean and short enough is returned as it is (the same object).

    Args:
        value: the text a user gave.
        max_chars: the bound; must leave room for the marker (more than 14).

    Returns:
        The cleaned text.
    """
    text = _valid(value)
    if len(text) > max_chars:
        whole = value.encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(whole).hexdigest()[:_DIGEST_CHARS]
        text = f"{text[: max_chars - _MARKER_CHARS]}…#{digest}"
    return text


def edge_text(
    errors: ErrorPolicy, field: str, value: str, *, max_chars: int = MAX_TEXT_CHARS
) -> str:
    """``value`` cleaned (see :func:`clean_text`); text that needed cleaning is bad input.

    Args:
        errors: the error policy: strict raises, lenient logs and counts.
        field: the parameter, e.g. ``"llm_call.model"``; named in the message.
        value: the text a user gave.
        max_chars: its bound.

    Returns:
        The cleaned text (``value`` itself when it was clean).

    Raises:
        UsageError: strict, and ``value`` needed cleaning; the message names ``field`` and
            shows ``value`` escaped (so the message itself is valid text).
    """
    if len(value) <= max_chars and value.isascii() and "\x00" not in value:
        return value  # the common case, without a second call
    cleaned = clean_text(value, max_chars=max_chars)
    if cleaned == value:
        return value
    if len(value) > max_chars:
        problem = f"is {len(value)} characters long, more than {max_chars}"
        shown = ascii(value[:_SHOWN_CHARS]) + "..."
    else:
        problem = "holds a lone surrogate or a NUL, which is not valid text"
        shown = ascii(value)
    errors.bad_input(field, f"{field} {problem}: {shown}; recorded as {cleaned!a}")
    return cleaned


def edge_path(errors: ErrorPolicy, field: str, path: str) -> str:
    """``path`` if the file system can name it, else cleaned; a path it cannot is bad input.

    A name the operating system gave (``os.listdir`` spells undecodable bytes as lone
    surrogates) is kept as it is, so its file is found; only a span shows it cleaned.

    Args:
        errors: the error policy: strict raises, lenient logs and counts.
        field: the parameter, e.g. ``"session.session_file"``; named in the message.
        path: the path a user gave.

    Returns:
        ``path``, or its cleaned text when it holds a NUL or cannot be encoded.

    Raises:
        UsageError: strict, and no file can have this path.
    """
    if "\x00" not in path:
        try:
            os.fsencode(path)
        except UnicodeEncodeError:
            pass
        else:
            return path
    cleaned = clean_text(path, max_chars=MAX_PATH_CHARS)
    errors.bad_input(
        field,
        f"{field} holds a NUL or a character no file name can hold: {path!a}; "
        f"recorded as {cleaned!a}",
    )
    return cleaned
