"""Decryption of the benchmarks that ship encrypted to avoid training-set contamination.

Both schemes XOR base64-decoded ciphertext with a key stream derived from the row's ``canary``
string; they differ only in the key stream.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

__all__ = ["xor_bytes", "xbench_decrypt", "browsecomp_decrypt", "xbench_encrypt",
           "browsecomp_encrypt"]


def xor_bytes(data: bytes, key: bytes) -> bytes:
    """``out[i] = data[i] XOR key[i mod len(key)]`` (a repeating-key XOR)."""
    if not key:
        raise ValueError("the XOR key is empty; the row's canary string must not be empty")
    reps = len(data) // len(key) + 1
    return bytes(a ^ b for a, b in zip(data, key * reps, strict=False))


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not valid base64 ({exc}); is the file already decrypted?") \
            from exc


def xbench_decrypt(ciphertext_b64: str, canary: str) -> str:
    """xbench-DeepSearch: key = the canary string's UTF-8 bytes, repeated.

    Source: ``xbench-ai/xbench-evals`` (``xor_decrypt(base64.b64decode(x), canary)``).
    """
    return xor_bytes(_b64(ciphertext_b64, "xbench field"), canary.encode("utf-8")).decode("utf-8")


def browsecomp_decrypt(ciphertext_b64: str, canary: str) -> str:
    """BrowseComp: key = SHA-256(canary) (32 bytes), repeated to the message length.

    Source: ``openai/simple-evals`` ``browsecomp_eval.py`` (``derive_key`` / ``decrypt``).
    """
    key = hashlib.sha256(canary.encode("utf-8")).digest()
    return xor_bytes(_b64(ciphertext_b64, "BrowseComp field"), key).decode("utf-8")


def xbench_encrypt(plaintext: str, canary: str) -> str:
    """Inverse of :func:`xbench_decrypt` (used to write test fixtures)."""
    return base64.b64encode(xor_bytes(plaintext.encode("utf-8"), canary.encode("utf-8"))).decode()


def browsecomp_encrypt(plaintext: str, canary: str) -> str:
    """Inverse of :func:`browsecomp_decrypt` (used to write test fixtures)."""
    key = hashlib.sha256(canary.encode("utf-8")).digest()
    return base64.b64encode(xor_bytes(plaintext.encode("utf-8"), key)).decode()
