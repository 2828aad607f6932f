"""The framework's own rate: a bare FastAPI app that parses the JSON body and answers 202.

No authentication, no database, no access log: the floor ``bench/ingest.py`` measures the webhook
route against. Run it as ``uvicorn bench.bare_app:app``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/api/webhooks/{source}", status_code=202)
async def receive(source: str, request: Request) -> dict[str, Any]:
    payload = json.loads(await request.body())
    return {"source": source, "event_type": payload.get("eventType")}
