"""The HTTP API's authentication and authorization core (issue 11, "Who may do what").

A layer between the service and control (``cli > service > api > control >
...``): the service mounts the API's router (:func:`echo_archive.api.router.build_router`);
the API reads the library services and writes through the vault's writer.

Terms (used alike in code, CLI, README and the ``audit`` entries):

principal
    Who a request acts for, once authenticated (:class:`~echo_archive.api.roles.Principal`):
    an API key or a user, with its role and, when scoped, its group's feeds.
    The anonymous principal has no role and reaches only the route groups
    ``[api] public`` opens.
API key
    A high-entropy bearer secret for a program (``echo_<key id>_<secret>``,
    :mod:`echo_archive.api.keys`): printed once to its creator, only its
    SHA-256 stored, sent as ``Authorization: Bearer`` or ``X-API-Key``;
    revoked or expired keys are refused at the next request.
role
    One of ``viewer < analyst < editor < admin``; each holds the permissions
    of the one below and its own (:mod:`echo_archive.api.roles`).
permission
    A (resource kind, action) pair such as ``items:read`` or ``keys:admin``.
scope
    A role may be scoped to a group of feeds (``[api.groups]``): it then
    holds only for those feeds (listings are limited to them) and holds no
    permission on the archive-wide kinds (operations, audit, keys, users).
break-glass
    A time-boxed emergency elevation an unscoped admin takes with a stated
    reason (:mod:`echo_archive.api.breakglass`); it adds the break-glass
    permissions no role holds, is audited and raises an alert.
audit entry
    An ``audit`` entry in the log (:mod:`echo_archive.api.audit`) for every
    key or user change and every break-glass use: actor, action, target,
    outcome, reason, request id; never a secret (DESIGN.md invariants 9, 10).
"""
