"""Control: health checks, self-repair, the supervisor and alert rules (DESIGN.md layers).

Terms (DESIGN.md glossary):

check
    One health check of a vault or of the running service (disk free, a
    database's ``PRAGMA quick_check``, an incremental verify, stale feeds...)
    with a severity: ``ok`` < ``warning`` < ``critical``.
repair
    A change that cannot lose evidence (seal an unsealed tail, rebuild a
    derived index, remove temporary files of failed writes...), run by
    ``echoctl repair`` or the supervisor, recorded as a log entry. Nothing
    here ever rewrites the log.
stability score
    A number in [0, 1] summarising resource, error, performance and
    dependency stability; its formula is documented where it is computed.
drift
    A change in a signal's distribution found by an online detector.
intervention
    A typed action the supervisor plans (pause a feed, stretch its interval,
    lower a host's rate, force a breaker...), with validate, dry run, execute
    and rollback; high-risk ones wait for approval.
alert
    A rule's condition held for its pending period; fired, grouped,
    deduplicated, silenced or inhibited with Prometheus Alertmanager's
    semantics, and sent to channels (the log, a webhook, email).

This layer sits above the library services and below the service process
(``echoctl serve``): it reads vaults and the harvest state, and submits every
write to the vault's writer.
"""
