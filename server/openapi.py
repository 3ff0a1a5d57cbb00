"""The archive API described as OpenAPI 3.1, served at ``GET /api/openapi.json``.

Hand-written rather than generated: the handlers are plain aiohttp, and this document is the
contract archivists' tools are written against. ``tests/test_archive_api_functional.py`` checks
that every path here is routed and every archive route is described.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["SPEC", "add_routes"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "404": {"$ref": "#/components/responses/NotFound"},
}
_ID = {
    "name": "recording_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}
_TICKET = {
    "name": "ticket",
    "in": "query",
    "required": False,
    "description": "media ticket from the recording detail (instead of the Authorization header)",
    "schema": {"type": "string", "maxLength": 1024},
}


def _q(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_MEDIA = {
    "200": {"description": "the whole file", "content": {"*/*": {}}},
    "206": {"description": "the requested byte range (Range, If-Range)"},
    "416": {"description": "Range not satisfiable (past the end)"},
    **_ERRORS,
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Tingshen archive API",
        "version": "1",
        "description": (
            "Find, play, verify, export and back up hearing recordings. Every call needs a bearer "
            "token: an archivist or admin token (`tingshen token --role archivist`), or a judge's "
            "join token (the judge's own court only). Sealed hearings: admins only. Every listing, "
            "playback, download and export is written to the hash-chained audit log."
        ),
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/archive/recordings": {
            "get": {
                "summary": "Search recordings (newest first)",
                "parameters": [
                    _q("court", "court code (exact)", type="string", maxLength=32),
                    _q("case", "part of the case number", type="string", maxLength=128),
                    _q("kind", "hearing kind (exact)", type="string", maxLength=32),
                    _q("status", "recording status", type="string", maxLength=16),
                    _q("hearing", "hearing id", type="string", maxLength=32),
                    _q(
                        "participant",
                        "part of a participant's name, or an id",
                        type="string",
                        maxLength=128,
                    ),
                    _q(
                        "since",
                        "ISO 8601 date or time (UTC if no zone)",
                        type="string",
                        format="date-time",
                    ),
                    _q(
                        "until",
                        "ISO 8601 date or time (UTC if no zone)",
                        type="string",
                        format="date-time",
                    ),
                    _q("limit", "page size", type="integer", minimum=1, maximum=500, default=50),
                    _q(
                        "offset",
                        "page start",
                        type="integer",
                        minimum=0,
                        maximum=1000000,
                        default=0,
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "items": {"type": "array", "items": _ref("RecordingSummary")},
                                "limit": {"type": "integer"},
                                "offset": {"type": "integer"},
                            },
                        }
                    ),
                    "400": {"$ref": "#/components/responses/BadRequest"},
                    "401": _ERRORS["401"],
                },
            }
        },
        "/api/archive/recordings/{recording_id}": {
            "get": {
                "summary": "A recording: tracks, segments, timeline, notes, pauses, integrity, files",
                "parameters": [_ID],
                "responses": {"200": _json(_ref("RecordingDetail")), **_ERRORS},
            }
        },
        "/api/archive/recordings/{recording_id}/files/{name}": {
            "get": {
                "summary": "A file of the recording (segment, composite, manifest...), with Range",
                "parameters": [
                    _ID,
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "a name from the detail's files (e.g. p1-video/000000.webm)",
                    },
                    _TICKET,
                    _q(
                        "download",
                        "1: Content-Disposition attachment (audited as a download)",
                        type="string",
                        enum=["1"],
                    ),
                ],
                "responses": _MEDIA,
            }
        },
        "/api/archive/recordings/{recording_id}/tracks/{track_id}/playable.webm": {
            "get": {
                "summary": "One track's segments remuxed into one seekable WebM (time 0 = playback.origin)",
                "parameters": [
                    _ID,
                    {
                        "name": "track_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    _TICKET,
                ],
                "responses": _MEDIA,
            }
        },
        "/api/archive/recordings/{recording_id}/exhibits": {
            "get": {
                "summary": "The exhibits registered on the recording's signed timeline",
                "parameters": [_ID],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"exhibits": {"type": "array", "items": _ref("Exhibit")}},
                        }
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/archive/recordings/{recording_id}/exhibits/{sha256}": {
            "get": {
                "summary": "An exhibit's file (attachment, its registered name), with Range",
                "parameters": [
                    _ID,
                    {
                        "name": "sha256",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "description": "the SHA-256 the recording's timeline registers",
                    },
                    _TICKET,
                ],
                "responses": {
                    **_MEDIA,
                    "200": {
                        "description": "the file; X-Tingshen-SHA256 is its registered hash",
                        "content": {"application/octet-stream": {}},
                    },
                    "404": {
                        "description": "no such recording, the timeline registers no such "
                        "exhibit, or its stored file is gone",
                        "content": {"application/json": {"schema": _ref("Error")}},
                    },
                    "409": {
                        "description": "the stored file is not the registered exhibit (damaged)",
                        "content": {"application/json": {"schema": _ref("Error")}},
                    },
                },
            }
        },
        "/api/archive/recordings/{recording_id}/verify": {
            "post": {
                "summary": "Verify the recording now against the server's key",
                "parameters": [_ID],
                "responses": {"200": _json(_ref("VerifyReport")), **_ERRORS},
            }
        },
        "/api/archive/recordings/{recording_id}/export": {
            "get": {
                "summary": (
                    "Export bundle (zip): media, manifest, signature, key, timeline, exhibits, "
                    "audit, README"
                ),
                "parameters": [_ID, _TICKET],
                "responses": {
                    "200": {"description": "the bundle", "content": {"application/zip": {}}},
                    **_ERRORS,
                },
            }
        },
        "/api/archive/recordings/{recording_id}/audit": {
            "get": {
                "summary": "The audit entries of one recording",
                "parameters": [_ID],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "entries": {"type": "array", "items": _ref("AuditEntry")}
                            },
                        }
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/archive/hearings/{hearing_id}/seal": {
            "post": {
                "summary": "Seal or unseal a hearing (admin)",
                "parameters": [
                    {
                        "name": "hearing_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["sealed"],
                                "properties": {
                                    "sealed": {"type": "boolean"},
                                    "reason": {"type": "string", "maxLength": 500},
                                },
                            }
                        }
                    }
                },
                "responses": {"200": _json({"type": "object"}), **_ERRORS},
            }
        },
        "/api/tokens": {
            "post": {
                "summary": "Issue a bearer token (admin): archivist/admin, or a hearing role's join token",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["role"],
                                "properties": {
                                    "role": {"type": "string"},
                                    "hearing": {"type": "string"},
                                    "subject": {"type": "string"},
                                    "ttlHours": {"type": "number"},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "properties": {
                                "token": {"type": "string"},
                                "role": {"type": "string"},
                                "expires_at": {"type": "number"},
                            },
                        }
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/archive/audit": {
            "get": {
                "summary": "Audit entries in chain order (archivist, admin)",
                "parameters": [
                    _q("after", "continue after this seq", type="integer"),
                    _q("limit", "1..1000", type="integer"),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "entries": {"type": "array", "items": _ref("AuditEntry")}
                            },
                        }
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/archive/audit/verify": {
            "get": {
                "summary": "Check the audit log's hash chain (archivist, admin)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "ok": {"type": "boolean"},
                                "entries": {"type": "integer"},
                                "faults": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/archive/backup": {
            "get": {
                "summary": "Backup status (archivist, admin)",
                "responses": {"200": _json({"type": "object"}), **_ERRORS},
            }
        },
        "/api/archive/backup/fixity": {
            "post": {
                "summary": "Fixity check now: re-hash primary and replicas, restore, re-copy",
                "parameters": [_q("recording", "only this recording", type="string")],
                "responses": {
                    "200": _json(_ref("FixityReport")),
                    "409": {"description": "no backup target configured"},
                    **_ERRORS,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            name: _json(_ref("Error"), text)
            for name, text in (
                ("BadRequest", "malformed input"),
                ("Unauthorized", "no valid token"),
                ("Forbidden", "sealed hearing, or not this viewer's court"),
                ("NotFound", "no such recording or file"),
            )
        },
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "RecordingSummary": {
                "type": "object",
                "properties": {
                    **{
                        k: {"type": "string"}
                        for k in ("id", "hearing_id", "status", "court", "case_number", "kind")
                    },
                    **{
                        k: {"type": ["string", "null"], "format": "date-time"}
                        for k in ("started_at", "ended_at", "interrupted_at", "verified_at")
                    },
                    "sealed": {"type": "boolean"},
                    "segments": {"type": "integer"},
                    "bytes": {"type": "integer"},
                    "participants": {"type": "array", "items": {"type": "string"}},
                    "verify_ok": {"type": ["boolean", "null"]},
                    "problems": {"type": "array", "items": {"type": "string"}},
                },
            },
            "RecordingFile": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "kind": {
                        "type": "string",
                        "enum": [
                            "segment",
                            "lost",
                            "derived",
                            "manifest",
                            "signature",
                            "public-key",
                            "status",
                            "events",
                        ],
                    },
                    "url": {"type": "string"},
                    "sha256": {"type": ["string", "null"]},
                    "bytes": {"type": ["integer", "null"]},
                    "track_id": {"type": ["string", "null"]},
                    "signed": {
                        "type": "boolean",
                        "description": "listed with its hash in the signed manifest",
                    },
                },
            },
            "RecordingDetail": {
                "allOf": [
                    _ref("RecordingSummary"),
                    {
                        "type": "object",
                        "properties": {
                            "tracks": {"type": "array", "items": {"type": "object"}},
                            "segments": {"type": "array", "items": {"type": "object"}},
                            "events": {"type": "array", "items": {"type": "object"}},
                            "notes": {"type": "array", "items": {"type": "object"}},
                            "pauses": {"type": "array", "items": {"type": "object"}},
                            "integrity": {"type": "object"},
                            "files": {"type": "array", "items": _ref("RecordingFile")},
                            "exhibits": {"type": "array", "items": _ref("Exhibit")},
                            "playback": {
                                "type": "object",
                                "description": (
                                    "origin (wall seconds at media time 0), composite URL and "
                                    "its wall-to-media map, per-track playable URLs"
                                ),
                            },
                            "ticket": {"type": "string"},
                            "export_url": {"type": "string"},
                        },
                    },
                ]
            },
            "Exhibit": {
                "type": "object",
                "description": "a file shown as evidence, as the signed timeline registers it",
                "properties": {
                    "name": {"type": "string"},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "bytes": {"type": "integer"},
                    "by": {"type": "string", "description": "who registered it (their name)"},
                    "role": {"type": "string", "description": "their role in the hearing"},
                    "at": {"type": "string", "format": "date-time"},
                    "seq": {"type": "integer", "description": "its line in events.jsonl"},
                    "url": {"type": "string", "description": "download URL (with a media ticket)"},
                },
            },
            "VerifyReport": {
                "type": "object",
                "properties": {
                    "ok": {"type": "boolean"},
                    "faults": {"type": "array", "items": {"type": "string"}},
                    "warnings": {"type": "array", "items": {"type": "string"}},
                    "segments": {"type": "integer"},
                },
            },
            "AuditEntry": {
                "type": "object",
                "properties": {
                    "seq": {"type": "integer"},
                    **{
                        k: {"type": "string"}
                        for k in ("at", "actor", "role", "action", "prev", "hash")
                    },
                    **{
                        k: {"type": ["string", "null"]}
                        for k in ("recording_id", "hearing_id", "target", "sha256")
                    },
                    "detail": {"type": "object"},
                },
            },
            "FixityReport": {
                "type": "object",
                "description": "Keys are <hearing>/<recording>/<file> for recording files and "
                "exhibits/<hearing>/<sha256> for exhibits; recopied items are '<target> <key>'.",
                "properties": {
                    "recordings": {"type": "integer"},
                    "files": {"type": "integer"},
                    "ok": {"type": "integer"},
                    "exhibits": {"type": "integer", "description": "distinct exhibit files"},
                    "exhibits_ok": {"type": "integer"},
                    "restored": {"type": "array", "items": {"type": "string"}},
                    "recopied": {"type": "array", "items": {"type": "string"}},
                    "unrecoverable": {"type": "array", "items": {"type": "string"}},
                    "mismatches": {"type": "array", "items": {"type": "string"}},
                    "clean": {"type": "boolean"},
                },
            },
        },
    },
}


def full_spec() -> dict[str, Any]:
    """The archive description plus the scheduling routes."""
    from server.scheduling import openapi_paths

    spec = {**SPEC, "paths": {**SPEC["paths"], **openapi_paths()}}
    spec["info"] = {
        **SPEC["info"],
        "title": "Tingshen API",
        "description": SPEC["info"]["description"]
        + " Scheduling (`/api/hearings...`) needs the admin token.",
    }
    return spec


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document (public: it holds no data)."""
    return web.json_response(full_spec())


def add_routes(app: web.Application) -> None:
    """Register ``GET /api/openapi.json``."""
    app.router.add_get("/api/openapi.json", openapi_json)
