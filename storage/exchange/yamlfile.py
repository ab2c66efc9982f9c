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
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from storage.exchange.problems import ImportFileError, Problem, file_problem

# An import file needs four levels (file, section, entry, value); a few more are harmless.
MAX_DEPTH = 32
# Values that aliases may add beyond those written out: plenty for shared texts, far too few
# for an alias bomb ("billion laughs") to cost more than a moment.
MAX_ALIAS_VALUES = 100_000

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# YAML 1.1 turns 2022-13-01 into a crash and "2023-03-29 14:00:00" into a naive datetime;
# reading dates as text lets every date go through one parser with one kind of error.
_RESOLVERS = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Open:
    """A sequence or mapping whose events are still coming."""

    __slots__ = ("anchor", "key", "keys", "node", "size")

    def __init__(self, node: SequenceNode | MappingNode, anchor: str | None) -> None:
        self.node = node
        self.anchor = anchor
        self.size = 1  # values in it, an alias counted with all the values it stands for
        self.key: Node | None = None
        self.keys: set[str] = set()


def _line(event: Any) -> str:
    mark = event.start_mark
    return str(mark.line + 1) if mark is not None else "?"


class _Composer:
    """Build a document's node graph from parser events, counting as it goes, without recursion.

    PyYAML's composers recurse once per level and share aliased nodes, so a deep or
    alias-bombed file fails late or costs its full size later, when its values are read.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.anchors: dict[str, Node] = {}
        self.sizes: dict[str, int] = {}  # of anchored nodes that are complete
        self.stack: list[_Open] = []
        self.twice: list[Problem] = []
        self.aliased = 0

    def compose(self) -> Node | None:
        """Return the file's one document as nodes, or None for an empty file."""
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(StreamEndEvent):
            return None
        loader.get_event()  # document start
        root = None
        while root is None:
            event = loader.get_event()
            if isinstance(event, CollectionStartEvent):
                self._open(event)
                continue
            node, size = self._node(event)
            if self.stack:
                self._attach(node, size)
            else:
                root = node
        loader.get_event()  # document end
        if not loader.check_event(StreamEndEvent):
            event = loader.get_event()
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                root.start_mark,
                "but found another document",
                event.start_mark,
            )
        if self.twice:
            raise ImportFileError(self.twice)
        return root

    def _open(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise file_problem("too_deep", limit=str(MAX_DEPTH), line=_line(event))
        kind: type[SequenceNode | MappingNode]
        kind = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        self.stack.append(_Open(node, event.anchor))

    def _node(self, event: Any) -> tuple[Node, int]:
        """Return the node an alias, a scalar or the end of a collection completes."""
        # libyaml's marks are its own class, with the same line and column as PyYAML's.
        start: Any = event.start_mark
        end: Any = event.end_mark
        if isinstance(event, AliasEvent):
            if event.anchor not in self.sizes:
                what = "undefined" if event.anchor not in self.anchors else "recursive"
                raise yaml.composer.ComposerError(
                    None, None, f"found {what} alias {event.anchor!r}", start
                )
            self.aliased += self.sizes[event.anchor]
            if self.aliased > MAX_ALIAS_VALUES:
                limit = str(MAX_ALIAS_VALUES)
                raise file_problem("too_many_aliases", limit=limit, line=_line(event))
            return self.anchors[event.anchor], self.sizes[event.anchor]
        if isinstance(event, ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = self.loader.resolve(ScalarNode, event.value, event.implicit)
            node = ScalarNode(tag, event.value, start, end, event.style)
            if event.anchor is not None:
                self.anchors[event.anchor], self.sizes[event.anchor] = node, 1
            return node, 1
        done = self.stack.pop()
        done.node.end_mark = end
        if done.anchor is not None:
            self.sizes[done.anchor] = done.size
        return done.node, done.size

    def _attach(self, node: Node, size: int) -> None:
        parent = self.stack[-1]
        parent.size += size
        if isinstance(parent.node, SequenceNode):
            parent.node.value.append(node)
        elif parent.key is None:
            parent.key = node
            if isinstance(node, ScalarNode) and node.value != "<<":
                if node.value in parent.keys:
                    line = str(node.start_mark.line + 1)
                    detail = {"key": node.value, "line": line}
                    self.twice.append(Problem("file", None, "duplicate_key", detail))
                parent.keys.add(node.value)
        else:
            parent.node.value.append((parent.key, node))
            parent.key = None


def load_yaml(text: str) -> object:
    """Load a YAML document with dates as text; raise ImportFileError for what is wrong."""
    loader = _LOADER(text)
    loader.yaml_implicit_resolvers = _RESOLVERS
    try:
        node = _Composer(loader).compose()
        return None if node is None else loader.construct_document(node)
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
