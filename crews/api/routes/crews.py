"""``/crews``: register a crew from its YAML (or JSON) file, list, read and delete crews."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from crews.api.deps import CrewWriter, Deps
from crews.api.errors import Forbidden
from crews.api.models import CrewList, CrewSummary, ErrorBody
from crews.api.parsing import BODY_NAME, YAML_TYPES, parse_crew_off_loop
from crews.errors import CrewNotFound
from crews.spec.dump import dump_crew
from crews.spec.load import crew_json_schema, problems_in_text
from crews.spec.models import CrewSpec
from crews.spec.project_refs import check_declared
from crews.spec.tools import check_tool_names

router = APIRouter(tags=["crews"])


_EXAMPLE = """\
name: research
process: sequential
inputs:
  topic: {description: What to write about, default: honey bees}
roles:
  researcher: {role: Researcher, goal: Find simple, true facts about {topic}.}
  writer: {role: Writer, goal: Write clear, short text.}
tasks:
  research: {description: List three facts about {topic}., expected_output: Three bullets., agent: researcher}
  write: {description: Write one paragraph about {topic}., expected_output: One paragraph., agent: writer}
"""

_CREW_BODY: dict[str, Any] = {
    "required": True,
    "description": "The crew file, as YAML or JSON (the same schema: GET /schemas/crew.json).",
    "content": {
        "application/yaml": {"schema": {"type": "string"}, "example": _EXAMPLE},
        "application/json": {"schema": {"$ref": "#/components/schemas/CrewSpec"}},
    },
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown API key."},
    403: {"model": ErrorBody, "description": "The key lacks the scope, or the crew is another's."},
    404: {"model": ErrorBody, "description": "No crew by that name."},
}


@router.post(
    "/crews",
    status_code=201,
    openapi_extra={"requestBody": _CREW_BODY},
    responses={
        200: {"model": CrewSummary, "description": "A crew of that name was replaced."},
        413: {"model": ErrorBody, "description": "The body is over the size limit."},
        415: {"model": ErrorBody, "description": "The body is neither YAML nor JSON."},
        422: {
            "model": ErrorBody,
            "description": "The crew file is invalid (or names a tool, MCP server or CrewAI project the operator "
            "has not declared); issues name line and field.",
        },
        401: _ERRORS[401],
    },
)
async def register_crew(request: Request, response: Response, deps: Deps, caller: CrewWriter) -> CrewSummary:
    """Register a crew (201), or replace your crew of the same name (200): its next jobs use the new file.

    A crew belongs to the principal that registered it: another may not replace it (403) unless admin.
    """
    body = await request.body()
    spec = await parse_crew_off_loop(body, request.headers.get("content-type", ""), deps)
    problems = [] if deps.tools is None else check_tool_names(spec, await deps.tools.available())
    if deps.api.project_paths is not None:  # the project code the crewai workers may import
        problems += check_declared(spec, (path.name for path in deps.api.project_paths))
    if problems:
        raise problems_in_text(body.decode("utf-8"), BODY_NAME, problems)
    existed = await _exists(deps, spec.name)
    if not await deps.store.claim_crew(spec.name, caller.name, admin=caller.admin):
        raise Forbidden(
            f"the crew {spec.name!r} was registered by another principal: choose another name "
            "(or ask an admin to replace it)"
        )
    await deps.store.save_crew(spec)
    response.status_code = 200 if existed else 201
    response.headers["Location"] = f"/crews/{spec.name}"
    return CrewSummary.of(spec)


async def _exists(deps: Deps, name: str) -> bool:
    try:
        await deps.store.get_crew(name)
    except CrewNotFound:
        return False
    return True


@router.get("/crews", responses={401: _ERRORS[401]})
async def list_crews(deps: Deps) -> CrewList:
    """Every registered crew, by name."""
    specs = [await deps.store.get_crew(name) for name in await deps.store.list_crews()]
    return CrewList(crews=[CrewSummary.of(spec) for spec in specs])


@router.get("/schemas/crew.json", response_model=None)
async def crew_schema() -> dict[str, Any]:
    """The JSON schema of crew files (for editors: ``# yaml-language-server: $schema=<this URL>``)."""
    return crew_json_schema()


@router.get(
    "/crews/{name}",
    response_model=CrewSpec,
    responses={
        **_ERRORS,
        200: {"content": {"application/yaml": {"schema": {"type": "string"}, "example": _EXAMPLE}}},
    },
)
async def get_crew(name: str, request: Request, deps: Deps) -> CrewSpec | Response:
    """The crew's definition: JSON, or the crew file as YAML with ``Accept: application/yaml``."""
    spec = await deps.store.get_crew(name)
    accept = request.headers.get("accept", "")
    if any(media in accept for media in YAML_TYPES):
        return PlainTextResponse(dump_crew(spec), media_type="application/yaml")
    return spec


@router.delete("/crews/{name}", status_code=204, responses=_ERRORS)
async def delete_crew(name: str, deps: Deps, caller: CrewWriter) -> Response:
    """Forget your crew; its running jobs keep their own copy of it and run to the end."""
    await deps.store.get_crew(name)  # CrewNotFound → 404
    owner = await deps.store.crew_owner(name)
    if owner is not None and not caller.owns(owner):
        raise Forbidden(
            f"the crew {name!r} was registered by another principal: only it or an admin may delete it"
        )
    await deps.store.delete_crew(name)
    return Response(status_code=204)
