"""Loading and linting playbook files: every problem reported with file, line and field.

Errors are collected, not raised at the first one, so one `vigil playbooks lint` run shows all
of them. Line numbers come from the YAML node tree (each node keeps its start mark): a pydantic
error location such as `phases[0].steps[2].due_after` is walked down that tree.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from importlib import resources
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from vigil_ir.playbooks.render import check_template
from vigil_ir.playbooks.schema import Playbook, cross_check, format_loc, raw_steps

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LintError:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PlaybookError(Exception):
    """One or more playbook files are invalid; `.errors` lists every problem."""

    def __init__(self, errors: Iterable[LintError]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        super().__init__(f"{count} playbook error{'s' if count != 1 else ''}:\n"
                         + "\n".join(f"  {error}" for error in self.errors))


@dataclass(frozen=True)
class PlaybookFile:
    path: Path
    text: str  # the file decoded as UTF-8, unchanged (sha256(text.encode()) == sha256)
    sha256: str  # hex digest of the exact file bytes
    playbook: Playbook


def parse_playbook(text: str, source: str = "<string>") -> Playbook:
    """Validate a playbook given as YAML text (e.g. the content stored with an incident)."""
    playbook, errors = _analyse(text, source)
    if errors:
        raise PlaybookError(errors)
    return playbook


def load_file(path: Path | str) -> PlaybookFile:
    """Read and validate one file; its id must equal the file name without extension."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlaybookError([LintError(str(path), None, "", f"cannot read: {exc.strerror or exc}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise PlaybookError([LintError(str(path), line, "", "not UTF-8 text")]) from exc
    playbook, errors = _analyse(text, str(path), stem=path.stem)
    if errors:
        raise PlaybookError(errors)
    return PlaybookFile(path=path, text=text, sha256=hashlib.sha256(raw).hexdigest(), playbook=playbook)


def playbook_paths(paths: Iterable[Path | str], errors: list[LintError]) -> list[Path]:
    """Files named directly plus the *.yaml / *.yml files directly inside named directories."""
    found: dict[Path, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir()
                                if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith("."))
        elif path.exists():
            candidates = [path]
        else:
            errors.append(LintError(str(path), None, "", "no such file or directory"))
            continue
        for candidate in candidates:
            found.setdefault(candidate.resolve(), candidate)
    return list(found.values())


def lint_paths(paths: Iterable[Path | str]) -> tuple[dict[str, PlaybookFile], list[LintError]]:
    """Validate files and directories; returns the valid playbooks by id and every error found."""
    errors: list[LintError] = []
    library: dict[str, PlaybookFile] = {}
    for path in playbook_paths(paths, errors):
        try:
            loaded = load_file(path)
        except PlaybookError as exc:
            errors.extend(exc.errors)
            continue
        other = library.get(loaded.playbook.id)
        if other is not None:
            errors.append(LintError(str(path), key_line(loaded.text, "id"), "id",
                                    f"duplicate playbook id {loaded.playbook.id!r} (also in {other.path})"))
            continue
        library[loaded.playbook.id] = loaded
    return library, errors


def library_directory() -> Path:
    """VIGIL_PLAYBOOKS_DIR, else the shipped playbooks (package data of `vigil_ir.shipped_playbooks`)."""
    from vigil_ir.config import load_settings

    configured = load_settings().playbooks_dir
    return Path(configured) if configured else Path(str(resources.files("vigil_ir.shipped_playbooks")))


def load_library(directory: Path | str | None = None) -> dict[str, PlaybookFile]:
    """Every playbook in the library, by id; PlaybookError naming every problem otherwise."""
    directory = Path(directory) if directory is not None else library_directory()
    if not directory.is_dir():
        raise PlaybookError([LintError(str(directory), None, "",
                                       "playbook directory not found (set VIGIL_PLAYBOOKS_DIR)")])
    library, errors = lint_paths([directory])
    if errors:
        raise PlaybookError(errors)
    return library


def suggest(library: dict[str, PlaybookFile], type: str, severity: str) -> list[PlaybookFile]:  # noqa: A002
    """The playbooks whose applies_to matches an incident, by id."""
    return [library[key] for key in sorted(library) if library[key].playbook.applies(type, severity)]


def _analyse(text: str, source: str, stem: str | None = None) -> tuple[Playbook | None, list[LintError]]:
    def error(line: int | None, loc: tuple, message: str) -> None:
        errors.append(LintError(source, line, format_loc(loc), message))

    errors: list[LintError] = []
    try:
        check_structure(text)
        root, data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow, e.g. NUL
            line = text[:exc.position].count("\n") + 1
        problem = (getattr(exc, "problem", None) or str(exc)).removeprefix("but ")
        context = getattr(exc, "context", None)
        message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
        error(line, (), " ".join(message.split()))
        return None, errors
    except Unreadable as exc:
        error(exc.line, (), exc.message)
        return None, errors
    for key_node in duplicate_keys(root):
        error(key_node.start_mark.line + 1, (), f"duplicate key {key_node.value!r} (only the last one counts)")
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        error(1, (), f"expected a mapping with id, title, version, description and phases, found {found}")
        return None, errors
    if stem is not None and isinstance(data.get("id"), str) and data["id"] != stem:
        error(line_at(root, ("id",)), ("id",), f"id {data['id']!r} must equal the file name {stem!r}")
    playbook = None
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            error(line_at(root, item["loc"]), item["loc"], _message(item))
    for loc, message in cross_check(data):
        error(line_at(root, loc), loc, message)
    for loc, step in raw_steps(data):
        for problem in check_template(step["instructions"]) if isinstance(step.get("instructions"), str) else ():
            error(line_at(root, (*loc, "instructions"), problem.line), (*loc, "instructions"), problem.message)
    errors.sort(key=lambda e: e.line or 0)
    return (None if errors else playbook), errors


