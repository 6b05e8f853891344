"""Roles, permissions and the one authorization rule of the HTTP API.

A permission is a (resource kind, action) pair, written ``kind:action``.
The roles are ordered ``viewer < analyst < editor < admin`` and each holds
the permissions of the one below plus its own (role inheritance, the RBAC
"hierarchical" model of NIST's RBAC standard, ANSI INCITS 359, and the
deny-by-default rule of OWASP's Authorization Cheat Sheet): what no row
grants is refused.

The matrix (each cell: the actions the role holds on the kind; ``+`` marks
what the role adds to the one below)::

    kind         viewer   analyst        editor              admin
    items        read     read           read +write         read write
    captures     -        +read          read                read
    proofs       read     read           read                read
    feeds        read     read           read +write         read write +admin
    corrections  read     read           read +write         read write +approve
    operations   -        +read          read +write         read write +approve
    audit        -        -              -                   +read
    keys         -        -              -                   +read +admin
    users        -        -              -                   +read +admin

Break-glass (:mod:`echo_archive.api.breakglass`) adds
:data:`BREAK_GLASS_PERMISSIONS` (``operations:admin``, ``items:admin``: the
emergency powers such as high-risk repairs) to an unscoped admin for the
minutes it lasts; no role holds them otherwise.

Feed-group scope: a principal whose role is scoped to a group (``[api.groups]
newsroom = ["bbc-world", "hn-top"]``) holds its role's permissions on the
per-feed kinds (:data:`FEED_KINDS`: items, captures, feeds, corrections) only
for the group's feeds, and ``proofs:read`` (verification material names no
feed); it holds nothing on the archive-wide kinds (operations, audit, keys,
users), so a scoped admin cannot mint an unscoped key. A read asked without a
feed (a listing) is allowed and limited to :attr:`Principal.feeds` (:func:`listing_feeds`
gives a listing its filter); a write without a feed is refused.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from echo_archive.errors import PermissionDenied

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "BREAK_GLASS_PERMISSIONS",
    "FEED_KINDS",
    "KINDS",
    "ROLE_PERMISSIONS",
    "Permission",
    "Principal",
    "Role",
    "authorize",
    "listing_feeds",
    "matrix_rows",
    "parse_role",
]

KINDS: Final = (
    "items",
    "captures",
    "proofs",
    "feeds",
    "corrections",
    "operations",
    "audit",
    "keys",
    "users",
)
"""The resource kinds permissions name."""

ACTIONS: Final = ("read", "write", "approve", "admin")
"""The actions permissions name."""

FEED_KINDS: Final = frozenset({"items", "captures", "feeds", "corrections"})
"""The kinds whose resources belong to one feed (where a group scope applies)."""


@dataclass(frozen=True, order=True)
class Permission:
    """One (resource kind, action) pair, written ``kind:action`` (``items:read``).

    Attributes:
        kind: one of :data:`KINDS`.
        action: one of :data:`ACTIONS`.

    Raises:
        ValueError: an unknown kind or action (at construction).
    """

    kind: str
    action: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown resource kind {self.kind!r} (kinds: {', '.join(KINDS)})")
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} (actions: {', '.join(ACTIONS)})")

    @classmethod
    def parse(cls, text: str) -> Permission:
        """``"items:read"`` as a permission.

        Raises:
            ValueError: not ``kind:action`` with a known kind and action.
        """
        kind, sep, action = text.partition(":")
        if not sep:
            raise ValueError(f"permission {text!r}: expected kind:action (items:read)")
        return cls(kind, action)

    def __str__(self) -> str:
        return f"{self.kind}:{self.action}"


class Role(enum.IntEnum):
    """The roles, in order: each holds the permissions of every lower one."""

    VIEWER = 1
    ANALYST = 2
    EDITOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        """The role's name as written in commands and records (``viewer``...)."""
        return self.name.lower()


def parse_role(text: str) -> Role:
    """``"editor"`` as :class:`Role` (case-insensitive).

    Raises:
        ValueError: not a role's name (the message lists them).
    """
    try:
        return Role[text.strip().upper()]
    except KeyError:
        names = ", ".join(r.label for r in Role)
        raise ValueError(f"unknown role {text!r} (roles: {names})") from None


def _perms(*texts: str) -> frozenset[Permission]:
    return frozenset(Permission.parse(t) for t in texts)


_OWN: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.VIEWER: _perms("items:read", "proofs:read", "feeds:read", "corrections:read"),
    Role.ANALYST: _perms("captures:read", "operations:read"),
    Role.EDITOR: _perms("items:write", "feeds:write", "corrections:write", "operations:write"),
    Role.ADMIN: _perms(
        "feeds:admin",
        "corrections:approve",
        "operations:approve",
        "audit:read",
        "keys:read",
        "keys:admin",
        "users:read",
        "users:admin",
    ),
}
"""What each role adds to the one below (the ``+`` cells of the matrix)."""


def _inherit() -> dict[Role, frozenset[Permission]]:
    held: frozenset[Permission] = frozenset()
    out = {}
    for role in Role:
        held = held | _OWN[role]
        out[role] = held
    return out


ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = _inherit()
"""Every permission each role holds, inheritance included."""

