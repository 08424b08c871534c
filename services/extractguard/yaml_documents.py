"""Declarative YAML files (alert rules, the enforcement policy) validated by a pydantic model, with
errors that name the file, the line and the field: ruamel.yaml keeps each node's position, which a
plain YAML loader throws away.

>>> import tempfile, pathlib
>>> from pydantic import BaseModel
>>> class Doc(BaseModel):
...     version: int
...     names: list[str]
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "doc.yaml"
>>> _ = bad.write_text("version: 1\\nnames:\\n  - a\\n  - [b]\\n")
>>> try:
...     load_document(bad, Doc)
... except DocumentError as error:
...     print(error.line, error.field)
4 names[1]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

Model = TypeVar("Model", bound=BaseModel)


class DocumentError(ValueError):
    """A file that does not load: says which file, line and field, and why."""

    def __init__(self, path: Path, line: int | None, field: str, reason: str) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")


def line_of(document: Any, loc: Sequence[int | str]) -> tuple[int | None, str]:
    """The 1-based line of the deepest node of `loc` found in the document, and the dotted field."""
    line: int | None = None
    node = document
    field = ""
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            field = f"{field}.{part}" if field else str(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            field = f"{field}[{part}]"
            node = node[part]
        else:
            break
    return line, field


def load_document(
    path: Path, model: type[Model], error: type[DocumentError] = DocumentError, shape: str = "a mapping"
) -> Model:
    """`path` parsed and validated as `model`; raises `error` (file:line: field: reason)."""
    try:
        document = YAML(typ="rt").load(path.read_text())
    except MarkedYAMLError as problem:
        mark = problem.problem_mark
        raise error(path, None if mark is None else mark.line + 1, "", str(problem.problem)) from None
    if not isinstance(document, CommentedMap):
        raise error(path, 1, "", f"the file is {shape}")
    try:
        return model.model_validate(document)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        line, field = line_of(document, first["loc"])
        raise error(path, line or 1, field, first["msg"]) from None
