"""Load YAML keeping where every key and value is written, so errors can name file:line:column.

Keys are always read as text (``on:`` stays ``"on"``), duplicate keys are an
error rather than a silent overwrite, and merge keys (``<<``) work as in YAML.

A crew file is untrusted: aliases and merge keys repeat what they refer to, so
a few hundred bytes can stand for billions of values ("billion laughs"). The
walk stops at ``MAX_NODES`` values (aliases counted each time they are used),
at ``MAX_DEPTH`` levels of nesting, and a mapping at ``MAX_NODES`` keys
(merges included), each with an error that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from crews.spec.problems import CrewFileError, DocPath, Problem, SpecIssue

MAX_NODES = 20_000
"""Most values one document may expand to (a crew file has a few hundred)."""
MAX_DEPTH = 40
"""Deepest nesting of mappings and lists."""


@dataclass(frozen=True)
class Mark:
    """A place in a file; line and column count from 1."""

    file: str
    line: int
    column: int


@dataclass
class Positions:
    """Where each path of a document is written: its key (in a mapping) and its value."""

    origin: Mark
    keys: dict[DocPath, Mark] = field(default_factory=dict)
    values: dict[DocPath, Mark] = field(default_factory=dict)

    def where(self, path: DocPath, *, at_key: bool = False) -> Mark:
        """The mark of ``path``; for a path not written in the file, its nearest written ancestor's key."""
        table = self.keys if at_key else self.values
        if path in table:
            return table[path]
        for end in range(len(path) - 1, 0, -1):
            mark = self.keys.get(path[:end]) or self.values.get(path[:end])
            if mark is not None:
                return mark
        return self.origin

    def locate(self, problems: Iterable[Problem]) -> list[SpecIssue]:
        """Problems as issues, in the order they appear in the files."""
        issues = []
        for problem in problems:
            mark = self.where(problem.path, at_key=problem.at_key)
            issues.append(SpecIssue(mark.file, mark.line, mark.column, problem.field, problem.message))
        return sorted(issues, key=lambda i: (i.file, i.line, i.column))

    def moved(self, prefix: DocPath, new_prefix: DocPath) -> Positions:
        """The positions under ``prefix``, re-rooted under ``new_prefix``."""
        out = Positions(self.origin)
        for src, dst in ((self.keys, out.keys), (self.values, out.values)):
            for path, mark in src.items():
                if path[: len(prefix)] == prefix:
                    dst[new_prefix + path[len(prefix) :]] = mark
        return out

    def update(self, other: Positions) -> None:
        self.keys.update(other.keys)
        self.values.update(other.values)


@dataclass
class Located:
    """A YAML document's data and where each part of it is written."""

    data: Any
    positions: Positions

    def fail(self, path: DocPath, message: str, *, at_key: bool = False) -> CrewFileError:
        return CrewFileError(self.positions.locate([Problem(path, message, at_key)]))


def _mark(file: str, mark: yaml.Mark | None) -> Mark:
    if mark is None:
        return Mark(file, 1, 1)
    return Mark(file, mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """The safe loader, with merges (``<<``) that stop growing at ``MAX_NODES`` keys."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        super().flatten_mapping(node)  # calls this method again for each merged mapping, deepest first
        if len(node.value) > MAX_NODES:
            raise _TooLarge(node.start_mark, f"a mapping has over {MAX_NODES} keys (merged keys counted)")


class _TooLarge(Exception):
    def __init__(self, mark: yaml.Mark | None, what: str) -> None:
        super().__init__(what)
        self.mark, self.what = mark, what


class _Walker:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.nodes = 0
        self.positions = Positions(Mark(file, 1, 1))
        self.open: set[int] = set()  # collections being walked, to refuse an alias inside itself
        self.written: dict[int, set[int]] = {}  # mapping node → its own (not merged) key nodes

    def walk(self, node: yaml.Node, path: DocPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge(node.start_mark, f"the file expands to over {MAX_NODES} values (aliases repeat "
                            "what they refer to)")  # fmt: skip
        if len(path) > MAX_DEPTH:
            raise _TooLarge(node.start_mark, f"the file nests deeper than {MAX_DEPTH} levels")
        mark = _mark(self.file, node.start_mark)
        self.positions.values[path] = mark
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self.loader.construct_object(node, deep=True)
        if id(node) in self.open:
            raise CrewFileError(
                [self._issue(mark, path, "an alias cannot refer to a collection inside itself")]
            )
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[str, Any]:
        # keys written here must be unique; keys merged in with "<<" may be overridden
        if id(node) not in self.written:  # an aliased mapping is walked again, already flattened
            self.written[id(node)] = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        written = self.written[id(node)]
        self.loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            here: DocPath = (*path, key)
            key_mark = _mark(self.file, key_node.start_mark)
            if id(key_node) in written:
                if key in seen:
                    message = (
                        f"duplicate key '{key}' (first written on line {self.positions.keys[here].line})"
                    )
                    raise CrewFileError([self._issue(key_mark, here, message)])
                seen.add(key)
            self.positions.keys[here] = key_mark
            out[key] = self.walk(value_node, here)
        return out

    def _key(self, node: yaml.Node, path: DocPath) -> str:
        if isinstance(node, yaml.ScalarNode) and node.value != "":
            return str(node.value)
        mark = _mark(self.file, node.start_mark)
        raise CrewFileError([self._issue(mark, path, "a key must be plain text")])

    def _issue(self, mark: Mark, path: DocPath, message: str) -> SpecIssue:
        return SpecIssue(mark.file, mark.line, mark.column, Problem(path, message).field, message)


def load_yaml(text: str, file: str) -> Located:
    """Parse one YAML document; a syntax error becomes a located :class:`CrewFileError`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, Positions(Mark(file, 1, 1)))
        walker = _Walker(loader, file)
        data = walker.walk(node, ())
        return Located(data, walker.positions)
    except yaml.MarkedYAMLError as exc:
        mark = _mark(file, exc.problem_mark or exc.context_mark)
        problem = exc.problem or exc.context or "cannot be read"
        if "expected a single document" in (exc.context or ""):
            problem = "a crew file holds one YAML document; remove the extra '---'"
        raise CrewFileError(
            [SpecIssue(file, mark.line, mark.column, "", f"invalid YAML: {problem}")]
        ) from None
    except yaml.YAMLError as exc:
        raise CrewFileError([SpecIssue(file, 1, 1, "", f"invalid YAML: {exc}")]) from None
    except _TooLarge as exc:
        mark = _mark(file, exc.mark)
        raise CrewFileError(
            [SpecIssue(file, mark.line, mark.column, "", f"{exc.what}: a crew file is refused past that")]
        ) from None
    except RecursionError:
        message = f"the file nests too deeply to be read (a crew file needs fewer than {MAX_DEPTH} levels)"
        raise CrewFileError([SpecIssue(file, 1, 1, "", message)]) from None
    finally:
        loader.dispose()


def require_mapping(located: Located, what: str, expected: str) -> Mapping[str, Any]:
    """The document's top-level mapping, or an error saying the file is empty or of the wrong shape."""
    data = located.data
    if data is None:
        raise located.fail((), f"the file is empty: a {what} needs {expected}")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise located.fail((), f"a {what} must be a mapping of {expected}, not {kind}")
    return data
