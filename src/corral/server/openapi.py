"""A small OpenAPI 3.1 document for the HTTP routes, built from the environment's models."""

from __future__ import annotations

from typing import Any

from ..environment import EnvClass

_ENVELOPE = {
    "type": "object",
    "properties": {
        "observation": {"$ref": "#/components/schemas/Observation"},
        "reward": {"type": ["number", "null"]},
        "done": {"type": "boolean"},
    },
    "required": ["observation", "reward", "done"],
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def openapi_document(env: EnvClass) -> dict[str, Any]:
    session_header = {
        "name": "X-Session-Id",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Continue the session a POST /reset opened. Without it the call is stateless.",
    }
    observation = {"200": {"description": "Observation envelope", **_json(_ENVELOPE)}}
    return {
        "openapi": "3.1.0",
        "info": {"title": env.info.name, "version": "1.0.0", "description": env.info.description},
        "paths": {
            "/reset": {"post": {
                "summary": "Start an episode; opens a session named in the X-Session-Id response header",
                "parameters": [session_header],
                "requestBody": {"required": False, **_json({"type": "object", "properties": {
                    "seed": {"type": "integer", "minimum": 0},
                    "episode_id": {"type": "string", "maxLength": 255},
                }, "additionalProperties": True})},
                "responses": observation,
            }},
            "/step": {"post": {
                "summary": "Apply an action",
                "parameters": [session_header],
                "requestBody": {"required": True, **_json({"type": "object", "properties": {
                    "action": {"$ref": "#/components/schemas/Action"},
                    "timeout_s": {"type": "number", "exclusiveMinimum": 0},
                    "request_id": {"type": "string"},
                }, "required": ["action"]})},
                "responses": {**observation, "422": {"description": "Validation error"}},
            }},
            "/state": {"get": {
                "summary": "The episode's state",
                "parameters": [session_header],
                "responses": {"200": {"description": "State", **_json({"$ref": "#/components/schemas/State"})}},
            }},
            "/health": {"get": {"summary": "Liveness", "responses": {"200": {"description": "healthy"}}}},
            "/metadata": {"get": {"summary": "Environment metadata", "responses": {"200": {"description": "ok"}}}},
            "/schema": {"get": {"summary": "Action, observation and state schemas",
                                "responses": {"200": {"description": "ok"}}}},
            "/mcp": {"post": {"summary": "MCP JSON-RPC 2.0", "responses": {"200": {"description": "JSON-RPC"}}}},
        },
        "components": {"schemas": {
            "Action": env.action_type.model_json_schema(ref_template="#/components/schemas/{model}"),
            "Observation": env.observation_type.model_json_schema(ref_template="#/components/schemas/{model}"),
            "State": env.state_type.model_json_schema(ref_template="#/components/schemas/{model}"),
        }},
    }
