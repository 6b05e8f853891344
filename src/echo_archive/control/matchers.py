"""Label matchers, as Alertmanager and PromQL write them: ``name=value``, ``!=``, ``=~``, ``!~``.

One matcher tests one label of an alert's label set. Silences
(:mod:`echo_archive.control.silences`), inhibition rules
(:class:`~echo_archive.control.alerts.InhibitRule`) and rule selectors use
them, with Alertmanager's semantics (prometheus.io, Alertmanager
configuration, "<matcher>"):

* ``=`` / ``!=``: the label's value equals / differs from the text;
* ``=~`` / ``!~``: the value matches / does not match the regular
  expression, **fully anchored** (``feed=~"bbc.*"`` does not match
  ``xbbc``; Alertmanager and PromQL anchor both ends);
* a label the alert does not have has the value ``""`` (so ``team!=x``
  matches an alert with no ``team``, and ``team=""`` matches it too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["LABEL_NAME", "MatchOp", "Matcher", "matches_all", "parse_matcher"]

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
"""A Prometheus label name (prometheus.io, "Metric and label naming")."""

_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.S)


class MatchOp(StrEnum):
    """The four matcher operators of Alertmanager and PromQL."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value``: a test of one label.

    Attributes:
        name: the label name (:data:`LABEL_NAME`).
        op: the operator.
        value: the text, or the regular expression (Python ``re`` syntax,
            close to RE2 for the usual patterns) for ``=~`` / ``!~``.

    Raises:
        ValueError: ``name`` is not a label name, or ``value`` is not a
            valid regular expression for ``=~`` / ``!~``.
    """

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.name):
            raise ValueError(f"matcher {self.name!r}: not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if self.op in (MatchOp.RE, MatchOp.NRE):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self}: bad regular expression: {exc}") from exc

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` passes this matcher (a missing label is ``""``)."""
        got = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return got == self.value
        if self.op is MatchOp.NE:
            return got != self.value
        found = re.fullmatch(self.value, got, re.S) is not None  # re caches the pattern
        return found if self.op is MatchOp.RE else not found

    def __str__(self) -> str:
        """``name="value"`` (the value quoted as PromQL and Alertmanager print it)."""
        return f"{self.name}{self.op.value}{json.dumps(self.value, ensure_ascii=False)}"

    def to_json(self) -> dict[str, object]:
        """Alertmanager's API shape: ``{"name", "value", "isRegex", "isEqual"}``."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.op in (MatchOp.RE, MatchOp.NRE),
            "isEqual": self.op in (MatchOp.EQ, MatchOp.RE),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Matcher:
        """The matcher of :meth:`to_json`'s shape.

        Raises:
            ValueError: a field is missing or of the wrong type.
        """
        name, value = data.get("name"), data.get("value")
        is_regex, is_equal = data.get("isRegex", False), data.get("isEqual", True)
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"matcher {data!r}: name and value must be strings")
        op = {
            (False, True): MatchOp.EQ,
            (False, False): MatchOp.NE,
            (True, True): MatchOp.RE,
            (True, False): MatchOp.NRE,
        }[(bool(is_regex), bool(is_equal))]
        return cls(name, op, value)


def parse_matcher(text: str) -> Matcher:
    """Read ``name=value``, ``name!="value"``, ``name=~"re.*"`` or ``name!~re``.

    The value may be double-quoted (JSON string escapes) or bare; as
    ``amtool silence add`` reads them.

    Raises:
        ValueError: ``text`` is not a matcher (the message shows the forms).
    """
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise ValueError(
            f"matcher {text!r}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX "
            '(e.g. alertname=EchoFeedStale, feed=~"bbc-.*")'
        )
    name, op, raw = found.groups()
    value = raw
    if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"matcher {text!r}: bad quoted value: {exc.msg}") from exc
    return Matcher(name, MatchOp(op), value)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher passes ``labels`` (True for no matchers)."""
    return all(m.matches(labels) for m in matchers)
