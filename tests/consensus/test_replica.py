"""Unit tests of the PBFT replica's rules, one rule each, driven by hand-made messages."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from consensus import codec
from consensus.certificate import Certificate, commit_message
from consensus.certificate import Vote as CertVote
from consensus.crypto import DOMAIN_COMMIT, PrivateKey
from consensus.events import (
    BlockPersisted,
    Broadcast,
    BuildProposal,
    CertifiedBlockReceived,
    CommitBlock,
    Fault,
    FetchBlocks,
    MessageReceived,
    Persist,
    ProposalBuilt,
    ProposalValidated,
    RequestSeen,
    RequestsSeen,
    Send,
    ServeBlocks,
    SetTimer,
    Start,
    TimerFired,
    ValidateProposal,
)
from consensus.messages import BLOCK as BLOCK_KIND
from consensus.messages import (
    BLOCK_REQUEST,
    COMMIT,
    NEW_VIEW,
    PRE_PREPARE,
    PREPARE,
    VIEW_CHANGE,
    BlockRef,
    Envelope,
    NewView,
    PreparedProof,
    PrePrepare,
    ViewChange,
    Vote,
    open_envelope,
    seal,
    wire_message,
)
from consensus.replica import (
    TIMER_BEHIND,
    TIMER_REQUEST,
    TIMER_VIEW_CHANGE,
    Replica,
    ReplicaConfig,
    SafetyState,
)
from consensus.sim.app import digest_of

CHAIN = hashlib.sha256(b"vigil-unit/genesis").digest()
KEYS = [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(5)]
VALS = tuple(k.public for k in KEYS[:4])
CONFIG = ReplicaConfig(chain=CHAIN, digest_of=digest_of)
BLOCK = codec.encode(["block", 1])
OTHER_BLOCK = codec.encode(["block", 2])
H = 1  # primary of (height 1, view v) is VALS[(1 + v) % 4]


def primary_index(view: int, height: int = H) -> int:
    return (height + view) % 4


def replica(index: int, *, safety: bytes | None = None, height: int = H) -> Replica:
    r = Replica(CONFIG, KEYS[index], height=height, validators=VALS, safety=safety)
    r.handle(Start())
    return r


def env_of(action: Broadcast) -> tuple[Envelope, object]:
    env = open_envelope(action.data)
    return env, env.open()


def broadcasts(actions: list, kind: str | None = None) -> list[Envelope]:
    out = []
    for a in actions:
        if isinstance(a, Broadcast):
            env = open_envelope(a.data)
            if kind is None or env.kind == kind:
                out.append(env)
    return out


def msg(key: PrivateKey, kind: str, body, block: bytes | None = None) -> MessageReceived:  # type: ignore[no-untyped-def]
    return MessageReceived(wire_message(seal(key, CHAIN, kind, body), block))


def pre_prepare(
    view: int = 0, block: bytes = BLOCK, key: PrivateKey | None = None
) -> MessageReceived:
    key = key or KEYS[primary_index(view)]
    return msg(key, PRE_PREPARE, PrePrepare(H, view, digest_of(block)), block)


def accept_and_validate(r: Replica, view: int = 0, block: bytes = BLOCK) -> list:
    actions = r.handle(pre_prepare(view, block))
    assert any(isinstance(a, ValidateProposal) for a in actions)
    return r.handle(ProposalValidated(H, view, digest_of(block), True))


def test_prepare_only_after_the_application_accepts() -> None:
    r = replica(0)
    actions = r.handle(pre_prepare())
    assert not broadcasts(actions), "no vote before execution"
    actions = r.handle(ProposalValidated(H, 0, digest_of(BLOCK), True))
    assert [e.kind for e in broadcasts(actions)] == [PREPARE]


def test_persist_comes_before_every_vote() -> None:
    r = replica(0)
    actions = accept_and_validate(r)
    kinds = [type(a).__name__ for a in actions if isinstance(a, Persist | Broadcast)]
    assert kinds == ["Persist", "Broadcast"]
    state = SafetyState.decode(next(a for a in actions if isinstance(a, Persist)).state)
    assert state.prepare_vote == Vote(H, 0, digest_of(BLOCK))


def test_quorum_of_prepares_leads_to_commit_and_one_less_does_not() -> None:
    r = replica(0)
    accept_and_validate(r)
    d = digest_of(BLOCK)
    # q = 3 for n = 4: our own prepare plus one more is not enough.
    assert not broadcasts(r.handle(msg(KEYS[2], PREPARE, Vote(H, 0, d))), COMMIT)
    actions = r.handle(msg(KEYS[3], PREPARE, Vote(H, 0, d)))
    assert len(broadcasts(actions, COMMIT)) == 1
    persists = [i for i, a in enumerate(actions) if isinstance(a, Persist)]
    commit_at = next(i for i, a in enumerate(actions) if isinstance(a, Broadcast))
    assert persists and persists[0] < commit_at
    state = SafetyState.decode(actions[persists[0]].state)
    assert state.prepared is not None and len(state.prepared.prepares) == 3


def test_quorum_of_commits_yields_a_valid_certificate() -> None:
    r = replica(0)
    accept_and_validate(r)
    d = digest_of(BLOCK)
    for k in (KEYS[2], KEYS[3]):
        r.handle(msg(k, PREPARE, Vote(H, 0, d)))
    actions = r.handle(msg(KEYS[1], COMMIT, Vote(H, 0, d)))
    assert not any(isinstance(a, CommitBlock) for a in actions)
    actions = r.handle(msg(KEYS[2], COMMIT, Vote(H, 0, d)))
    commit = next(a for a in actions if isinstance(a, CommitBlock))
    assert commit.block == BLOCK
    commit.certificate.verify(CHAIN, VALS)
    assert len(commit.certificate.votes) == 3
    r.handle(BlockPersisted(H, VALS))
    assert r.height == H + 1 and r.view == 0


def test_forged_signature_is_refused_and_changes_nothing() -> None:
    r = replica(0)
    accept_and_validate(r)
    d = digest_of(BLOCK)
    env = seal(KEYS[2], CHAIN, PREPARE, Vote(H, 0, d))
    forged = dataclasses.replace(env, signature=bytes(64))
    actions = r.handle(MessageReceived(wire_message(forged)))
    assert [a.kind for a in actions if isinstance(a, Fault)] == ["bad-signature"]
    assert KEYS[2].public not in r.slot.prepares[(0, d)]


def test_vote_signed_for_another_chain_is_refused() -> None:
    r = replica(0)
    accept_and_validate(r)
    vote = Vote(H, 0, digest_of(BLOCK))
    env = seal(KEYS[2], hashlib.sha256(b"other-chain").digest(), PREPARE, vote)
    actions = r.handle(MessageReceived(wire_message(env)))
    assert any(isinstance(a, Fault) and a.kind == "bad-signature" for a in actions)


def test_messages_from_non_members_and_garbage_are_refused() -> None:
    r = replica(0)
    actions = r.handle(msg(KEYS[4], PREPARE, Vote(H, 0, digest_of(BLOCK))))
    assert [a.kind for a in actions if isinstance(a, Fault)] == ["not-a-validator"]
    for junk in (b"", b"\x93\x01\x02", codec.encode(["prepare", b"x", b"y", b"z"])):
        actions = r.handle(MessageReceived(junk))
        assert [a.kind for a in actions if isinstance(a, Fault)] == ["malformed"]


def test_duplicates_and_replays_are_ignored() -> None:
    r = replica(0)
    accept_and_validate(r)
    vote = msg(KEYS[2], PREPARE, Vote(H, 0, digest_of(BLOCK)))
    r.handle(vote)
    assert r.handle(vote) == []
    assert len(r.slot.prepares[(0, digest_of(BLOCK))]) == 2


def test_pre_prepare_from_non_primary_is_refused() -> None:
    r = replica(0)
    actions = r.handle(pre_prepare(key=KEYS[2]))
    assert [a.kind for a in actions if isinstance(a, Fault)] == ["not-primary"]
    assert not any(isinstance(a, ValidateProposal) for a in actions)


def test_pre_prepare_with_wrong_digest_triggers_view_change() -> None:
    r = replica(0)
    body = PrePrepare(H, 0, digest_of(OTHER_BLOCK))
    actions = r.handle(msg(KEYS[primary_index(0)], PRE_PREPARE, body, BLOCK))
    assert any(isinstance(a, Fault) and a.kind == "bad-digest" for a in actions)
    assert broadcasts(actions, VIEW_CHANGE) and r.view == 1 and r.in_view_change


def test_equivocating_primary_is_replaced() -> None:
    r = replica(0)
    r.handle(pre_prepare(block=BLOCK))
    actions = r.handle(pre_prepare(block=OTHER_BLOCK))
    assert any(isinstance(a, Fault) and a.kind == "equivocation" for a in actions)
    assert broadcasts(actions, VIEW_CHANGE)


def test_invalid_proposal_gets_no_vote_and_a_view_change() -> None:
    r = replica(0)
    r.handle(pre_prepare())
    actions = r.handle(ProposalValidated(H, 0, digest_of(BLOCK), False, "bad root"))
    assert not broadcasts(actions, PREPARE)
    assert broadcasts(actions, VIEW_CHANGE)


def test_request_timer_replaces_a_censoring_primary() -> None:
    r = replica(0)
    actions = r.handle(RequestSeen(b"r" * 32))
    timer = next(a for a in actions if isinstance(a, SetTimer) and a.name == TIMER_REQUEST)
    actions = r.handle(TimerFired(TIMER_REQUEST, timer.token))
    assert any(isinstance(a, Fault) and a.kind == "request-timeout" for a in actions)
    assert broadcasts(actions, VIEW_CHANGE)


def test_primary_builds_only_when_requests_wait() -> None:
    p = replica(primary_index(0))
    assert p.handle(Start()) == []
    actions = p.handle(RequestSeen(b"r" * 32))
    assert any(isinstance(a, BuildProposal) for a in actions)
    actions = p.handle(ProposalBuilt(H, 0, BLOCK))
    assert [e.kind for e in broadcasts(actions)] == [PRE_PREPARE]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
@pytest.mark.parametrize("limit", [2, 3, 10])
def test_a_batch_of_requests_is_the_single_requests_in_one_event(index: int, limit: int) -> None:
    """RequestsSeen leaves a replica as feeding each RequestSeen would (tracked requests, the
    watched one, its timer, faults past the limit) and builds at most once, at the end."""
    config = dataclasses.replace(CONFIG, max_outstanding_requests=limit)
    one = Replica(config, KEYS[index], height=H, validators=VALS)
    many = Replica(config, KEYS[index], height=H, validators=VALS)
    one.handle(Start())
    many.handle(Start())
    ids = [b"a" * 32, b"b" * 32, b"a" * 32, b"c" * 32, b"d" * 32]
    singles = [a for rid in ids for a in one.handle(RequestSeen(rid))]
    batched = many.handle(RequestsSeen(tuple(ids)))
    kinds = lambda actions: sorted(type(a).__name__ + getattr(a, "kind", "") for a in actions)  # noqa: E731
    assert kinds(batched) == kinds(singles)
    assert list(many._outstanding) == list(one._outstanding)
    assert many._watched == one._watched
    assert [a for a in batched if isinstance(a, BuildProposal)] == [
        a for a in singles if isinstance(a, BuildProposal)
    ]
    assert many.handle(RequestsSeen((b"a" * 32,))) == []  # nothing new: nothing to do


def test_f_plus_one_view_changes_pull_a_replica_along() -> None:
    r = replica(0)
    vc = ViewChange(H, 1, None, None)
    assert not broadcasts(r.handle(msg(KEYS[1], VIEW_CHANGE, vc)))
    actions = r.handle(msg(KEYS[2], VIEW_CHANGE, vc))
    assert broadcasts(actions, VIEW_CHANGE) and r.view == 1


def prepared_proof(view: int = 0, block: bytes = BLOCK) -> PreparedProof:
    d = digest_of(block)
    pp = seal(KEYS[primary_index(view)], CHAIN, PRE_PREPARE, PrePrepare(H, view, d))
    votes = tuple(
        sorted(
            (seal(KEYS[i], CHAIN, PREPARE, Vote(H, view, d)) for i in range(3)),
            key=lambda e: e.sender,
        )
    )
    return PreparedProof(pp, votes)


def view_changes(view: int, prepared: PreparedProof | None, signers: range) -> tuple[Envelope, ...]:
    envs = [
        seal(KEYS[i], CHAIN, VIEW_CHANGE, ViewChange(H, view, None, prepared if i == 0 else None))
        for i in signers
    ]
    return tuple(sorted(envs, key=lambda e: e.sender))


def new_view(view: int, vcs: tuple[Envelope, ...], block: bytes) -> MessageReceived:
    p = KEYS[primary_index(view)]
    pp = seal(p, CHAIN, PRE_PREPARE, PrePrepare(H, view, digest_of(block)))
    return msg(p, NEW_VIEW, NewView(H, view, vcs, pp))


def block_message(key: PrivateKey, block: bytes) -> MessageReceived:
    return msg(key, BLOCK_KIND, BlockRef(H, digest_of(block)), block)


def test_new_view_re_proposing_the_prepared_block_is_accepted() -> None:
    r = replica(3)
    actions = r.handle(new_view(1, view_changes(1, prepared_proof(), range(3)), BLOCK))
    assert r.view == 1 and not any(isinstance(a, ValidateProposal) for a in actions)
    [request] = broadcasts(actions, BLOCK_REQUEST)  # the NEW-VIEW names the block by digest
    assert request.open() == BlockRef(H, digest_of(BLOCK))
    assert r.handle(block_message(KEYS[2], OTHER_BLOCK)) == []  # not what it asked for
    actions = r.handle(block_message(KEYS[2], BLOCK))
    validate = [a for a in actions if isinstance(a, ValidateProposal)]
    assert validate and validate[0].digest == digest_of(BLOCK) and validate[0].block == BLOCK


def test_new_view_missing_the_prepared_block_is_refused() -> None:
    r = replica(3)
    bad = new_view(1, view_changes(1, prepared_proof(), range(3)), OTHER_BLOCK)
    actions = r.handle(bad)
    faults = [a for a in actions if isinstance(a, Fault)]
    assert faults and "highest prepared" in faults[0].detail
    assert not any(isinstance(a, ValidateProposal) for a in actions)
    # A bad NEW-VIEW for a view the replica is not in yet moves nothing: obeyed, one
    # validator could push replicas up to view_window views at a time.
    assert not broadcasts(actions, VIEW_CHANGE) and r.view == 0
    waiting = replica(3)  # in the view change to view 1 (f + 1 others asked for it) ...
    for i in (0, 1):
        waiting.handle(msg(KEYS[i], VIEW_CHANGE, ViewChange(H, 1, None, None)))
    assert waiting.view == 1 and waiting.in_view_change
    actions = waiting.handle(bad)  # ... its primary's bad NEW-VIEW sends it on to view 2
    assert broadcasts(actions, VIEW_CHANGE) and waiting.view == 2


def test_new_view_with_fewer_than_a_quorum_of_view_changes_is_refused() -> None:
    r = replica(3)
    actions = r.handle(new_view(1, view_changes(1, None, range(2)), OTHER_BLOCK))
    assert any(isinstance(a, Fault) and "fewer than a quorum" in a.detail for a in actions)


def test_view_change_with_a_forged_prepared_proof_is_refused() -> None:
    r = replica(3)
    proof = prepared_proof()
    short = PreparedProof(proof.pre_prepare, proof.prepares[:2])
    vc = ViewChange(H, 1, None, short)
    actions = r.handle(msg(KEYS[0], VIEW_CHANGE, vc))
    assert any(isinstance(a, Fault) and a.kind == "bad-view-change" for a in actions)


def test_new_primary_re_proposes_the_highest_prepared_block() -> None:
    new_primary = primary_index(1)
    r = replica(new_primary)
    proof = prepared_proof()
    r.handle(msg(KEYS[0], VIEW_CHANGE, ViewChange(H, 1, None, proof)))
    # The second view change pulls it into view 1 (f + 1 = 2); its own completes the quorum.
    actions = r.handle(msg(KEYS[1], VIEW_CHANGE, ViewChange(H, 1, None, None)))
    # It never saw the block: the NEW-VIEW names it by digest and it asks for the bytes.
    assert [e.kind for e in broadcasts(actions)] == [VIEW_CHANGE, NEW_VIEW, BLOCK_REQUEST]
    nv = broadcasts(actions, NEW_VIEW)
    assert len(nv) == 1
    body = nv[0].open()
    assert PrePrepare.decode(body.pre_prepare.body).digest == digest_of(BLOCK)


def test_a_new_primary_holding_the_prepared_block_sends_it_beside_the_new_view() -> None:
    new_primary = primary_index(1)
    r = replica(new_primary)
    r.handle(pre_prepare(0, BLOCK))  # it saw view 0's proposal
    r.handle(msg(KEYS[0], VIEW_CHANGE, ViewChange(H, 1, None, prepared_proof())))
    actions = r.handle(msg(KEYS[1], VIEW_CHANGE, ViewChange(H, 1, None, None)))
    assert [e.kind for e in broadcasts(actions)] == [VIEW_CHANGE, NEW_VIEW, BLOCK_KIND]
    [sent] = [a for a in actions if isinstance(a, Broadcast) and BLOCK in a.data]
    from consensus.messages import open_message

    assert open_message(sent.data).block == BLOCK
    assert any(isinstance(a, ValidateProposal) and a.view == 1 for a in actions)


def test_a_block_request_is_answered_once_per_asker() -> None:
    r = replica(0)
    r.handle(pre_prepare(0, BLOCK))
    ask = msg(KEYS[2], BLOCK_REQUEST, BlockRef(H, digest_of(BLOCK)))
    actions = r.handle(ask)
    sends = [a for a in actions if isinstance(a, Send)]
    assert len(sends) == 1 and sends[0].to == KEYS[2].public
    assert r.handle(ask) == []
    unknown = msg(KEYS[3], BLOCK_REQUEST, BlockRef(H, digest_of(OTHER_BLOCK)))
    assert r.handle(unknown) == []


def test_message_sizes_are_bounded_by_construction() -> None:
    """Fault 3: a NEW-VIEW carried the prepared block in every VIEW-CHANGE plus its own.

    With n = 4 and a 4 MiB block that was about 16 MiB against a 12 MiB limit, and
    sealing it raised inside the replica: the view change could never finish.
    """
    from consensus import messages as m
    from consensus.certificate import MAX_VALIDATORS

    big = bytes(4 * 1024 * 1024)
    q = 3
    pp = seal(KEYS[0], CHAIN, PRE_PREPARE, PrePrepare(H, 0, digest_of(big)))
    prepares = tuple(
        sorted((seal(KEYS[i], CHAIN, PREPARE, Vote(H, 0, digest_of(big))) for i in range(q)),
               key=lambda e: e.sender)
    )  # fmt: skip
    proof = PreparedProof(pp, prepares)
    vcs = tuple(
        sorted((seal(KEYS[i], CHAIN, VIEW_CHANGE, ViewChange(H, 1, None, proof)) for i in range(q)),
               key=lambda e: e.sender)
    )  # fmt: skip
    nv = seal(KEYS[1], CHAIN, NEW_VIEW, NewView(H, 1, vcs, pp))
    assert len(wire_message(nv)) < 4096  # digests and votes, not blocks
    # The largest body of each kind, built for real, fits the bound derived for it.
    keys = [PrivateKey.from_seed(i.to_bytes(32, "big")) for i in range(1, MAX_VALIDATORS + 1)]
    q_max = m.MAX_PROOF_VOTES
    top = 2**63 - 1
    votes = tuple(
        sorted((seal(k, CHAIN, PREPARE, Vote(top, top, bytes(32))) for k in keys[:q_max]),
               key=lambda e: e.sender)
    )  # fmt: skip
    big_pp = seal(keys[0], CHAIN, PRE_PREPARE, PrePrepare(2**63 - 1, 2**63 - 1, bytes(32)))
    cert = Certificate(
        2**63 - 1, 2**63 - 1, bytes(32),
        tuple(sorted((CertVote(k.public, bytes(64)) for k in keys), key=lambda v: v.encode())),
    )  # fmt: skip
    worst_vc = ViewChange(2**63 - 1, 2**63 - 1, cert, PreparedProof(big_pp, votes))
    assert len(worst_vc.encode()) <= m.MAX_BODY_BYTES[VIEW_CHANGE]
    vc_env = seal(keys[0], CHAIN, VIEW_CHANGE, worst_vc)
    worst_nv = NewView(2**63 - 1, 2**63 - 1, (vc_env,) * q_max, big_pp)
    assert len(worst_nv.encode()) <= m.MAX_BODY_BYTES[NEW_VIEW]
    worst_msg = wire_message(seal(keys[0], CHAIN, NEW_VIEW, worst_nv))
    assert len(worst_msg) <= m.MAX_MESSAGE_BYTES_BY_KIND[NEW_VIEW] <= m.MAX_MESSAGE_BYTES
    block_msg = wire_message(big_pp, bytes(m.MAX_BLOCK_BYTES_ON_WIRE))
    assert len(block_msg) <= m.MAX_MESSAGE_BYTES_BY_KIND[PRE_PREPARE]


def test_restart_never_signs_a_second_prepare_for_one_view() -> None:
    r = replica(0)
    actions = accept_and_validate(r, block=BLOCK)
    safety = [a for a in actions if isinstance(a, Persist)][-1].state
    again = replica(0, safety=safety)
    again.handle(pre_prepare(block=OTHER_BLOCK))
    actions = again.handle(ProposalValidated(H, 0, digest_of(OTHER_BLOCK), True))
    assert not broadcasts(actions, PREPARE)
    assert any(isinstance(a, Fault) and a.kind == "equivocation" for a in actions)


def test_a_restarted_primary_never_proposes_a_second_block_in_a_view_it_voted_in() -> None:
    """Found by scripts/chaos (a full disk halted the primary of (160, 0) after it had
    proposed and voted): on restart it built a new block and broadcast a second, different
    PRE-PREPARE for the same height and view, an equivocation by an honest node, before its
    own guard refused to prepare it."""
    p = replica(primary_index(0))
    p.handle(RequestSeen(b"r" * 32))
    p.handle(ProposalBuilt(H, 0, BLOCK))
    actions = p.handle(ProposalValidated(H, 0, digest_of(BLOCK), True))
    assert broadcasts(actions, PREPARE)
    safety = [a for a in actions if isinstance(a, Persist)][-1].state
    again = replica(primary_index(0), safety=safety)
    actions = again.handle(RequestSeen(b"s" * 32))
    actions += again.handle(ProposalBuilt(H, 0, OTHER_BLOCK))  # were it asked to build
    assert not any(isinstance(a, BuildProposal) for a in actions)
    assert not any(
        PrePrepare.decode(e.body).digest != digest_of(BLOCK)
        for e in broadcasts(actions, PRE_PREPARE)
    )


def test_restart_in_view_change_resends_it() -> None:
    r = replica(0)
    actions = r.handle(RequestSeen(b"r" * 32))
    timer = next(a for a in actions if isinstance(a, SetTimer) and a.name == TIMER_REQUEST)
    actions = r.handle(TimerFired(TIMER_REQUEST, timer.token))
    safety = [a for a in actions if isinstance(a, Persist)][-1].state
    again = Replica(CONFIG, KEYS[0], height=H, validators=VALS, safety=safety)
    actions = again.handle(Start())
    assert broadcasts(actions, VIEW_CHANGE) and again.view == 1
    assert any(isinstance(a, SetTimer) and a.name == TIMER_VIEW_CHANGE for a in actions)


def certificate(height: int, block: bytes, signers: list[PrivateKey], view: int = 0) -> Certificate:
    d = digest_of(block)
    votes = sorted(
        (
            CertVote(k.public, k.sign(DOMAIN_COMMIT, CHAIN, commit_message(height, view, d)))
            for k in signers
        ),
        key=lambda v: v.encode(),
    )
    return Certificate(height, view, d, tuple(votes))


def test_catch_up_commits_a_certified_block_and_refuses_a_weak_one() -> None:
    r = replica(0)
    weak = certificate(H, BLOCK, KEYS[1:3])
    actions = r.handle(CertifiedBlockReceived(BLOCK, weak))
    assert any(isinstance(a, Fault) and a.kind == "bad-catch-up" for a in actions)
    actions = r.handle(CertifiedBlockReceived(OTHER_BLOCK, certificate(H, BLOCK, KEYS[1:4])))
    assert any(isinstance(a, Fault) and "does not match" in a.detail for a in actions)
    actions = r.handle(CertifiedBlockReceived(BLOCK, certificate(H, BLOCK, KEYS[1:4])))
    assert any(isinstance(a, CommitBlock) for a in actions)


def test_messages_from_ahead_trigger_a_fetch_and_behind_peers_are_served() -> None:
    r = replica(0)
    ahead = msg(KEYS[2], PREPARE, Vote(H + 3, 0, digest_of(BLOCK)))
    actions = r.handle(ahead)
    timer = next(a for a in actions if isinstance(a, SetTimer))
    actions = r.handle(TimerFired(timer.name, timer.token))
    assert FetchBlocks(KEYS[2].public, H) in actions
    later = replica(0, height=5)
    actions = later.handle(msg(KEYS[1], VIEW_CHANGE, ViewChange(2, 1, None, None)))
    assert ServeBlocks(KEYS[1].public, 2) in actions


def test_validator_set_change_takes_effect_at_the_next_height() -> None:
    r = replica(0)
    r.handle(CertifiedBlockReceived(BLOCK, certificate(H, BLOCK, KEYS[1:4])))
    new_set = (VALS[0], VALS[1], VALS[2], KEYS[4].public)  # VALS[3] leaves, KEYS[4] joins
    r.handle(BlockPersisted(H, new_set))
    vote = Vote(H + 1, 0, digest_of(BLOCK))
    actions = r.handle(msg(KEYS[3], PREPARE, vote))
    assert [a.kind for a in actions if isinstance(a, Fault)] == ["not-a-validator"]
    actions = r.handle(msg(KEYS[4], PREPARE, vote))
    assert not [a for a in actions if isinstance(a, Fault)]


def test_future_buffer_is_bounded() -> None:
    small = dataclasses.replace(CONFIG, max_buffered=3, max_buffered_per_sender=2)
    r = Replica(small, KEYS[0], height=H, validators=VALS)
    faults = []
    for view in range(4):
        actions = r.handle(msg(KEYS[1], PREPARE, Vote(H + 1, view, digest_of(BLOCK))))
        faults += [a.kind for a in actions if isinstance(a, Fault)]
    assert faults == ["buffer-full", "buffer-full"]
    r.handle(msg(KEYS[2], PREPARE, Vote(H + 1, 0, digest_of(BLOCK))))
    actions = r.handle(msg(KEYS[3], PREPARE, Vote(H + 1, 0, digest_of(BLOCK))))
    assert [a.kind for a in actions if isinstance(a, Fault)] == ["buffer-full"]


def test_non_members_and_bad_signatures_never_take_a_buffer_slot() -> None:
    """Fault 5: future-height junk from made-up keys filled the buffer before any check.

    An honest member's vote for the next height was then dropped (buffer-full).
    """
    small = dataclasses.replace(CONFIG, max_buffered=8, max_buffered_per_sender=2)
    r = Replica(small, KEYS[0], height=H, validators=VALS)
    strangers = [PrivateKey.from_seed(bytes([100 + i]) * 32) for i in range(8)]
    faults = []
    for key in strangers:
        for view in range(2):
            actions = r.handle(msg(key, PREPARE, Vote(H + 1, view, digest_of(BLOCK))))
            faults += [a.kind for a in actions if isinstance(a, Fault)]
    assert set(faults) == {"not-a-validator"}
    forged = open_envelope(msg(KEYS[2], PREPARE, Vote(H + 1, 0, digest_of(BLOCK))).data)
    bad = dataclasses.replace(forged, signature=bytes(64))
    actions = r.handle(MessageReceived(wire_message(bad)))
    assert [a.kind for a in actions if isinstance(a, Fault)] == ["bad-signature"]
    assert r._future_count == 0
    actions = r.handle(msg(KEYS[1], PREPARE, Vote(H + 1, 0, digest_of(BLOCK))))
    assert not [a for a in actions if isinstance(a, Fault)]
    assert r._future_count == 1


def test_messages_beyond_the_height_window_are_dropped() -> None:
    r = replica(0)
    far = msg(KEYS[1], PREPARE, Vote(H + CONFIG.height_window + 1, 0, digest_of(BLOCK)))
    actions = r.handle(far)
    assert r._future_count == 0
    # Not kept, but still evidence that we lag: fetch from that validator soon.
    assert [a.name for a in actions if isinstance(a, SetTimer)] == [TIMER_BEHIND]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_single_honest_run_commits(n: int) -> None:
    """All replicas honest, messages delivered at once: every height commits in view 0."""
    keys = [PrivateKey.from_seed(bytes([50 + i]) * 32) for i in range(n)]
    vals = tuple(k.public for k in keys)
    reps = [Replica(CONFIG, k, height=1, validators=vals) for k in keys]
    chains: list[list[bytes]] = [[] for _ in range(n)]
    queue: list[tuple[int, object]] = [(i, Start()) for i in range(n)]
    queue += [(i, RequestSeen(b"q" * 32)) for i in range(n)]
    steps = 0
    while queue and steps < 10_000:
        steps += 1
        i, event = queue.pop(0)
        for a in reps[i].handle(event):  # type: ignore[arg-type]
            if isinstance(a, Broadcast):
                queue += [(j, MessageReceived(a.data)) for j in range(n) if j != i]
            elif isinstance(a, BuildProposal):
                queue.append((i, ProposalBuilt(a.height, a.view, codec.encode(["b", a.height]))))
            elif isinstance(a, ValidateProposal):
                queue.append((i, ProposalValidated(a.height, a.view, a.digest, True)))
            elif isinstance(a, CommitBlock):
                chains[i].append(a.certificate.block_hash)
                queue.append((i, BlockPersisted(a.height, vals, (b"q" * 32,))))
    assert all(chain == chains[0] and len(chain) == 1 for chain in chains)


@pytest.mark.parametrize("kind", [PREPARE, COMMIT])
def test_a_second_different_vote_is_evidence_not_a_vote(kind: str) -> None:
    r = replica(0)
    accept_and_validate(r)
    r.handle(msg(KEYS[2], kind, Vote(H, 0, digest_of(BLOCK))))
    actions = r.handle(msg(KEYS[2], kind, Vote(H, 0, digest_of(OTHER_BLOCK))))
    assert [a.kind for a in actions if isinstance(a, Fault)] == ["conflicting-vote"]
    table = r.slot.prepares if kind == PREPARE else r.slot.commits
    assert (0, digest_of(OTHER_BLOCK)) not in table


def test_a_prepared_block_survives_a_restart() -> None:
    """Proofs name blocks by digest, so the safety state keeps the prepared block's bytes:
    a replica that restarts may be the one that must hand the block to the others."""
    r = replica(0)
    accept_and_validate(r)
    d = digest_of(BLOCK)
    actions = []
    for i in (2, 3):
        actions += r.handle(msg(KEYS[i], PREPARE, Vote(H, 0, d)))
    assert broadcasts(actions, COMMIT)
    safety = [a for a in actions if isinstance(a, Persist)][-1].state
    assert SafetyState.decode(safety).prepared_block == BLOCK
    again = replica(0, safety=safety)
    ask = msg(KEYS[2], BLOCK_REQUEST, BlockRef(H, d))
    [answer] = [a for a in again.handle(ask) if isinstance(a, Send)]
    from consensus.messages import open_message

    assert open_message(answer.data).block == BLOCK
