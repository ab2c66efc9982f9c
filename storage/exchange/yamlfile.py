"""Reading YAML safely: libyaml's speed, bounded nesting and aliases, keys given once."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from storage.exchange.problems import ImportFileError, Problem, file_problem

# An import file needs four levels (file, section, entry, value); a few more are harmless.
MAX_DEPTH = 32
# Values that aliases may add beyond those written out: plenty for shared texts, far too few
# for an alias bomb ("billion laughs") to cost more than a moment.
MAX_ALIAS_VALUES = 100_000

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_COLLECTIONS = (None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
# YAML 1.1 turns 2022-13-01 into a crash and "2023-03-29 14:00:00" into a naive datetime;
# reading dates as text lets every date go through one parser with one kind of error.
_RESOLVERS = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Open:
    """A sequence or mapping whose events are still coming."""

    __slots__ = ("anchor", "key", "merges", "size", "value")

    def __init__(self, value: list[Any] | dict[Any, Any], anchor: str | None) -> None:
        self.value = value
        self.anchor = anchor
        self.size = 1  # values in it, an alias counted with all the values it stands for
        self.key: Any = _NO_KEY
        self.merges: list[Any] = []


_NO_KEY = object()
_MERGE_KEY = object()


def _line(event: Any) -> str:
    mark = event.start_mark
    return str(mark.line + 1) if mark is not None else "?"


def _error(problem: str, event: Any) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(None, None, problem, event.start_mark)


class _Reader:
    """Build a document's values straight from parser events, counting, without recursion.

    PyYAML's composer recurses once per level and its values share what aliases point to, so
    a deep or alias-bombed file fails late, or costs its full size later when it is read.
    Building values directly also saves the node graph: a third of the time, most memory.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.anchors: dict[str, tuple[Any, int]] = {}  # complete values and their sizes
        self.opened: set[str] = set()
        self.stack: list[_Open] = []
        self.twice: list[Problem] = []
        self.aliased = 0

    def read(self) -> Any:
        """Return the file's one document, or None for an empty file."""
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(StreamEndEvent):
            return None
        loader.get_event()  # document start
        while True:
            event = loader.get_event()
            if isinstance(event, CollectionStartEvent):
                self._open(event)
                continue
            value, size = self._value(event)
            if not self.stack:
                break
            self._attach(value, size, event)
        loader.get_event()  # document end
        if not loader.check_event(StreamEndEvent):
            raise _error("expected a single document, but found another", loader.get_event())
        if self.twice:
            raise ImportFileError(self.twice)
        return value

    def _open(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise file_problem("too_deep", limit=str(MAX_DEPTH), line=_line(event))
        if event.tag not in _COLLECTIONS:
            raise _error(f"the tag {event.tag} is not allowed", event)
        value: list[Any] | dict[Any, Any] = [] if isinstance(event, SequenceStartEvent) else {}
        if event.anchor is not None:
            self.opened.add(event.anchor)
        self.stack.append(_Open(value, event.anchor))

    def _value(self, event: Any) -> tuple[Any, int]:
        """Return the value an alias, a scalar or the end of a collection completes."""
        if isinstance(event, AliasEvent):
            if event.anchor not in self.anchors:
                what = "recursive" if event.anchor in self.opened else "undefined"
                raise _error(f"found {what} alias {event.anchor!r}", event)
            value, size = self.anchors[event.anchor]
            self.aliased += size
            if self.aliased > MAX_ALIAS_VALUES:
                limit = str(MAX_ALIAS_VALUES)
                raise file_problem("too_many_aliases", limit=limit, line=_line(event))
            return value, size
        if isinstance(event, ScalarEvent):
            value, size, anchor = self._scalar(event), 1, event.anchor
        else:  # the end of a sequence or mapping
            done = self.stack.pop()
            value, size, anchor = done.value, done.size, done.anchor
            for merged in done.merges:  # keys written out win over merged ones
                for key, item in merged.items():
                    value.setdefault(key, item)  # type: ignore[union-attr]
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        return value, size

    def _scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:
                return event.value  # quoted: always text
            tag = _STR
            for candidate, pattern in _RESOLVERS.get(event.value[:1], ()):
                if pattern.match(event.value):
                    tag = candidate
                    break
        if tag == _STR:
            return event.value
        if tag == _MERGE:
            return _MERGE_KEY
        construct = self.loader.yaml_constructors.get(tag)
        if construct is None:
            raise _error(f"the tag {tag} is not allowed", event)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        return construct(self.loader, node)

    def _attach(self, value: Any, size: int, event: Any) -> None:
        parent = self.stack[-1]
        parent.size += size
        if isinstance(parent.value, list):
            parent.value.append(value)
        elif parent.key is _NO_KEY:
            if isinstance(value, list | dict):
                raise _error("a key must be a single value, not a list or mapping", event)
            if value in parent.value and value is not _MERGE_KEY:
                detail = {"key": str(value), "line": _line(event)}
                self.twice.append(Problem("file", None, "duplicate_key", detail))
            parent.key = value
        elif parent.key is _MERGE_KEY:
            merged = value if isinstance(value, list) else [value]
            if not all(isinstance(item, dict) for item in merged):
                raise _error("'<<' merges only mappings", event)
            parent.merges += merged
            parent.key = _NO_KEY
        else:
            parent.value[parent.key] = value
            parent.key = _NO_KEY


def load_yaml(text: str) -> object:
    """Load a YAML document with dates as text; raise ImportFileError for what is wrong."""
    loader = _LOADER(text)
    try:
        return _Reader(loader).read()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = str(mark.line + 1) if mark is not None else "?"
        reason = error.problem or error.context or "unreadable"
        if "nesting depth" in reason:  # libyaml's own limit, deeper than ours
            raise file_problem("too_deep", limit=str(MAX_DEPTH), line=line) from None
        raise file_problem("yaml_syntax", line=line, reason=reason) from None
    except yaml.YAMLError as error:
        raise file_problem("yaml_syntax", line="?", reason=str(error)) from None
    finally:
        loader.dispose()
