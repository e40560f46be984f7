"""The node's JSON API (aiohttp) on the API port.

Errors are ``{"error": {"code": "...", "message": "..."}}`` with a stable code;
4xx means the client's request was at fault, 429/503 that the node is at a
bound. Binary values (hashes, keys, signed transactions) travel as lowercase
hex. ``/openapi.json`` describes every route.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from consensus import codec, merkle
from consensus.certificate import quorum
from consensus.crypto import key_hex
from ml.drift import PSI_SCALE, SCORE_EDGES
from ml.errors import ModelError
from ml.limits import MAX_ARTIFACT_BYTES
from ml.score import score_from_path_sum
from node import explorer, openapi
from node.app import anchors, contracts
from node.app.drift_state import drift_key
from node.app.execution import tx_proof
from node.app.light import ReadRecorder, TooManyReads, run_query
from node.app.state import ANCHOR, storage_key
from node.app.system import MODELS_CONTRACT
from node.app.types import NAME_PATTERN, Certificate, Event, Header, Receipt, Tx
from node.http_guard import (
    API_BURST_PER_ADDRESS,
    API_IDLE_TIMEOUT_S,
    API_RATE_PER_ADDRESS,
    MAX_API_CONNECTIONS,
    MAX_QUERY_BODY_BYTES,
    MAX_WAITS_PER_ADDRESS,
    BadRequest,
    Buckets,
    ClientGone,
    GuardedSite,
    ascii_digits,
    rate_limited,
    read_body,
    read_json,
)
from node.metrics import CONTENT_TYPE as metrics_content_type
from node.service import (  # noqa: F401 (ARTIFACT_GRACE_BLOCKS: the OpenAPI document)
    ARTIFACT_GRACE_BLOCKS,
    MAX_WAITERS,
    Node,
    UploadRefused,
)
from node.store import MAX_STATE_SCAN
from node.worker import MAX_CLIENT_TASKS, WorkerBusy
from vm.errors import OutOfGas, VMError
from vm.gas import MAX_VALUE_BYTES
from vm.jsonvalues import JSONValueError, from_json, to_json
from vm.values import decode_value

UPLOAD_KEY_HEADER = "X-Vigil-Key"
"""POST /v1/models: the uploader's Ed25519 public key, 64 hex digits."""
UPLOAD_SIGNATURE_HEADER = "X-Vigil-Signature"
"""POST /v1/models: the key's signature (128 hex digits) of the artifact's model id, its
SHA-256, under DOMAIN_MODEL_UPLOAD and the genesis hash (consensus/crypto.py)."""
MAX_SUBMIT_BATCH = 1_000
"""Transactions accepted in one POST /v1/txs."""
MAX_API_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body: a batch's transactions together (hex doubles their size) must fit."""
MAX_WAIT_S = 60.0
"""Longest a client may wait for a commit in one request."""
MAX_STATE_KEY_BYTES = 1_024
"""Longest state key GET /v1/state/{key} looks up (contract keys are far shorter)."""
MAX_LIGHT_CHANGES = 64
"""Validator-set changes in one GET /v1/light/changes answer; ``complete`` says if more follow."""
MAX_ANOMALY_SCAN_BLOCKS = 1_000
"""Blocks one GET /v1/anomalies looks through; the answer says where to continue."""
MAX_BLOCK_LIST = 100
"""Block summaries in one GET /v1/blocks answer (each decodes a whole block)."""
DEFAULT_BLOCK_LIST = 20
MAX_ANCHOR_LIST = 100
"""Anchors in one GET /v1/anchors answer (digest order; ``next`` continues)."""
MAX_MODEL_LIST = 256
"""Model names in one GET /v1/models answer; ``complete`` says whether that was all."""
assert DEFAULT_BLOCK_LIST <= MAX_BLOCK_LIST <= MAX_ANOMALY_SCAN_BLOCKS
assert MAX_ANCHOR_LIST <= MAX_STATE_SCAN and MAX_MODEL_LIST <= MAX_STATE_SCAN
assert MAX_QUERY_BODY_BYTES <= MAX_API_BODY_BYTES and MAX_ARTIFACT_BYTES <= MAX_API_BODY_BYTES
MAX_QUERY_GAS = 2_000_000
"""Gas of one read-only query on this node, below the chain's ``max_tx_gas`` (10,000,000 by
default): a query runs on the application worker, and consensus work waits behind a running
one. A query that needs more is refused (``query_gas``); a client can still run it itself."""
MAX_QUERIES_IN_FLIGHT = 4
"""Read-only queries queued or running at once on this node; the next is 503 ``busy``, so
queries cannot fill the worker's client queue that every other read shares."""
assert MAX_QUERIES_IN_FLIGHT < MAX_CLIENT_TASKS
assert MAX_WAITS_PER_ADDRESS * 16 <= MAX_WAITERS, "sixteen addresses cannot take every wait"
assert MAX_WAITS_PER_ADDRESS < MAX_API_CONNECTIONS
MAX_HEIGHT_DIGITS = 18
"""Digits of a height or position in a path or query (below 2**63)."""
WAIT_PATTERN = r"[0-9]{1,3}(\.[0-9]{1,3})?"
"""``wait`` on GET /v1/txs/{hash}: seconds, at most three decimals (capped at MAX_WAIT_S)."""
assert 10**MAX_HEIGHT_DIGITS < 2**63


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _hex_arg(request: web.Request, name: str, size: int = 32) -> bytes:
    text = request.match_info[name]
    if re.fullmatch(f"[0-9a-fA-F]{{{2 * size}}}", text) is None:
        raise BadRequest(400, "bad_hex", f"{name} must be {2 * size} hex digits")
    return bytes.fromhex(text)


