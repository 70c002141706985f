"""The text of an uploaded CSV file, whatever encoding the dealers' tools wrote it in.

Chinese Excel and the seeds' CRM systems save CSV as GBK; newer tools save UTF-8, often with a BOM. Every CSV
upload (the CRM import, the DNC list, a campaign's targets) reads its bytes here, so they all accept the same
files: UTF-8 with a BOM, UTF-8, else GB18030 (a superset of GBK and GB2312). UTF-8 is tried first because a UTF-8
file of Chinese text is almost never valid GB18030 by accident, while the reverse is not so.
"""

from __future__ import annotations

from ccserver.texts import T

__all__ = ["UndecodableCSV", "decode"]

_BOM = b"\xef\xbb\xbf"


class UndecodableCSV(ValueError):
    """The bytes are neither UTF-8 nor GB18030; ``offset`` is the first byte (from 0) that is neither."""

    def __init__(self, offset: int):
        super().__init__(T("the file is neither UTF-8 nor GB18030/GBK (byte {offset})", offset=offset))
        self.offset = offset


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): ``utf-8-sig`` (the BOM dropped), ``utf-8`` or ``gb18030``; :class:`UndecodableCSV`
    naming the offending byte's offset in ``data`` otherwise."""
    if data.startswith(_BOM):
        try:
            return data[len(_BOM):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:  # a BOM says UTF-8: no guessing another encoding after it
            raise UndecodableCSV(exc.start + len(_BOM)) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise UndecodableCSV(exc.start) from None
