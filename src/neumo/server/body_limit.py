"""ASGI middleware that refuses request bodies above a byte limit before any handler parses them.

It trusts neither ``Content-Length`` nor chunked uploads: the body is read (at most ``limit + 1`` bytes)
and replayed to the app, so a lying or missing header cannot smuggle a larger body past the limit.
"""

from __future__ import annotations

import json

from neumo.server.limits import ErrorBody, limit_error


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def _refuse(self, send, status: int = 413, code: str = "", message: str = "") -> None:
        if status == 413:
            body = limit_error(
                413,
                "max_body_bytes",
                self.max_bytes,
                f"request body is larger than the limit of {self.max_bytes} bytes; send less text",
            ).body
        else:
            body = ErrorBody(error=code, message=message)
        payload = json.dumps(body.model_dump()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if b"content-length" in headers and b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return await self._refuse(
                send, 400, "bad_request", "request has both Content-Length and Transfer-Encoding; send one"
            )
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(send)
            chunks.append(chunk)
            more = msg.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the disconnect, as the server would

        return await self.app(scope, replay, send)
