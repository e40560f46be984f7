"""The API's OpenAPI 3 document (served at /openapi.json), exact by construction.

Every parameter carries the pattern or bounds the handler enforces, and every operation lists
each status it can answer: schemathesis runs against it in the suite (tests/node/
test_api_schema.py) with every check, so a handler and this document cannot drift apart.
The limits come from where they are defined; nothing here is a second copy of a number.
"""

from __future__ import annotations

from typing import Any

from ml.limits import MAX_ARTIFACT_BYTES
from node.app.types import MAX_TX_BYTES, NAME_PATTERN


def document(limits: dict[str, Any]) -> dict:
    """The document, given the API's limits by name (node/api.py passes its own)."""
    max_height = 10 ** limits["MAX_HEIGHT_DIGITS"] - 1

    def error() -> dict:
        return {
            "description": "error (a stable code and a reason)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }

    def ok(description: str, media: str = "application/json") -> dict:
        return {"description": description, "content": {media: {"schema": {}}}}

    def path_param(name: str, schema: dict, description: str) -> dict:
        return {"name": name, "in": "path", "required": True, "schema": schema,
                "description": description}  # fmt: skip

    def query_param(name: str, schema: dict, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}  # fmt: skip

    def height(minimum: int) -> dict:
        return {"type": "integer", "minimum": minimum, "maximum": max_height}

    def get(summary: str, statuses: dict, params: list | None = None) -> dict:
        return {"get": {"summary": summary, "parameters": params or [], "responses": statuses}}

    digest = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
    name = {"type": "string", "pattern": f"^{NAME_PATTERN}$"}
    raw = query_param(
        "raw", {"type": "string", "enum": ["0", "1"]},
        "1: also the block, certificate and receipts as hex (to verify the block)",
    )  # fmt: skip
    paths: dict[str, Any] = {
        "/v1/txs": {
            "post": {
                "summary": "Submit one tx ({tx}) or a batch ({txs}) as hex of canonical msgpack",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Submit"}}
                    },
                },
                "responses": {
                    "202": ok("accepted: the hash, or per item a hash or an error"),
                    "400": error(),
                    "413": error(),
                    "415": error(),
                    "429": error(),
                },
            }
        },
        "/v1/txs/{hash}": get(
            "A transaction with receipt, block header, certificate and Merkle proof",
            {"200": ok("committed or pending"), "400": error(), "404": error()},
            [
                path_param("hash", digest, "the transaction's hash"),
                query_param(
                    "wait",
                    {"type": "string", "pattern": f"^{limits['WAIT_PATTERN']}$"},
                    f"seconds to wait for the commit (at most {limits['MAX_WAIT_S']:g} count)",
                ),
            ],
        ),
        "/v1/blocks": get(
            "Summaries of the newest blocks below `before`, newest first (continue at `next`)",
            {"200": ok("blocks and next"), "400": error()},
            [
                query_param("before", height(0), "only blocks below this height"),
                query_param(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": limits["MAX_BLOCK_LIST"]},
                    f"at most this many (default {limits['DEFAULT_BLOCK_LIST']})",
                ),
            ],
        ),
        "/v1/blocks/latest": get(
            "The latest committed block",
            {"200": ok("block"), "400": error(), "404": error()},
            [raw],
        ),
        "/v1/blocks/{height}": get(
            "A committed block by height",
            {"200": ok("block"), "400": error(), "404": error()},
            [path_param("height", height(0), "the block's height"), raw],
        ),
        "/v1/status": get(
            "Height, view, primary, peers, validators, mempool", {"200": ok("status")}
        ),
        "/v1/anchors": get(
            "Anchors in digest order after `after` (continue at `next`)",
            {"200": ok("anchors and next"), "400": error()},
            [
                query_param(
                    "after",
                    {"type": "string", "pattern": "^([0-9a-fA-F]{64})?$"},
                    "a digest: only anchors after it",
                ),
                query_param(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": limits["MAX_ANCHOR_LIST"]},
                    f"at most this many (default {limits['MAX_ANCHOR_LIST']})",
                ),
            ],
        ),
        "/v1/anchors/{digest}": get(
            "An anchored digest with its ancestors and descendants",
            {"200": ok("anchor and lineage"), "400": error(), "404": error()},
            [path_param("digest", digest, "the anchored SHA-256")],
        ),
        "/v1/contracts/{name}": get(
            "A deployed contract: code hash, size, public methods",
            {"200": ok("contract"), "400": error(), "404": error()},
            [path_param("name", name, "the contract's name")],
        ),
        "/v1/contracts/{name}/query": {
            "post": {
                "summary": "Run a method on committed state without keeping its writes "
                f"(at most {limits['MAX_QUERY_GAS']} gas on this node)",
                "parameters": [path_param("name", name, "the contract's name")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Query"}}
                    },
                },
                "responses": {
                    "200": ok("result, events, gas_used (and proof)"),
                    "400": error(),
                    "404": error(),
                    "413": error(),
                    "415": error(),
                },
            }
        },
        "/v1/anomalies": get(
            "Flagged score transactions from a height on (continue at `next`)",
            {"200": ok("anomalies and next"), "400": error()},
            [query_param("since", height(0), "the first height to look at (default 1)")],
        ),
        "/v1/models": {
            **get(
                f"Model names in the registry (at most {limits['MAX_MODEL_LIST']}) with their "
                "version counts and active version",
                {"200": ok("models and complete")},
            ),
            "post": {
                "summary": "Upload a model artifact (raw bytes), signed by a key governance "
                "authorises now (a client of a member with the `submit` role, or a member's "
                "admin key): checked and kept by id; peers fetch it when a block reads it, and "
                "one no committed block reads within "
                f"{limits['ARTIFACT_GRACE_BLOCKS']} blocks is deleted",
                "parameters": [
                    {
                        "name": limits["UPLOAD_KEY_HEADER"],
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                        "description": "the uploader's Ed25519 public key",
                    },
                    {
                        "name": limits["UPLOAD_SIGNATURE_HEADER"],
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{128}$"},
                        "description": "the key's Ed25519 signature of the artifact's model id "
                        "(its SHA-256), domain `vigil/model-upload/v1`, bound to the genesis hash",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {
                                "type": "string",
                                "format": "binary",
                                "maxLength": MAX_ARTIFACT_BYTES,
                            }
                        }
                    },
                },
                "responses": {
                    "201": ok("model id and schema"),
                    "400": error(),  # bad_artifact
                    "401": error(),  # unsigned, bad_signature, weak_key
                    "403": error(),  # unauthorised, forbidden
                    "408": error(),  # timeout (a slow body)
                    "413": error(),  # too_large
                    "415": error(),  # unsupported_encoding
                    "429": error(),  # upload_quota: MAX_UNREFERENCED_* of this key
                },
            },
        },
        "/v1/models/{id}": get(
            "A model artifact's bytes, by id",
            {
                "200": ok("artifact bytes", "application/octet-stream"),
                "400": error(),
                "404": error(),
            },
            [path_param("id", digest, "the model's id")],
        ),
        "/v1/models/{name}/drift": get(
            "The committed score drift of a model family's active model: the window's "
            "histogram, the training bins, the last PSI, its level and history",
            {"200": ok("drift"), "400": error(), "404": error()},
            [path_param("name", name, "the model family")],
        ),
        "/v1/state/{key}": get(
            "A state key's value or absence at the latest height, with its sparse Merkle "
            "proof, header and certificate",
            {
                "200": ok("value (hex or null), proof, header, certificate"),
                "400": error(),
                "404": error(),
            },
            [
                path_param(
                    "key",
                    {
                        "type": "string",
                        "pattern": f"^([0-9a-fA-F]{{2}}){{1,{limits['MAX_STATE_KEY_BYTES']}}}$",
                    },
                    "the state key in hex",
                )
            ],
        ),
        "/v1/light/changes": get(
            "Validator-set changes above a height, each with header, certificate, the new "
            "set and its state proof",
            {"200": ok("changes and complete"), "400": error()},
            [query_param("after", height(0), "only changes above this height (default 0)")],
        ),
        "/metrics": get("Prometheus metrics", {"200": ok("text", "text/plain")}),
    }
    for route in limits["WORKER_ROUTES"]:
        for operation in paths[route].values():
            operation["responses"]["503"] = error()
    for operation in (op for ops in paths.values() for op in ops.values()):
        operation["responses"]["429"] = error()  # per-address request rate (http_guard)
    hex_tx = {"type": "string", "pattern": "^([0-9a-fA-F]{2})+$", "maxLength": 2 * MAX_TX_BYTES}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Vigil node API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Query": {
                    "type": "object",
                    "required": ["method"],
                    "additionalProperties": False,
                    "properties": {
                        "method": {"type": "string"},
                        "args": {
                            "type": "array",
                            "description": "VM values in the JSON convention",
                        },
                        "prove": {
                            "type": "boolean",
                            "description": "also return every state key read, with its proof, "
                            "header and certificate (a client re-runs the query itself)",
                        },
                    },
                },
                "Submit": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["tx"],
                            "additionalProperties": False,
                            "properties": {"tx": hex_tx},
                        },
                        {
                            "type": "object",
                            "required": ["txs"],
                            "additionalProperties": False,
                            "properties": {
                                "txs": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": limits["MAX_SUBMIT_BATCH"],
                                    "items": {"type": "string"},
                                    "description": "hex of each; a bad item gets its own error",
                                }
                            },
                        },
                    ]
                },
            }
        },
    }