def _message(item: dict) -> str:
    kind, loc, message = item["type"], item["loc"], item["msg"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known_fields(loc[:-1]), n=1)
        return f"unknown field {loc[-1]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "too_short":
        return "must not be empty"
    if kind == "string_type" and isinstance(item.get("input"), (int, float)) and not isinstance(item["input"], bool):
        return f"must be text: quote it, e.g. {loc[-1]}: \"{item['input']}\""
    if kind in ("model_type", "dict_type"):
        return "must be a mapping of fields"
    if kind == "bool_type":
        return "must be true or false"
    for start in ("Input should", "String should", "List should"):
        message = message.replace(start, "must")
    return message


def _known_fields(loc: tuple) -> list[str]:
    """Field names (as written in YAML) of the model at `loc`, for "did you mean" hints."""
    model: type[BaseModel] = Playbook
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return []
        model = inner
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        return next(filter(None, map(_model_in, typing.get_args(annotation))), None)
    return None


# --- YAML nodes: where things are in the file -------------------------------------------------

MAX_DEPTH = 32  # a playbook nests about six levels; PyYAML composes recursively
MAX_EXPANDED_NODES = 100_000  # the largest shipped playbook has under 400 values


class Unreadable(Exception):
    """YAML that parses but cannot be turned into data; `line` is where."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def check_structure(text: str) -> None:
    """Refuse, before composing, nesting deeper than MAX_DEPTH, an alias inside the value its anchor
    names (`a: &x [*x]`), and aliases that expand to more than MAX_EXPANDED_NODES values (a few
    hundred bytes of nested aliases can stand for millions: the "billion laughs"). Each would exhaust
    the memory, time or recursion of the code that walks the data; one streaming pass finds them."""
    open_anchors: list[str | None] = []
    sizes: list[int] = [0]  # values inside each open collection, aliases counted as what they expand to
    anchored: dict[str, int] = {}  # anchor -> how many values it stands for
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            open_anchors.append(event.anchor)
            sizes.append(1)
            if len(open_anchors) > MAX_DEPTH:
                raise Unreadable(event.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = open_anchors.pop(), sizes.pop()
            if anchor is not None:
                anchored[anchor] = size
            sizes[-1] += size
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise Unreadable(event.start_mark.line + 1, f"alias *{event.anchor} is inside the value it names")
            sizes[-1] += anchored.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            sizes[-1] += 1
            if event.anchor is not None:
                anchored[event.anchor] = 1
        if sum(sizes) > MAX_EXPANDED_NODES:
            raise Unreadable(event.start_mark.line + 1, f"aliases here expand the file to more than "
                             f"{MAX_EXPANDED_NODES:,} values; write the steps out instead of nesting aliases")


def read_yaml(text: str) -> tuple[Node | None, object]:
    """The node tree (for line numbers) and the data, from one safe parse."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        try:
            return root, (loader.construct_document(root) if root is not None else None)
        except ValueError as exc:  # a scalar such as the date 2025-02-30 or an integer of 5,000 digits
            node = _unconstructable(root) or root
            shown = repr(node.value) if isinstance(node.value, str) and len(node.value) <= 40 else "the value here"
            raise Unreadable(node.start_mark.line + 1, f"{shown} cannot be read as a value "
                             f"({str(exc)[:80]}); quote it if it is text") from None
    finally:
        loader.dispose()


def _unconstructable(root: Node) -> ScalarNode | None:
    """The first scalar PyYAML's safe constructor refuses."""
    pending, seen = [root], set()
    while pending:
        node = pending.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(node)
            except ValueError:
                return node
        elif isinstance(node, SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, MappingNode):
            pending.extend(part for pair in node.value for part in pair)
    return None


def line_at(root: Node | None, loc: tuple, template_line: int | None = None) -> int | None:
    """1-based line of the deepest node `loc` reaches (a key's own line for mapping values).

    With `template_line`, the line inside a `|` block scalar (the text starts on the next line).
    """
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode):
            pairs = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part]
            if not pairs:
                break
            key, node = pairs[-1]  # PyYAML keeps the last of duplicate keys
            line = key.start_mark.line + 1
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    else:
        if template_line and isinstance(node, ScalarNode) and node.style == "|":
            return node.start_mark.line + 1 + template_line
    return line


def key_line(text: str, key: str) -> int | None:
    try:
        return line_at(read_yaml(text)[0], (key,))
    except yaml.YAMLError:
        return None


def duplicate_keys(node: Node | None) -> list[ScalarNode]:
    """Keys repeated within one mapping: YAML loaders silently keep the last, hiding the first."""
    found: list[ScalarNode] = []
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                if key.value in seen:
                    found.append(key)
                seen.add(key.value)
            found.extend(duplicate_keys(value))
    elif isinstance(node, SequenceNode):
        for item in node.value:
            found.extend(duplicate_keys(item))
    return found
