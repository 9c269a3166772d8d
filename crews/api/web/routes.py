"""Routes of the web view: ``/`` (jobs), ``/ui/jobs/{id}`` (one job, live), ``/ui/crews``, ``/ui/static/*``.

The pages are the same for everyone and carry no data, so they are served
without the API key; everything they show comes from the JSON API, which
checks the key on every call (``crews.api.web`` docstring). The pages are read
once, when the app is built, so no request reads a file in the event loop
(the static files are served by Starlette's ``StaticFiles``, off the loop).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC_PREFIX = "/ui/static"
PAGES = ("jobs.html", "job.html", "crews.html")


def web_router() -> APIRouter:
    """The three pages, read from ``templates/`` now."""
    pages = {name: (HERE / "templates" / name).read_text(encoding="utf-8") for name in PAGES}
    router = APIRouter(include_in_schema=False)

    def page(name: str) -> HTMLResponse:
        return HTMLResponse(pages[name], headers={"Cache-Control": "no-store"})

    @router.get("/")
    async def jobs_page() -> HTMLResponse:
        """Recent jobs: crew, state, duration, tokens, cost; refreshed while open."""
        return page("jobs.html")

    @router.get("/ui/jobs/{job}")
    async def job_page(job: str) -> HTMLResponse:
        """One job, live from its events: a lane per role, outputs, tokens and cost, approvals."""
        return page("job.html")

    @router.get("/ui/crews")
    async def crews_page() -> HTMLResponse:
        """Registered crews: their roles, each role's queue depth and workers."""
        return page("crews.html")

    return router


def mount_web(app: FastAPI) -> None:
    """Add the pages and their static files to ``app``."""
    app.include_router(web_router())
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="web-static")
