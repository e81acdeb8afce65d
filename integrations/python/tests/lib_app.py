"""Apps for the library tests, run by plain `python3 -m uvicorn` (no serve wrapper)."""
import asyncio
import os

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from omnimind_sentinel import SentinelMiddleware, install_stack_dump, watchdog

install_stack_dump()

# FastAPI of any version: the middleware sees the lifespan messages.
fastapi_app = FastAPI()


@fastapi_app.on_event("startup")
async def slow_startup():
    await asyncio.sleep(float(os.environ.get("STARTUP_DELAY", "0")))


@fastapi_app.get("/health")
async def health():
    return {"ok": True}


middleware_app = SentinelMiddleware(fastapi_app)


# A lifespan context manager (Starlette's lifespan=, FastAPI's from 0.93 on).
async def ok(request):
    return PlainTextResponse("ok")


async def lifespan(app):
    async with watchdog(status=lambda: "starlette sample"):
        yield


lifespan_app = Starlette(routes=[Route("/health", ok)], lifespan=lifespan)
