"""The service: ``echoctl serve``, ECHO running unattended (DESIGN.md process model).

One process per vault owns the vault's single writer, runs the scheduler
(persisted next-run times per feed, systemd ``Persistent=`` semantics), the
health checks, the supervisor and the alert rules of :mod:`echo_archive.control`,
publishes events on the :class:`~echo_archive.events.EventBus`, and serves
HTTP (``/healthz``, ``/readyz``, ``/metrics``, ``/status``; the ``/v1`` API later).

Terms: *scheduler* (decides which feeds are due and runs them, at most one run
per feed at a time, under a per-feed timeout and a cap on concurrent feeds),
*run* (one harvest of one feed by the scheduler), *next run* (the persisted
POSIX time a feed is due), *jitter* (a per-feed offset that spreads runs).
"""
