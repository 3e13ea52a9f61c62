"""JSON-RPC 2.0 for MCP tools, shared by ``POST /mcp`` and ``{"type": "mcp"}`` WebSocket frames.

Errors never raise: they become the JSON-RPC ``error`` object (-32600 invalid request, -32601 unknown
method, -32602 bad params, -32603 internal, -32000 capacity). Tool names ``reset``/``step``/``state``/
``close`` are reserved, so an agent never reaches episode control through a tool.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import CapacityReached, CorralError, InvalidAction
from ..tools import RESERVED_TOOL_NAMES
from .sessions import Session, SessionManager

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
CAPACITY = -32000


def rpc_error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


async def handle_jsonrpc(manager: SessionManager, request: Any, session: Session | None) -> dict[str, Any]:
    """Answer one JSON-RPC request. ``session`` is the caller's session, or None for a stateless call."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        request_id = request.get("id") if isinstance(request, dict) else None
        return rpc_error(request_id, INVALID_REQUEST, "expected a JSON-RPC 2.0 request object with a 'method'")
    request_id = request.get("id")
    method = request["method"]
    params = request.get("params") or {}
    if not isinstance(params, dict):
        return rpc_error(request_id, INVALID_PARAMS, "'params' must be an object")
    try:
        if method == "tools/list":
            tools = [spec.listing() for spec in manager.tools.values()]
            return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}}
        if method == "tools/call":
            return await _call(manager, request_id, params, session)
        if method == "openenv/session/create":
            created = await manager.open(by_id=True)
            return {"jsonrpc": "2.0", "id": request_id, "result": {"session_id": created.id}}
        if method == "openenv/session/close":
            sid = params.get("session_id")
            if isinstance(sid, str) and sid in manager.sessions and manager.sessions[sid].by_id:
                await manager.close(manager.sessions[sid])
                return {"jsonrpc": "2.0", "id": request_id, "result": {"closed": True}}
            return rpc_error(request_id, INVALID_PARAMS, f"unknown session_id {sid!r}")
    except CapacityReached as exc:
        return rpc_error(request_id, CAPACITY, exc.message, exc.details)
    except CorralError as exc:
        return rpc_error(request_id, INTERNAL_ERROR, exc.message, {"code": exc.code})
    return rpc_error(request_id, METHOD_NOT_FOUND, f"unknown method {method!r}; expected tools/list or tools/call")


async def _call(
    manager: SessionManager, request_id: Any, params: dict[str, Any], session: Session | None
) -> dict[str, Any]:
    name = params.get("name")
    arguments = params.get("arguments") or {}
    if not isinstance(name, str) or not isinstance(arguments, dict):
        return rpc_error(request_id, INVALID_PARAMS, "tools/call needs params {name: str, arguments: object}")
    if name in RESERVED_TOOL_NAMES:
        return rpc_error(
            request_id, INVALID_PARAMS, f"{name!r} is episode control, not a tool; the orchestrator calls it"
        )
    sid = params.get("session_id")
    temporary = False
    if session is None and isinstance(sid, str):
        session = manager.get(sid)
    if session is None:
        session = await manager.open()
        temporary = True
    try:
        async with session.lock:
            value = await manager.call_tool(session, name, arguments)
    except InvalidAction as exc:
        return rpc_error(request_id, INVALID_PARAMS, exc.message, {"errors": exc.errors})
    except CorralError as exc:
        text = f"{exc.code}: {exc.message}"
        result = {"content": [{"type": "text", "text": text}], "isError": True, "data": None}
        return {"jsonrpc": "2.0", "id": request_id, "result": result}
    finally:
        if temporary:
            await manager.close(session)
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    result = {"content": [{"type": "text", "text": text}], "isError": False, "data": value}
    return {"jsonrpc": "2.0", "id": request_id, "result": result}
