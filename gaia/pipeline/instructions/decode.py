"""A sidecar's bytes as text: UTF-8 (a BOM allowed), or UTF-16 when a BOM says so.

Subtitle files come from many editors: UTF-8 with a BOM (Windows tools) and UTF-16 (older
ones, always with a BOM) are common and unambiguous. Anything else (Latin-1, UTF-32, UTF-16
without a BOM, whose NUL bytes pass as UTF-8) cannot be told from noise reliably, so it is
refused with a reason rather than guessed: a wrong guess would put wrong text into the
instructions.
"""

from __future__ import annotations

import codecs

from gaia.pipeline.instructions.raw import SidecarError

_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)  # checked first: LE starts like UTF-16
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_ADVICE = "save the sidecar as UTF-8 and measure again"


def decode_text(data: bytes) -> str:
    """The text of ``data``; ``SidecarError("sidecar_encoding")`` when it is not UTF-8 or
    UTF-16 with a BOM."""
    try:
        if data.startswith(codecs.BOM_UTF8):
            text = data[len(codecs.BOM_UTF8):].decode("utf-8")
        elif data.startswith(_UTF32_BOMS):
            raise SidecarError("sidecar_encoding", f"UTF-32 is not read: {_ADVICE}")
        elif data.startswith(_UTF16_BOMS):
            text = data.decode("utf-16")  # the BOM says which byte order
        else:
            text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SidecarError("sidecar_encoding", f"not valid UTF-8 or UTF-16 ({err.reason} at "
                           f"byte {err.start}): {_ADVICE}") from None
    if "\x00" in text:  # valid UTF-8, but no text file holds NUL: UTF-16 without a BOM
        raise SidecarError("sidecar_encoding", f"holds NUL characters (UTF-16 or UTF-32 "
                           f"without a BOM, or not text): {_ADVICE}")
    return text