def _int_query(request: web.Request, name: str, default: int, low: int = 0,
               high: int = 10**MAX_HEIGHT_DIGITS - 1) -> int:  # fmt: skip
    """An integer query parameter from ``low`` to ``high`` (400 ``bad_request`` if it is
    anything else: out of range is refused, never quietly clamped)."""
    text = request.query.get(name)
    if text is None:
        return default
    value = ascii_digits(text, MAX_HEIGHT_DIGITS)
    if value is None or not low <= value <= high:
        raise BadRequest(400, "bad_request", f"{name} must be a whole number from {low} to {high}")
    return value


def _raw_query(request: web.Request) -> bool:
    """``raw``: 1 for the block's encodings as well, 0 (or absent) for none."""
    text = request.query.get("raw", "0")
    if text not in ("0", "1"):
        raise BadRequest(400, "bad_request", "raw must be 0 or 1")
    return text == "1"


def json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def tx_json(tx: Tx) -> dict:
    payload = {name: json_value(getattr(tx.payload, name)) for name, _ in tx.payload.schema()}
    if tx.kind == "anchor":
        payload["metadata"] = dict(tx.payload.metadata)  # type: ignore[attr-defined]
    return {
        "hash": tx.id.hex(),
        "chain_id": tx.chain_id,
        "sender": key_hex(tx.sender),
        "nonce": tx.nonce.hex(),
        "valid_until_height": tx.valid_until_height,
        "kind": tx.kind,
        "payload": payload,
        "signature": tx.signature.hex(),
    }


def header_json(header: Header) -> dict:
    out = {name: json_value(getattr(header, name)) for name, _ in header.schema()}
    out["hash"] = header.hash().hex()
    return out


def receipt_json(receipt: Receipt, kind: str, n_trees: Callable[[bytes], int | None]) -> dict:
    """A receipt for people; a contract call's result and event data are VM values."""
    vm_encoded = kind == "call"
    result = receipt.result
    if vm_encoded and result:
        shown = vm_json(result)
    elif kind == "score" and receipt.status == "ok":
        shown = score_json(result, n_trees)
    else:
        shown = json_value(result)
    return {
        "tx_hash": receipt.tx_hash.hex(),
        "status": receipt.status,
        "gas_used": receipt.gas_used,
        "result": shown,
        "events": [event_json(e, vm_encoded) for e in receipt.events],
        "error": receipt.error,
    }


def score_json(result: Any, n_trees: Callable[[bytes], int | None]) -> dict:
    """A score receipt: the recorded integers, and the score in scikit-learn's units."""
    model_id, path_sum, outlier, top = result
    trees = n_trees(model_id)
    return {
        "model_id": model_id.hex(),
        "path_sum": path_sum,
        "score": None if trees is None else score_from_path_sum(path_sum, trees),
        "outlier": outlier,
        "top_features": [{"feature": name, "share_ppm": ppm} for name, ppm in top],
    }


def vm_json(data: bytes) -> Any:
    return to_json(decode_value(data, MAX_VALUE_BYTES))


def event_json(event: Event, vm_encoded: bool = False) -> dict:
    data = vm_json(event.data) if vm_encoded else json_value(event.data)
    return {"name": event.name, "data": data}


