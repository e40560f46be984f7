"""Quorum arithmetic and commit certificates."""

from __future__ import annotations

import dataclasses

import pytest
from strategies import CHAIN_HASH as CHAIN
from strategies import KEYS

from consensus.certificate import (
    Certificate,
    CertificateError,
    Vote,
    commit_message,
    max_faulty,
    quorum,
)
from consensus.crypto import DOMAIN_COMMIT, DOMAIN_PREPARE, PrivateKey
from consensus.record import FieldError

VALIDATORS = [k.public for k in KEYS[:4]]
BLOCK = b"\xab" * 32


def certify(
    signers: list[PrivateKey],
    *,
    height: int = 5,
    view: int = 1,
    domain: str = DOMAIN_COMMIT,
    chain: bytes = CHAIN,
) -> Certificate:
    msg = commit_message(height, view, BLOCK)
    votes = sorted(
        (Vote(k.public, k.sign(domain, chain, msg)) for k in signers), key=lambda v: v.encode()
    )
    return Certificate(height, view, BLOCK, tuple(votes))


@pytest.mark.parametrize(
    ("n", "f", "q"),
    [
        (1, 0, 1),
        (2, 0, 2),
        (3, 0, 2),
        (4, 1, 3),
        (5, 1, 4),
        (6, 1, 4),
        (7, 2, 5),
        (10, 3, 7),
        (100, 33, 67),
    ],
)
def test_quorum_values(n: int, f: int, q: int) -> None:
    assert max_faulty(n) == f
    assert quorum(n) == q


@pytest.mark.parametrize("n", range(1, 200))
def test_two_quorums_share_an_honest_validator(n: int) -> None:
    f, q = max_faulty(n), quorum(n)
    assert 2 * q - n >= f + 1  # any two quorums intersect in at least f + 1 validators
    assert q <= n - f  # the honest validators alone form a quorum (liveness)


def test_max_faulty_rejects_empty_set() -> None:
    with pytest.raises(ValueError):
        max_faulty(0)


def test_quorum_certificate_verifies() -> None:
    certify(KEYS[:3]).verify(CHAIN, VALIDATORS)
    certify(KEYS[:4]).verify(CHAIN, VALIDATORS)


def test_one_vote_short_of_quorum_is_refused() -> None:
    with pytest.raises(CertificateError, match="quorum is 3 of 4"):
        certify(KEYS[:2]).verify(CHAIN, VALIDATORS)


def test_outsider_vote_is_refused() -> None:
    with pytest.raises(CertificateError, match="not a validator"):
        certify([*KEYS[:2], KEYS[5]]).verify(CHAIN, VALIDATORS)


def test_signature_over_other_chain_domain_height_or_view_is_refused() -> None:
    cert = certify(KEYS[:3])
    for wrong in (
        certify(KEYS[:3], chain=b"\x01" * 32),
        certify(KEYS[:3], domain=DOMAIN_PREPARE),
    ):
        with pytest.raises(CertificateError, match="bad signature"):
            wrong.verify(CHAIN, VALIDATORS)
    for moved in (
        dataclasses.replace(cert, height=6),
        dataclasses.replace(cert, view=2),
        dataclasses.replace(cert, block_hash=b"\xac" * 32),
    ):
        with pytest.raises(CertificateError, match="bad signature"):
            moved.verify(CHAIN, VALIDATORS)


def test_duplicate_or_unsorted_votes_are_malformed() -> None:
    cert = certify(KEYS[:3])
    with pytest.raises(FieldError, match="sorted and unique"):
        Certificate(5, 1, BLOCK, (cert.votes[0], cert.votes[0], cert.votes[1]))
    with pytest.raises(FieldError, match="sorted and unique"):
        Certificate(5, 1, BLOCK, tuple(reversed(cert.votes)))
    other_sig = Vote(cert.votes[0].validator, bytes(64))
    votes = tuple(sorted((cert.votes[0], other_sig), key=lambda v: v.encode()))
    with pytest.raises(FieldError, match="appears twice"):
        Certificate(5, 1, BLOCK, votes)


def test_certificate_round_trip() -> None:
    cert = certify(KEYS[:3])
    assert Certificate.decode(cert.encode()) == cert
    assert cert.signers() == [v.validator for v in cert.votes]
