"""Ed25519 keys and domain-separated signatures.

Every signature in Vigil is over ``domain || chain || message`` where
``domain`` names the kind of message (``vigil/tx/v1``, ``vigil/commit/v1``,
...) and ``chain`` is the chain's genesis hash (32 bytes). Both are
length-prefixed (one byte each) so no (domain, chain, message) triple can be
shifted into another. A signature therefore never verifies as another kind of
message or on another chain - including a chain reset or copied under the same
chain id, whose genesis (members, clients, params or time) differs.

Public keys travel as 32 raw bytes and are shown to people as lowercase hex.
Private keys are stored as PKCS#8 PEM files with mode 0600; loading a key file
that group or others can read is refused, as OpenSSH does.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
HASH_BYTES = 32
MAX_DOMAIN_BYTES = 64

DOMAIN_TX = "vigil/tx/v1"
DOMAIN_PREPREPARE = "vigil/preprepare/v1"
DOMAIN_PREPARE = "vigil/prepare/v1"
DOMAIN_COMMIT = "vigil/commit/v1"
DOMAIN_VIEW_CHANGE = "vigil/view-change/v1"
DOMAIN_NEW_VIEW = "vigil/new-view/v1"
DOMAIN_BLOCK = "vigil/block/v1"
DOMAIN_BLOCK_REQUEST = "vigil/block-request/v1"
DOMAIN_HANDSHAKE = "vigil/handshake/v2"
DOMAIN_MODEL_UPLOAD = "vigil/model-upload/v1"
"""An uploader's signature of a model artifact's id (its SHA-256): POST /v1/models."""

BATCH_INLINE_BELOW = 64
"""Batches smaller than this are verified on the calling thread (pool overhead dominates)."""

VERIFY_THREADS = max(1, min(8, os.cpu_count() or 1))
"""Worker threads for batch verification; `cryptography` releases the GIL while verifying."""

VERIFY_THREAD_NAME = "vigil-verify"
"""The pool's threads are named this plus ``_<n>`` (a node's metrics count their CPU)."""


class KeyFileError(Exception):
    """A key file is missing, unreadable, too permissive or not an Ed25519 key."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def signed_bytes(domain: str, chain: bytes, message: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers; ``chain`` is the genesis hash."""
    d = domain.encode()
    c = bytes(chain)
    if not 0 < len(d) <= MAX_DOMAIN_BYTES:
        raise ValueError(f"domain must be 1..{MAX_DOMAIN_BYTES} bytes, got {len(d)}")
    if len(c) != HASH_BYTES:
        raise ValueError(f"chain must be a {HASH_BYTES}-byte genesis hash, got {len(c)} bytes")
    return bytes((len(d),)) + d + bytes((len(c),)) + c + message


def key_hex(public_key: bytes) -> str:
    """How a public key is shown to people: 64 lowercase hex digits."""
    return public_key.hex()


def parse_key_hex(text: str, *, allow_weak: bool = False) -> bytes:
    """Parse a public key written as 64 hex digits (either case); raise ValueError otherwise.

    Weak keys (see :func:`check_public_key`) are refused with WeakKeyError unless
    ``allow_weak`` (for naming a key to remove, never to admit one).
    """
    text = text.strip()
    if len(text) != 2 * PUBLIC_KEY_BYTES:
        raise ValueError(f"public key must be {2 * PUBLIC_KEY_BYTES} hex digits, got {len(text)}")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"public key {text!r} is not hexadecimal") from None
    if not allow_weak:
        check_public_key(raw)
    return raw


class WeakKeyError(ValueError):
    """A public key is malformed, non-canonical or of small order: refused where keys enter."""


_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
MAX_KEY_VERDICTS = 4096
"""Public keys whose acceptability is remembered (keys are few: members, admins, clients)."""


