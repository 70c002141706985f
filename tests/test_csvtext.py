"""The encodings every CSV upload reads (ccserver.csvtext): UTF-8 with or without a BOM, else GB18030/GBK."""

from __future__ import annotations

import pytest

from ccserver.admin import crm_import
from ccserver.csvtext import UndecodableCSV, decode

CHINESE = "姓名,号码\n张三,13800138000\n欧阳𠀀,13912345678\n"  # 𠀀: a four-byte GB18030 character, not in GBK


@pytest.mark.parametrize(("data", "text", "encoding"), [
    (CHINESE.encode("utf-8"), CHINESE, "utf-8"),
    (b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), CHINESE, "utf-8-sig"),  # the BOM dropped
    (CHINESE.encode("gb18030"), CHINESE, "gb18030"),
    (b"number\n13800138000\n", "number\n13800138000\n", "utf-8"),
])
def test_each_encoding_reads_back_the_text(data: bytes, text: str, encoding: str) -> None:
    assert decode(data) == (text, encoding)


def test_a_gbk_excel_export_reads_as_gb18030() -> None:
    text = "客户姓名,手机号码\n李四,13800138000\n"
    assert decode(text.encode("gbk")) == (text, "gb18030")


@pytest.mark.parametrize(("data", "offset"), [
    (b"number\n13800138000\n\xff\xfe", 19),  # 0xFF leads no GB18030 sequence
    (b"\x81\x30\xff\xff", 0),  # a four-byte GB18030 start cut short
    (b"\xef\xbb\xbfname\n\xff", 8),  # a BOM says UTF-8: the offset counts from the file's first byte
])
def test_undecodable_bytes_name_their_offset(data: bytes, offset: int) -> None:
    with pytest.raises(UndecodableCSV) as caught:
        decode(data)
    assert caught.value.offset == offset
    assert str(caught.value) == f"the file is neither UTF-8 nor GB18030/GBK (byte {offset})"


def test_the_crm_import_reports_the_same_error() -> None:
    with pytest.raises(crm_import.ImportError_, match=r"neither UTF-8 nor GB18030/GBK \(byte 8\)"):
        crm_import.read_table("customers", b"\xef\xbb\xbfname\n\xff")