def cert_json(cert: Certificate) -> dict:
    return {
        "height": cert.height,
        "view": cert.view,
        "block_hash": cert.block_hash.hex(),
        "votes": [
            {"validator": key_hex(v.validator), "signature": v.signature.hex()} for v in cert.votes
        ],
    }


class Api:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.queries_in_flight = 0
        self.waiting: dict[str, int] = {}
        """Long polls open per client address (at most MAX_WAITS_PER_ADDRESS each)."""

    def n_trees(self, model_id: bytes) -> int | None:
        """Trees of a model this node holds (to show a path sum as a score), else None."""
        return self.node.ledger.model_trees(model_id)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/txs", self.submit),
            web.get("/v1/txs/{hash}", self.get_tx),
            web.get("/v1/blocks", self.list_blocks),
            web.get("/v1/blocks/latest", self.latest_block),
            web.get("/v1/blocks/{height}", self.get_block),
            web.get("/v1/status", self.status),
            web.get("/v1/anchors", self.list_anchors),
            web.get("/v1/anchors/{digest}", self.get_anchor),
            web.get("/v1/contracts/{name}", self.get_contract),
            web.get("/v1/anomalies", self.anomalies),
            web.post("/v1/models", self.upload_model),
            web.get("/v1/models", self.list_models),
            web.get("/v1/models/{id}", self.get_model),
            web.get("/v1/models/{name}/drift", self.model_drift),
            web.get("/v1/state/{key}", self.get_state),
            web.get("/v1/light/changes", self.light_changes),
            web.post("/v1/contracts/{name}/query", self.query_contract),
            web.get("/openapi.json", self.openapi),
            web.get("/metrics", self.metrics),
        ]

    async def submit(self, request: web.Request) -> web.Response:
        body = await read_json(request, MAX_API_BODY_BYTES)
        if not isinstance(body, dict) or len(body) != 1 or not {"tx", "txs"} & body.keys():
            return error(400, "bad_request", 'send {"tx": HEX} or {"txs": [HEX, ...]}')
        single = "tx" in body
        items = [body["tx"]] if single else body["txs"]
        if not isinstance(items, list) or not items or not all(type(i) is str for i in items):
            return error(400, "bad_request", "txs must be a non-empty list of hex strings")
        if len(items) > MAX_SUBMIT_BATCH:
            return error(
                413, "batch_too_large", f"at most {MAX_SUBMIT_BATCH} transactions per request"
            )
        results: list[dict | None] = []
        raws: list[bytes] = []
        for item in items:
            try:
                raws.append(bytes.fromhex(item))
                results.append(None)
            except (ValueError, TypeError):
                results.append({"error": {"code": "bad_hex", "message": "not a hex string"}})
        outcomes = iter(await self.node.submit_many(raws))
        for i, slot in enumerate(results):
            if slot is not None:
                continue
            outcome = next(outcomes)
            if outcome.tx_id is None:
                results[i] = {"error": {"code": outcome.code, "message": outcome.message}}
            else:
                results[i] = {"hash": outcome.tx_id.hex()}
        if single:
            only = results[0]
            if "error" in only:
                status = {"mempool_full": 429, "share_full": 429}.get(only["error"]["code"], 400)
                return web.json_response(only, status=status)
            return web.json_response(only, status=202)
        return web.json_response({"results": results}, status=202)

    async def get_tx(self, request: web.Request) -> web.Response:
        tx_id = _hex_arg(request, "hash")
        wait = request.query.get("wait")
        if wait is not None:
            if re.fullmatch(WAIT_PATTERN, wait) is None:
                return error(400, "bad_wait", "wait must be a number of seconds, like 5 or 0.5")
            seconds = min(float(wait), MAX_WAIT_S)
            address = request.remote or ""
            if self.waiting.get(address, 0) >= MAX_WAITS_PER_ADDRESS:
                return error(429, "too_many_waits", f"{MAX_WAITS_PER_ADDRESS} requests from "
                             "your address already wait for a commit")  # fmt: skip
            self.waiting[address] = self.waiting.get(address, 0) + 1
            try:
                await self.node.wait_for_commit(tx_id, max(0.0, seconds))
            finally:
                self.waiting[address] -= 1
                if not self.waiting[address]:
                    del self.waiting[address]
        response = await self.node.worker.client(lambda: self._tx_response(tx_id))
        if response is not None:
            return response
        if tx_id in self.node.mempool:
            return web.json_response({"hash": tx_id.hex(), "status": "pending"})
        return error(404, "not_found", "no such transaction (not committed, not pending here)")

    def _tx_response(self, tx_id: bytes) -> web.Response | None:
        """On the application worker: a committed transaction with receipt and proof."""
        where = self.node.store.tx_location(tx_id)
        if where is None:
            return None
        height, index = where
        found = self.node.ledger.committed_block(height)
        assert found is not None, f"transaction index names height {height}, which has no block"
        block = found[0]
        receipts = self.node.store.receipts(height) or []
        cert = Certificate.decode(self.node.store.certificate(height))  # type: ignore[arg-type]
        proof = tx_proof(block.txs, index)
        return web.json_response(
            {
                "hash": tx_id.hex(),
                "status": "committed",
                "height": height,
                "index": index,
                "tx": tx_json(block.txs[index]),
                "raw": block.txs[index].encode().hex(),
                "receipt": receipt_json(
                    Receipt.decode(receipts[index]), block.txs[index].kind, self.n_trees
                ),
                "header": header_json(block.header),
                "certificate": cert_json(cert),
                "proof": {
                    "index": proof.index,
                    "size": proof.size,
                    "path": [p.hex() for p in proof.path],
                    "root": merkle.root([t.encode() for t in block.txs]).hex(),
                },
                "verify": {
                    "header": block.header.encode().hex(),
                    "certificate": self.node.store.certificate(height).hex(),  # type: ignore[union-attr]
                    "receipt": receipts[index].hex(),
                    "receipt_proof": codec.encode(
                        merkle.Tree(list(receipts)).proof(index).to_wire()
                    ).hex(),
                    "tx_proof": codec.encode(proof.to_wire()).hex(),
                },
            }
        )

    def _block_response(self, height: int, raw_parts: bool) -> web.Response:
        """A block; with ``raw_parts`` also its encodings (block, certificate, receipts), all a
        client needs to check the whole block against the genesis file."""
        found = self.node.ledger.committed_block(height)
        if found is None:
            return error(404, "not_found", f"no block at height {height}")
        block, receipts = found
        raw_cert = self.node.store.certificate(height)
        cert = Certificate.decode(raw_cert)  # type: ignore[arg-type]
        validators = self.node.store.validators(height) or []
        answer: dict[str, Any] = {
            "height": height,
            "header": header_json(block.header),
            "txs": [tx.id.hex() for tx in block.txs],
            "receipts": [
                {
                    "tx_hash": r.tx_hash.hex(),
                    "status": r.status,
                    "kind": tx.kind,
                    "sender": key_hex(tx.sender),
                    "gas_used": r.gas_used,
                    "events": [e.name for e in r.events],
                }
                for tx, r in zip(block.txs, receipts, strict=True)
            ],
            "certificate": cert_json(cert),
            "validators": [key_hex(v) for v in validators],
            "quorum": quorum(len(validators)) if validators else None,
        }
        if raw_parts:
            answer["verify"] = {
                "block": self.node.store.block(height).hex(),  # type: ignore[union-attr]
                "certificate": raw_cert.hex(),  # type: ignore[union-attr]
                "receipts": [r.hex() for r in self.node.store.receipts(height) or []],
            }
        return web.json_response(answer)

    async def list_blocks(self, request: web.Request) -> web.Response:
        """Summaries of the newest blocks below ``before`` (default: all), newest first."""
        before = _int_query(request, "before", 2**63 - 1)
        limit = _int_query(request, "limit", DEFAULT_BLOCK_LIST, 1, MAX_BLOCK_LIST)
        return await self.node.worker.client(lambda: self._blocks(before, max(1, limit)))

    def _blocks(self, before: int, limit: int) -> web.Response:
        """On the application worker: one consistent read of the newest ``limit`` headers."""
        top = min(self.node.ledger.height, before - 1)
        out = []
        for height in range(top, max(0, top - limit), -1):
            header = self.node.ledger.header(height)
            assert header is not None, f"height {height} is at most the ledger's, yet has no block"
            cert = Certificate.decode(self.node.store.certificate(height))  # type: ignore[arg-type]
            out.append(
                {
                    "height": height,
                    "hash": header.hash().hex(),
                    "timestamp_ms": header.timestamp_ms,
                    "view": header.view,
                    "proposer": key_hex(header.proposer),
                    "tx_count": header.tx_count,
                    "signers": len(cert.votes),
                }
            )
        last = out[-1]["height"] if out else 1
        return web.json_response({"blocks": out, "next": last - 1 if last > 1 else None})

    async def latest_block(self, request: web.Request) -> web.Response:
        height = self.node.ledger.height
        if height == 0:
            return error(404, "not_found", "no block committed yet")
        raw_parts = _raw_query(request)
        return await self.node.worker.client(lambda: self._block_response(height, raw_parts))

    async def get_block(self, request: web.Request) -> web.Response:
        height = ascii_digits(request.match_info["height"], MAX_HEIGHT_DIGITS)
        if height is None:
            return error(400, "bad_height", "height must be a positive integer")
        raw_parts = _raw_query(request)
        return await self.node.worker.client(lambda: self._block_response(height, raw_parts))

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.status())

    async def get_anchor(self, request: web.Request) -> web.Response:
        digest = _hex_arg(request, "digest")
        return await self.node.worker.client(lambda: self._anchor(digest))

    def _anchor(self, digest: bytes) -> web.Response:
        """On the application worker: an anchor with its bounded lineage."""
        read = self.node.store.get
        record = anchors.lookup(read, digest)
        if record is None:
            return error(404, "not_found", f"digest {digest.hex()} is not anchored")
        raw = read(storage_key(MODELS_CONTRACT, "trained:" + digest.hex()))
        trained = [] if raw is None else decode_value(raw, MAX_VALUE_BYTES)
        return web.json_response(
            {
                "anchor": record.to_json(),
                "models": [{"name": n, "version": v} for n, v in trained],
                "ancestors": [r.to_json() for r in anchors.ancestors(read, record)],
                "descendants": [
                    r.to_json() for r in anchors.descendants(read, self.node.store.scan, digest)
                ],
            }
        )

    async def list_anchors(self, request: web.Request) -> web.Response:
        """Anchors in digest order after ``after`` (a digest), at most ``limit``."""
        text = request.query.get("after", "")
        if re.fullmatch("([0-9a-fA-F]{64})?", text) is None:
            return error(400, "bad_hex", "after must be a digest: 64 hex digits")
        after = bytes.fromhex(text)
        limit = _int_query(request, "limit", MAX_ANCHOR_LIST, 1, MAX_ANCHOR_LIST)
        return await self.node.worker.client(lambda: self._anchors(after, max(1, limit)))

    def _anchors(self, after: bytes, limit: int) -> web.Response:
        found = [
            anchors.AnchorRecord.from_wire(key[len(ANCHOR) :], codec.decode(value)).to_json()
            for key, value in self.node.store.scan(ANCHOR, limit, after)
        ]
        full = len(found) == limit
        return web.json_response({"anchors": found, "next": found[-1]["digest"] if full else None})

    async def list_models(self, request: web.Request) -> web.Response:
        """Every model name the registry holds, with its version count and active version."""
        return await self.node.worker.client(self._models)

    def _models(self) -> web.Response:
        prefix = storage_key(MODELS_CONTRACT, "versions:")
        found = []
        for key, value in self.node.store.scan(prefix, MAX_MODEL_LIST):
            name = key[len(prefix) :].decode()
            raw = self.node.store.get(storage_key(MODELS_CONTRACT, "active:" + name))
            active = None if raw is None else decode_value(raw, MAX_VALUE_BYTES)
            found.append(
                {
                    "name": name,
                    "versions": decode_value(value, MAX_VALUE_BYTES),
                    "active": None if active is None else active["version"],
                    "model_id": None if active is None else active["model_id"].hex(),
                }
            )
        return web.json_response({"models": found, "complete": len(found) < MAX_MODEL_LIST})

    async def anomalies(self, request: web.Request) -> web.Response:
        """Flagged score transactions from height ``since`` on (a bounded scan)."""
        since = ascii_digits(request.query.get("since", "1"), MAX_HEIGHT_DIGITS)
        if since is None:
            return error(400, "bad_height", "since must be a positive integer")
        return await self.node.worker.client(lambda: self._anomalies(max(1, since)))

    def _anomalies(self, start: int) -> web.Response:
        """On the application worker: the bounded scan (it reads the model cache)."""
        end = min(self.node.ledger.height, start + MAX_ANOMALY_SCAN_BLOCKS - 1)
        found = []
        for height in range(start, end + 1):
            for raw in self.node.store.receipts(height) or []:
                receipt = Receipt.decode(raw)
                for event in receipt.events:
                    if event.name != "flagged":
                        continue
                    reference, model_id, path_sum = event.data
                    trees = self.n_trees(model_id)
                    found.append(
                        {
                            "height": height,
                            "tx": receipt.tx_hash.hex(),
                            "reference": reference,
                            "model_id": model_id.hex(),
                            "path_sum": path_sum,
                            "score": None
                            if trees is None
                            else score_from_path_sum(path_sum, trees),
                        }
                    )
        return web.json_response({"anomalies": found, "next": max(start, end + 1)})

    async def upload_model(self, request: web.Request) -> web.Response:
        """Keep a model artifact (raw bytes) signed by an authorised key (``UPLOAD_KEY_HEADER``,
        ``UPLOAD_SIGNATURE_HEADER``: hex). The key and its authorisation are checked before
        the body is read; peers fetch the artifact when a block reads it."""
        key_text = request.headers.get(UPLOAD_KEY_HEADER)
        signature_text = request.headers.get(UPLOAD_SIGNATURE_HEADER)
        if key_text is None or signature_text is None:
            return error(401, "unsigned", f"an upload needs {UPLOAD_KEY_HEADER} (the uploader's "
                         f"public key) and {UPLOAD_SIGNATURE_HEADER} (its signature of the "
                         "artifact's model id), both hex")  # fmt: skip
        if re.fullmatch("[0-9a-fA-F]{64}", key_text) is None:
            return error(401, "bad_signature", f"{UPLOAD_KEY_HEADER} must be 64 hex digits")
        if re.fullmatch("[0-9a-fA-F]{128}", signature_text) is None:
            return error(401, "bad_signature", f"{UPLOAD_SIGNATURE_HEADER} must be 128 hex digits")
        key, signature = bytes.fromhex(key_text), bytes.fromhex(signature_text)
        refused = await self.node.worker.client(lambda: self.node.upload_refusal(key))
        if refused is not None:
            return error(refused.status, refused.code, refused.message)
        data = await read_body(request, MAX_ARTIFACT_BYTES)
        try:
            model = await self.node.add_artifact(data, key, signature)
        except UploadRefused as exc:
            return error(exc.status, exc.code, exc.message)
        except ModelError as exc:
            return error(400, "bad_artifact", str(exc))
        return web.json_response(
            {
                "model_id": model.model_id.hex(),
                "features": list(model.feature_names),
                "trees": model.n_trees,
                "contributors": [d.hex() for d in model.digests],
                "size": len(data),
            },
            status=201,
        )

    async def get_state(self, request: web.Request) -> web.Response:
        """A state key's value or absence at the latest height, with its proof and the
        certified header to check it against (docs/state.md)."""
        text = request.match_info["key"]
        if re.fullmatch("([0-9a-fA-F]{2})+", text) is None:
            return error(400, "bad_hex", "key must be hex (two digits a byte)")
        key = bytes.fromhex(text)
        if not key or len(key) > MAX_STATE_KEY_BYTES:
            return error(400, "bad_key", f"key must be 1 to {MAX_STATE_KEY_BYTES} bytes")
        return await self.node.worker.client(lambda: self._state(key))

    def _state(self, key: bytes) -> web.Response:
        """On the application worker, so height, root and proof belong to one commit."""
        height = self.node.ledger.height
        if height == 0:
            return error(404, "not_found", "no block committed yet: nothing certifies the state")
        value = self.node.store.get(key)
        proof = self.node.ledger.state_proof(key)
        return web.json_response(
            {
                "height": height,
                "key": key.hex(),
                "value": None if value is None else value.hex(),
                "proof": codec.encode(proof.to_wire()).hex(),
                "header": self.node.ledger.header(height).encode().hex(),  # type: ignore[union-attr]
                "certificate": self.node.store.certificate(height).hex(),  # type: ignore[union-attr]
            }
        )

    async def light_changes(self, request: web.Request) -> web.Response:
        """Validator-set changes above ``after`` (a light client follows them from genesis)."""
        after = ascii_digits(request.query.get("after", "0"), MAX_HEIGHT_DIGITS)
        if after is None:
            return error(400, "bad_height", "after must be a height")
        changes = await self.node.worker.client(
            lambda: self.node.ledger.validator_changes(after, MAX_LIGHT_CHANGES)
        )
        return web.json_response(
            {
                "changes": [
                    {
                        "height": c.height,
                        "header": c.header.hex(),
                        "certificate": c.certificate.hex(),
                        "validators": [v.hex() for v in c.validators],
                        "proof": c.proof.hex(),
                    }
                    for c in changes
                ],
                "complete": len(changes) < MAX_LIGHT_CHANGES,
            }
        )

    async def get_model(self, request: web.Request) -> web.Response:
        model_id = _hex_arg(request, "id")
        data = self.node.store.artifact(model_id)
        if data is None:
            return error(404, "not_found", f"model {model_id.hex()} is not on this node")
        return web.Response(body=data, content_type="application/octet-stream")

    async def model_drift(self, request: web.Request) -> web.Response:
        """The committed drift of a model family's active model (node/app/drift_state.py)."""
        name = request.match_info["name"]
        if re.fullmatch(NAME_PATTERN, name) is None:
            return error(400, "bad_name", f"a model name matches {NAME_PATTERN}")
        return await self.node.worker.client(lambda: self._drift(name))

    def _drift(self, name: str) -> web.Response:
        """On the application worker: the state read and the model cache."""
        found = self.node.ledger.drift(name)
        if found is None:
            return error(404, "not_found", f"no active model named {name!r}")
        record = found.record
        return web.json_response(
            {
                "model": name,
                "model_id": found.model_id.hex(),
                "height": self.node.ledger.height,
                "state_key": drift_key(found.model_id).hex(),
                "window": found.window,
                "notice": found.notice_ppm / PSI_SCALE,
                "alarm": found.alarm_ppm / PSI_SCALE,
                "count": record.window_count,
                "bins": list(record.window_bins),
                "total": list(record.total_bins),
                "training": None if found.training_bins is None else list(found.training_bins),
                "edges": [str(e) for e in SCORE_EDGES],
                "windows": record.windows,
                "psi": None if record.last_psi_ppm is None else record.last_psi_ppm / PSI_SCALE,
                "level": found.level,
                "history": [
                    {"window": w, "height": h, "psi": p / PSI_SCALE} for w, h, p in record.history
                ],
            }
        )

    async def get_contract(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if re.fullmatch(NAME_PATTERN, name) is None:
            return error(400, "bad_name", f"a contract name matches {NAME_PATTERN}")
        return await self.node.worker.client(lambda: self._contract(name))

    def _contract(self, name: str) -> web.Response:
        """On the application worker: decoding a program shares the VM's program cache."""
        code = self.node.store.get(contracts.CODE + name.encode())
        if code is None:
            return error(404, "not_found", f"no contract named {name!r}")
        program = contracts.program_for(code)
        return web.json_response(
            {
                "name": name,
                "code_hash": contracts.code_hash(code).hex(),
                "size": len(code),
                "methods": program.public_methods(),
            }
        )

    async def query_contract(self, request: web.Request) -> web.Response:
        """Run a method against committed state; nothing it writes is kept."""
        if re.fullmatch(NAME_PATTERN, request.match_info["name"]) is None:
            return error(400, "bad_name", f"a contract name matches {NAME_PATTERN}")
        body = await read_json(request, MAX_QUERY_BODY_BYTES)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("method"), str)
            or not body.keys() <= {"method", "args", "prove"}
        ):
            return error(400, "bad_request", 'send {"method": NAME, "args": [...], "prove": BOOL}')
        try:
            args = from_json(body.get("args", []))
        except JSONValueError as exc:
            return error(400, "bad_args", str(exc))
        if type(args) is not list:
            return error(400, "bad_args", "args must be a JSON list")
        prove = body.get("prove", False)
        if type(prove) is not bool:
            return error(400, "bad_request", "prove must be true or false")
        if self.queries_in_flight >= MAX_QUERIES_IN_FLIGHT:
            return error(503, "busy", f"{MAX_QUERIES_IN_FLIGHT} queries already run on this node")
        self.queries_in_flight += 1
        try:
            return await self.node.worker.client(
                lambda: self._query(request.match_info["name"], body["method"], args, prove)
            )
        finally:
            self.queries_in_flight -= 1

    def _query(self, name: str, method: str, args: list, prove: bool) -> web.Response:
        """On the application worker: a VM run against committed state (gas-bounded).

        With ``prove``, every state key the run read comes back with its proof under the
        latest certified header, so a client can re-run the query itself (node/app/light.py).
        """
        height = self.node.ledger.height
        header = self.node.ledger.header(height)
        if prove and header is None:
            return error(404, "not_found", "no block committed yet: nothing certifies the state")
        if self.node.store.get(contracts.CODE + name.encode()) is None:
            return error(404, "not_found", f"no contract named {name!r}")
        recorder = ReadRecorder(self.node.store.get)
        time_ms = header.timestamp_ms if header else 0
        try:
            run = run_query(recorder, name, method, args, height, time_ms, MAX_QUERY_GAS)
        except TooManyReads as exc:
            return error(413, "too_many_reads", f"{exc}: too many to prove in one answer")
        except OutOfGas:
            return error(
                400, "query_gas", f"the query ran out of gas; this node gives a query at most "
                f"{MAX_QUERY_GAS} (and the chain's max_tx_gas at most)",
            )  # fmt: skip
        except VMError as exc:
            return error(400, "contract_error", contracts.describe(exc))
        answer: dict[str, Any] = {
            "result": to_json(run.value),
            "events": [{"name": n, "data": vm_json(d)} for n, d in run.events],
            "gas_used": run.gas_used,
        }
        if prove:
            answer["proof"] = {
                "height": height,
                "header": header.encode().hex(),  # type: ignore[union-attr]
                "certificate": self.node.store.certificate(height).hex(),  # type: ignore[union-attr]
                "reads": [
                    {
                        "key": key.hex(),
                        "value": None if value is None else value.hex(),
                        "proof": codec.encode(self.node.ledger.state_proof(key).to_wire()).hex(),
                    }
                    for key, value in sorted(recorder.reads.items())
                ],
            }
        return web.json_response(answer)

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus metrics (node/metrics.py), in the text exposition format."""
        return web.Response(
            body=self.node.metrics.render(), headers={"Content-Type": metrics_content_type}
        )

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    """Every error leaves as JSON with a stable code, including aiohttp's own."""
    try:
        return await handler(request)
    except WorkerBusy as exc:
        return error(503, "busy", str(exc))
    except BadRequest as exc:
        return error(exc.status, exc.code, exc.message)
    except ClientGone:
        return web.Response(status=400)  # the connection is gone: this answer goes nowhere
    except web.HTTPRequestEntityTooLarge:
        return error(413, "too_large", f"request body exceeds {MAX_API_BODY_BYTES} bytes")
    except web.HTTPException as exc:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        response = error(exc.status, code, exc.reason)
        if "Allow" in exc.headers:  # a 405 says which methods the path takes (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response