def _decode_point(raw: bytes) -> tuple[int, int]:
    """The affine point an encoding names (RFC 8032 5.1.3); refuses what is not canonical."""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise WeakKeyError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    number = int.from_bytes(raw, "little")
    sign, y = number >> 255, number & ((1 << 255) - 1)
    if y >= _P:
        raise WeakKeyError("public key is not canonical (its y coordinate is not below p)")
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    if (v * x * x - u) % _P != 0:
        x = (x * _SQRT_M1) % _P
        if (v * x * x - u) % _P != 0:
            raise WeakKeyError("public key is not a point on the curve")
    if x == 0 and sign:
        raise WeakKeyError("public key is not canonical (x = 0 with the sign bit set)")
    if x & 1 != sign:
        x = _P - x
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Twisted Edwards addition on -x^2 + y^2 = 1 + d x^2 y^2 (complete: no special cases)."""
    (x1, y1), (x2, y2) = a, b
    t = (_D * x1 * x2 * y1 * y2) % _P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, _P - 2, _P)
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P)
    return x3 % _P, y3 % _P


@functools.lru_cache(maxsize=MAX_KEY_VERDICTS)
def check_public_key(raw: bytes) -> None:
    """Raise WeakKeyError unless ``raw`` is a canonical Ed25519 point of large order.

    A small-order key (the identity, for one) lets one fixed signature verify for
    many or all messages, so whoever adds it to a consortium has added a member
    anyone can impersonate. Checked where keys enter: genesis, governance, the
    peer handshake and transaction senders.
    """
    point = _decode_point(bytes(raw))
    for _ in range(3):  # multiply by the cofactor 8
        point = _add(point, point)
    if point == (0, 1):
        raise WeakKeyError("public key has small order (it lets forged signatures verify)")


def is_acceptable_public_key(raw: bytes) -> bool:
    """Whether check_public_key accepts ``raw`` (never raises)."""
    if type(raw) is not bytes:
        return False
    try:
        check_public_key(raw)
    except WeakKeyError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _public_key_object(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_file_problem(path: Path, missing: str = "no such key file") -> str | None:
    """Why ``path`` cannot hold a private key (absent, unreadable, not a regular file, or
    readable by others), or None. Node keys and the API's TLS key are held to the same rule."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{path}: {missing}"
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: not a regular file"
    if st.st_mode & 0o077:
        return (
            f"{path}: permissions {stat.S_IMODE(st.st_mode):04o} let others read this "
            f"private key; run `chmod 600 {path}`"
        )
    return None


class PrivateKey:
    """An Ed25519 signing key. Never printed; only its public half is shown."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public: bytes = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """Deterministic key from a 32-byte seed (tests and simulators)."""
        if len(seed) != 32:
            raise ValueError(f"seed must be 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, domain: str, chain: bytes, message: bytes) -> bytes:
        return self._key.sign(signed_bytes(domain, chain, message))

    def seed(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"PrivateKey(public={key_hex(self.public)})"

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the key as PKCS#8 PEM, readable by the owner only (mode 0600).

        Refuses to replace an existing file unless ``overwrite`` is set.
        """
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PrivateKey:
        """Load a key written by :meth:`save`; refuse files others can read."""
        path = Path(path)
        problem = private_file_problem(path)
        if problem is not None:
            raise KeyFileError(problem)
        try:
            data = path.read_bytes()
            key = serialization.load_pem_private_key(data, password=None)
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: not a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key)


def verify(public_key: bytes, domain: str, chain: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is ``public_key``'s signature of (domain, chain, message)."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        key = _public_key_object(bytes(public_key))
        key.verify(bytes(signature), signed_bytes(domain, chain, message))
    except (InvalidSignature, ValueError):
        return False
    return True


class SignedItem(NamedTuple):
    """One entry of a batch verification (a named tuple: a node makes one per transaction it
    admits, and a frozen dataclass's per-field set cost more than the rest of the entry)."""

    public_key: bytes
    domain: str
    chain: bytes
    message: bytes
    signature: bytes


_pool: ThreadPoolExecutor | None = None


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=VERIFY_THREADS, thread_name_prefix=VERIFY_THREAD_NAME
        )
    return _pool


def _verify_chunk(items: Sequence[SignedItem]) -> list[bool]:
    return [verify(i.public_key, i.domain, i.chain, i.message, i.signature) for i in items]


def verify_batch(items: Sequence[SignedItem], *, threads: int | None = None) -> list[bool]:
    """Verify many signatures, spread over a thread pool; result i is item i's verdict.

    ``threads`` caps the number of chunks (default VERIFY_THREADS); 1 means
    the calling thread does all the work.
    """
    n = len(items)
    workers = min(VERIFY_THREADS if threads is None else threads, VERIFY_THREADS)
    if n < BATCH_INLINE_BELOW or workers <= 1:
        return _verify_chunk(items)
    size = -(-n // workers)
    chunks = [items[i : i + size] for i in range(0, n, size)]
    results: list[bool] = []
    for part in _get_pool().map(_verify_chunk, chunks):
        results.extend(part)
    assert len(results) == n
    return results
