"""xbench and BrowseComp decryption."""

from __future__ import annotations

import base64
import hashlib

import pytest

from branchgym.envs.benchmarks.decrypt import (
    browsecomp_decrypt,
    browsecomp_encrypt,
    xbench_decrypt,
    xbench_encrypt,
    xor_bytes,
)


def test_xbench_key_is_the_canary_bytes_repeated() -> None:
    canary = "ab"
    # "Hi!" XOR "aba" by hand: H^a, i^b, !^a
    expected = bytes([ord("H") ^ ord("a"), ord("i") ^ ord("b"), ord("!") ^ ord("a")])
    assert xbench_decrypt(base64.b64encode(expected).decode(), canary) == "Hi!"


def test_browsecomp_key_is_sha256_of_the_canary_repeated() -> None:
    canary = "canary-x"
    key = hashlib.sha256(canary.encode()).digest()
    plain = ("答案 " * 20).encode()  # longer than one 32-byte key block
    cipher = bytes(p ^ key[i % 32] for i, p in enumerate(plain))
    assert browsecomp_decrypt(base64.b64encode(cipher).decode(), canary) == plain.decode()


@pytest.mark.parametrize("text", ["", "1887", "卡斯帕里镇的图书馆", "x" * 1000])
def test_round_trips(text: str) -> None:
    assert xbench_decrypt(xbench_encrypt(text, "guid-1"), "guid-1") == text
    assert browsecomp_decrypt(browsecomp_encrypt(text, "guid-2"), "guid-2") == text


def test_bad_input_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="canary string must not be empty"):
        xor_bytes(b"abc", b"")
    assert xbench_decrypt(xbench_encrypt("secret", "right"), "wrong key") != "secret"
    with pytest.raises(ValueError, match="not valid base64.*already decrypted"):
        xbench_decrypt("abc", "k")
