"""The API (and every uvicorn server of the project) parses HTTP with httptools, uvicorn's C parser."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def test_uvicorn_picks_httptools() -> None:
    """``crews.api.server`` leaves ``http`` at "auto": httptools when installed, else h11 (~65 % more CPU a
    request, bench/FINDINGS.md session 10). This fails when the dependency is missing from the install."""
    config = uvicorn.Config(FastAPI(), lifespan="off")
    config.load()

    assert config.http_protocol_class is HttpToolsProtocol
