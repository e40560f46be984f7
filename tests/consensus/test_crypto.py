"""Ed25519 keys: domain separation, key files, batch verification."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consensus import crypto
from consensus.crypto import KeyFileError, PrivateKey, SignedItem, signed_bytes, verify

KEY = PrivateKey.from_seed(bytes(range(32)))
OTHER = PrivateKey.from_seed(bytes(range(1, 33)))

domains = st.sampled_from(
    [
        crypto.DOMAIN_TX,
        crypto.DOMAIN_PREPARE,
        crypto.DOMAIN_COMMIT,
        crypto.DOMAIN_PREPREPARE,
        crypto.DOMAIN_VIEW_CHANGE,
        crypto.DOMAIN_NEW_VIEW,
        crypto.DOMAIN_HANDSHAKE,
    ]
) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz/-0123456789", min_size=1, max_size=64)
chains = st.binary(min_size=32, max_size=32)
C = bytes(32)  # a genesis hash


@settings(max_examples=300, deadline=None)
@given(domains, chains, st.binary(max_size=200), domains, chains, st.binary(max_size=200))
def test_signature_never_verifies_for_another_domain_chain_or_message(
    d1: str, c1: bytes, m1: bytes, d2: str, c2: bytes, m2: bytes
) -> None:
    assume((d1, c1, m1) != (d2, c2, m2))
    sig = KEY.sign(d1, c1, m1)
    assert verify(KEY.public, d1, c1, m1, sig)
    assert not verify(KEY.public, d2, c2, m2, sig)
    assert signed_bytes(d1, c1, m1) != signed_bytes(d2, c2, m2)


def test_domain_boundary_cannot_be_shifted_into_the_chain() -> None:
    # Without length prefixes, ("ab", "c...") and ("a", "bc...") would sign the same bytes.
    sig = KEY.sign("vigil/ab", bytes(range(32)), b"cdef")
    assert not verify(KEY.public, "vigil/a", b"b" + bytes(range(31)), bytes([31]) + b"cdef", sig)


def test_wrong_key_bad_lengths_and_garbage_do_not_verify() -> None:
    sig = KEY.sign(crypto.DOMAIN_TX, C, b"m")
    assert not verify(OTHER.public, crypto.DOMAIN_TX, C, b"m", sig)
    assert not verify(KEY.public, crypto.DOMAIN_TX, C, b"m", sig[:-1])
    assert not verify(KEY.public[:31], crypto.DOMAIN_TX, C, b"m", sig)
    assert not verify(b"\xff" * 32, crypto.DOMAIN_TX, C, b"m", sig)
    assert not verify(KEY.public, crypto.DOMAIN_TX, C, b"m", bytes(64))


def test_domain_and_chain_length_limits() -> None:
    crypto.signed_bytes("d" * crypto.MAX_DOMAIN_BYTES, C, b"")
    with pytest.raises(ValueError):
        crypto.signed_bytes("d" * (crypto.MAX_DOMAIN_BYTES + 1), C, b"")
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(ValueError, match="genesis hash"):
            crypto.signed_bytes("d", bad, b"")
    with pytest.raises(ValueError):
        crypto.signed_bytes("", C, b"")


def test_public_keys_shown_as_lowercase_hex() -> None:
    text = crypto.key_hex(KEY.public)
    assert text == text.lower() and len(text) == 64
    assert crypto.parse_key_hex(text.upper()) == KEY.public
    for bad in ["", "zz" * 32, text[:-2], text + "00"]:
        with pytest.raises(ValueError):
            crypto.parse_key_hex(bad)


def test_key_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    KEY.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PrivateKey.load(path).public == KEY.public
    assert "PRIVATE" not in repr(PrivateKey.load(path))


def test_saving_over_an_existing_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    KEY.save(path)
    with pytest.raises(KeyFileError, match="already exists"):
        OTHER.save(path)
    assert PrivateKey.load(path).public == KEY.public
    OTHER.save(path, overwrite=True)
    assert PrivateKey.load(path).public == OTHER.public


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o666])
def test_loading_a_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    KEY.save(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        PrivateKey.load(path)


def test_loading_missing_or_garbage_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        PrivateKey.load(tmp_path / "missing.key")
    junk = tmp_path / "junk.key"
    junk.write_bytes(b"not a key")
    os.chmod(junk, 0o600)
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        PrivateKey.load(junk)
    with pytest.raises(KeyFileError, match="not a regular file"):
        PrivateKey.load(tmp_path)


def test_loading_a_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "ec.key"
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        PrivateKey.load(path)


def _items(n: int, bad: set[int]) -> list[SignedItem]:
    items = []
    for i in range(n):
        msg = f"message {i}".encode()
        sig = KEY.sign(crypto.DOMAIN_PREPARE, C, msg)
        if i in bad:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        items.append(SignedItem(KEY.public, crypto.DOMAIN_PREPARE, C, msg, sig))
    return items


@pytest.mark.parametrize("n", [0, 1, crypto.BATCH_INLINE_BELOW - 1, crypto.BATCH_INLINE_BELOW, 257])
def test_batch_verification_reports_each_item(n: int) -> None:
    bad = {i for i in range(n) if i % 7 == 3}
    items = _items(n, bad)
    expected = [i not in bad for i in range(n)]
    assert crypto.verify_batch(items) == expected
    assert crypto.verify_batch(items, threads=1) == expected


# Fault 6: small-order and non-canonical Ed25519 public keys parsed, and one fixed signature
# verified for every message under the identity point. The eight small-order points in their
# canonical encodings, then encodings that are not canonical.
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
]
NON_CANONICAL = [
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1
    "0100000000000000000000000000000000000000000000000000000000000080",  # x = 0, sign set
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # y > p
]


def test_the_identity_key_lets_one_signature_verify_every_message() -> None:
    """Why weak keys are refused: `cryptography` accepts this key and this signature."""
    identity = bytes.fromhex(SMALL_ORDER[0])
    forged = bytes.fromhex(SMALL_ORDER[0]) + bytes(32)  # R = identity, S = 0
    assert all(crypto.verify(identity, "vigil/tx/v1", bytes(32), m, forged) for m in (b"a", b"b"))


@pytest.mark.parametrize("text", SMALL_ORDER + NON_CANONICAL)
def test_small_order_and_non_canonical_keys_are_refused(text: str) -> None:
    raw = bytes.fromhex(text)
    with pytest.raises(crypto.WeakKeyError):
        crypto.check_public_key(raw)
    assert not crypto.is_acceptable_public_key(raw)
    with pytest.raises(ValueError):
        crypto.parse_key_hex(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_generated_keys_are_accepted(seed: bytes) -> None:
    public = crypto.PrivateKey.from_seed(seed).public
    crypto.check_public_key(public)
    assert crypto.parse_key_hex(public.hex()) == public


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_get_a_verdict_never_a_crash(raw: bytes) -> None:
    ok = crypto.is_acceptable_public_key(raw)
    if ok:  # an accepted key is a point `cryptography` can use too
        crypto._public_key_object(raw)
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= 2**255 - 19:
        assert not ok