def counted(node: Node):  # type: ignore[no-untyped-def]
    """A middleware counting every request by route (its pattern, not the path) and status."""

    @web.middleware
    async def count(request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            metrics = node.metrics
            metrics.api_requests.labels(metrics.route_label(route), str(status)).inc()

    return count


def make_app(node: Node) -> web.Application:
    limited = node.metrics.rejected.labels("api", "rate_limited")
    buckets = Buckets(API_RATE_PER_ADDRESS, API_BURST_PER_ADDRESS)
    app = web.Application(
        client_max_size=MAX_API_BODY_BYTES,
        middlewares=[counted(node), rate_limited(buckets, limited.inc), json_errors],
    )
    app.add_routes(Api(node).routes())
    app.add_routes(explorer.routes())
    return app


async def start_api(
    node: Node, listen: str, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Serve the API on ``listen``; HTTPS when ``ssl_context`` is given (node/tls.py)."""
    from node.config import split_address

    host, port = split_address(listen)
    runner = web.AppRunner(
        make_app(node), access_log=None, keepalive_timeout=API_IDLE_TIMEOUT_S,
        auto_decompress=False,  # never inflate a client's bytes (http_guard.read_body)
    )  # fmt: skip
    await runner.setup()
    refused = node.metrics.rejected.labels("api", "too_many_connections")
    site = GuardedSite(
        runner, host, port, limit=MAX_API_CONNECTIONS, on_refuse=refused.inc,
        ssl_context=ssl_context,
    )  # fmt: skip
    await site.start()
    return runner


WORKER_ROUTES = (
    "/v1/txs",
    "/v1/txs/{hash}",
    "/v1/blocks",
    "/v1/anchors",
    "/v1/blocks/latest",
    "/v1/blocks/{height}",
    "/v1/anchors/{digest}",
    "/v1/contracts/{name}",
    "/v1/anomalies",
    "/v1/models",
    "/v1/contracts/{name}/query",
    "/v1/state/{key}",
    "/v1/light/changes",
)
"""Routes answered on the application worker: each may say 503 ``busy``."""
OPENAPI = openapi.document(
    {name: value for name, value in globals().items() if name.isupper() and name[0] != "_"}
)
