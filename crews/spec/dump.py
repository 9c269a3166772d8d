"""Write a crew file: ``dump_crew(spec)`` gives YAML that loads back to an equal ``CrewSpec``."""

from __future__ import annotations

import yaml

from crews.spec.models import CrewSpec


def dump_crew(spec: CrewSpec) -> str:
    """The crew as YAML, leaving out defaults; loading it gives back an equal ``CrewSpec``."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    for role in data["roles"].values():
        role["tools"] = [t["name"] if t.keys() == {"name"} else t for t in role.get("tools", [])] or None
        if role.get("llm", {}).keys() == {"model"}:
            role["llm"] = role["llm"]["model"]
    if data.get("manager_llm", {}).keys() == {"model"}:
        data["manager_llm"] = data["manager_llm"]["model"]
    data["roles"] = {k: {f: v for f, v in r.items() if v is not None} for k, r in data["roles"].items()}
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
