"""What makes a playbook run by itself, and tells someone how it went: schedules
(:mod:`.schedules`, fired by :mod:`.scheduler`), webhooks (:mod:`.hooks`) and the delivery of
notifications from the outbox (:mod:`.notify`). Runs in the server process
(:class:`noetl.triggers.service.Triggers`, started by the API's lifespan)."""

from __future__ import annotations

from typing import Protocol


class TriggerMetrics(Protocol):
    """What the trigger loops report (``noetl.api.metrics.Metrics`` implements it)."""

    def schedule_fired(self, outcome: str, lag: float | None, missed: int) -> None: ...
    def notification_attempt(self, ok: bool, final: bool) -> None: ...


class NoMetrics:
    def schedule_fired(self, outcome: str, lag: float | None, missed: int) -> None:
        return None

    def notification_attempt(self, ok: bool, final: bool) -> None:
        return None
