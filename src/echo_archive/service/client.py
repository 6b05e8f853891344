"""Talk to the running service of a vault, or read what it last did when none runs.

``echoctl status`` and ``echoctl harvest --now`` use this: the service is
found through ``service.json`` in the vault (its pid must be alive on this
host) and asked over its control socket (mode 0600: only the vault's owner).
Without a running service, :func:`offline_status` reads the persisted
schedules and the last saved harvest report from the vault.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from echo_archive.control.alertstore import alert_status
from echo_archive.errors import EchoError, NotFoundError
from echo_archive.harvest.state import HarvestState
from echo_archive.service.runner import read_service_file
from echo_archive.service.schedule import ScheduleStore
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import Vault

__all__ = ["ServiceClient", "ServiceUnavailableError", "offline_status"]

TIMEOUT = 10.0
"""Seconds a request to the service may take."""


class ServiceUnavailableError(EchoError):
    """The service's ``service.json`` names a live process that does not answer."""


class ServiceClient:
    """A client of one running service (its control socket).

    Args:
        info: the service's ``service.json`` (see :func:`find`).
    """

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        control = info.get("control")
        transport = httpx.HTTPTransport(uds=control) if isinstance(control, str) else None
        base = "http://service" if transport is not None else str(info.get("url"))
        self._client = httpx.Client(base_url=base, transport=transport, timeout=TIMEOUT)

    @classmethod
    def find(cls, vault: Path) -> ServiceClient | None:
        """The client of the service running on ``vault``, or None when none runs."""
        info = read_service_file(Path(vault))
        return None if info is None else cls(info)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str) -> httpx.Response:
        try:
            return self._client.request(method, path)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"the service of pid {self.info.get('pid')} does not answer on "
                f"{self.info.get('control') or self.info.get('url')}: {exc}"
            ) from exc

    def status(self) -> dict[str, Any]:
        """``GET /status``: see :meth:`echo_archive.service.runner.Service.status`.

        Raises:
            ServiceUnavailableError: the service does not answer.
        """
        response = self._request("GET", "/status")
        data: dict[str, Any] = response.json()
        return data

    def harvest_now(self, feed: str) -> dict[str, Any]:
        """Ask the service to run ``feed`` now, ahead of the due ones.

        Raises:
            NotFoundError: the service does not schedule ``feed`` (unknown or disabled).
            ServiceUnavailableError: the service does not answer.
        """
        response = self._request("POST", f"/control/harvest/{feed}")
        if response.status_code == 404:
            raise NotFoundError(str(response.json().get("error")))
        data: dict[str, Any] = response.json()
        return data


def offline_status(vault: Vault) -> dict[str, Any]:
    """What the service last did, read from ``vault`` when no service runs.

    Returns the keys of the running status that the vault keeps: ``running``
    (false), ``vault``, ``log_size``, ``feeds`` (the persisted schedules),
    ``last_report`` (``id``, ``started_at``, and per feed ``status``/``error``,
    of the last saved harvest report), ``alerts`` (pending and firing as the
    service last saved them, with the silences muting them now), and empty
    ``checks`` and ``interventions``.
    """
    schedules = ScheduleStore(vault.catalog).all()
    state = HarvestState(vault.catalog)
    last: dict[str, Any] | None = None
    reports = state.reports(limit=1)
    if reports:
        report_id, started = reports[0]
        doc = state.report(report_id) or {}
        last = {
            "id": report_id,
            "started_at": started,
            "feeds": [
                {"name": f.get("name"), "status": f.get("status"), "error": f.get("error")}
                for f in doc.get("feeds", [])
                if isinstance(f, dict)
            ],
        }
    runs = state.feed_runs()
    feeds: list[dict[str, Any]] = []
    for _name, row in sorted(schedules.items()):
        doc = row.to_json()
        doc["running"] = False
        feeds.append(doc)
    for name in sorted(runs.keys() - schedules.keys()):
        last_start = runs[name][0]
        feeds.append(
            {
                "feed": name,
                "last_start": last_start,
                "last_run": format_timestamp(int(last_start * 1e9)),
                "last_outcome": "harvested",
                "running": False,
            }
        )
    try:
        size = vault.size
    except EchoError:
        size = 0
    try:
        alerts = [a.to_json() for a in alert_status(vault, time.time())]
    except (EchoError, sqlite3.Error):  # a vault from before alerts: none saved
        alerts = []
    return {
        "running": False,
        "vault": str(vault.path),
        "log_size": size,
        "feeds": feeds,
        "last_report": last,
        "checks": {},
        "alerts": alerts,
        "interventions": [],
        "stability": None,
    }
