import sys

import pytest

from seq2seq.fast.allocator import reuse_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_applies_on_linux_glibc_and_can_be_repeated():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert reuse_freed_memory() is True
    assert reuse_freed_memory() is True  # idempotent: training and decoding both call it


def test_elsewhere_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert reuse_freed_memory() is False