BREAK_GLASS_PERMISSIONS: Final = _perms("operations:admin", "items:admin")
"""Held only by an unscoped admin under an active break-glass elevation."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, once authenticated.

    Attributes:
        name: the key's or user's name (``anonymous`` for no credential).
        kind: ``key``, ``user`` or ``anonymous``.
        role: the role, or None (anonymous: only public route groups).
        group: the feed group the role is scoped to, or None (unscoped).
        feeds: the feeds the scope covers (None: every feed; an empty set:
            a group ``[api.groups]`` no longer defines, which covers nothing).
        key_id: the API key's id, or None.
        elevated_until: POSIX seconds a break-glass elevation lasts until, or None.
    """

    name: str
    kind: Literal["key", "user", "anonymous"]
    role: Role | None
    group: str | None = None
    feeds: frozenset[str] | None = None
    key_id: str | None = None
    elevated_until: float | None = None

    def elevated(self, now: float) -> bool:
        """True while a break-glass elevation holds at POSIX time ``now``."""
        return self.elevated_until is not None and now < self.elevated_until

    def permissions(self, now: float) -> frozenset[Permission]:
        """The permissions the role holds at ``now`` (break-glass included), before scope."""
        if self.role is None:
            return frozenset()
        held = ROLE_PERMISSIONS[self.role]
        if self.role is Role.ADMIN and self.feeds is None and self.elevated(now):
            held = held | BREAK_GLASS_PERMISSIONS
        return held

    def to_json(self) -> dict[str, object]:
        """``{"name", "kind", "role", "group", "feeds", "key_id", "elevated_until"}``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "role": None if self.role is None else self.role.label,
            "group": self.group,
            "feeds": None if self.feeds is None else sorted(self.feeds),
            "key_id": self.key_id,
            "elevated_until": self.elevated_until,
        }


ANONYMOUS: Final = Principal(name="anonymous", kind="anonymous", role=None)
"""The principal of a request without credentials (public route groups only)."""


def authorize(
    principal: Principal, permission: Permission, feed: str | None = None, *, now: float = 0.0
) -> None:
    """Allow ``principal`` to do ``permission`` (on ``feed``), or raise.

    The rule of the module docstring: deny by default (OWASP Authorization
    Cheat Sheet, "deny by default" and "least privilege"); the role's
    inherited permissions, break-glass, then the feed-group scope.

    Args:
        principal: who asks.
        permission: what for.
        feed: the feed the resource belongs to, or None (a listing, or a
            kind with no feed).
        now: POSIX seconds (for a break-glass elevation's end).

    Raises:
        PermissionDenied: the role lacks the permission, or the scope does
            not cover ``feed``; the message names the permission and feed.
    """
    who = f"{principal.kind} {principal.name!r}"
    role = "no role" if principal.role is None else f"role {principal.role.label}"
    if permission not in principal.permissions(now):
        raise PermissionDenied(
            f"{permission}: {who} ({role}) does not hold it", str(permission), feed
        )
    if principal.feeds is None:
        return
    scope = f"scoped to feed group {principal.group!r}"
    if permission.kind not in FEED_KINDS:
        if permission == Permission("proofs", "read"):
            return
        raise PermissionDenied(
            f"{permission}: {who} is {scope}; {permission.kind} needs an unscoped principal",
            str(permission),
            feed,
        )
    if feed is None:
        if permission.action == "read":
            return  # a listing: the caller limits it to principal.feeds
        raise PermissionDenied(
            f"{permission}: {who} is {scope}; name a feed of the group", str(permission), feed
        )
    if feed not in principal.feeds:
        raise PermissionDenied(
            f"{permission} on feed {feed!r}: {who} is {scope}, which does not hold it",
            str(permission),
            feed,
        )


def listing_feeds(
    principal: Principal, permission: Permission, feed: str | None = None, *, now: float = 0.0
) -> frozenset[str] | None:
    """The feeds a listing of ``permission``'s kind may show ``principal``, after authorizing.

    What an items (captures, feeds...) listing filters by: None for an
    unscoped principal (every feed, or just ``feed`` when asked); for a
    scoped one, its group's feeds, or ``{feed}`` when it asks for one of them.

    Args:
        principal: who asks.
        permission: the listing's read permission (``items:read``).
        feed: the feed the request filters on, or None.
        now: POSIX seconds (break-glass).

    Raises:
        PermissionDenied: as :func:`authorize` (a ``feed`` outside the scope included).
    """
    authorize(principal, permission, feed, now=now)
    if principal.feeds is None:
        return None if feed is None else frozenset({feed})
    return principal.feeds if feed is None else frozenset({feed})


def matrix_rows() -> list[tuple[str, list[list[str]]]]:
    """The matrix as data: ``[(kind, [actions of viewer, analyst, editor, admin])]``."""
    return [
        (
            kind,
            [
                [a for a in ACTIONS if Permission(kind, a) in ROLE_PERMISSIONS[role]]
                for role in Role
            ],
        )
        for kind in KINDS
    ]
