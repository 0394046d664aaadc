"""The server's notification sender is woken by a commit that queued notifications, not by
every execution's end (most queue none: the wake-up only made the sender look at an empty
outbox once per execution under load). Polling (NOETL_NOTIFY_POLL) stays the baseline."""

from __future__ import annotations

from pathlib import Path

from noetl.dsl import parse_playbook
from noetl.local import LocalRunner

BODY = """workflow:
  - step: start
    next: work
  - step: work
    type: python
    code: |
      def main():
          return {'ok': 1}
"""


def _playbook(name: str, notify: bool) -> str:
    head = f"apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {{name: {name}}}\n"
    if notify:  # never delivered here: no sender runs in this process
        head += "notify:\n  - url: http://127.0.0.1:9/hook\n    status: COMPLETED\n"
    return head + BODY


def test_only_a_commit_that_queued_notifications_wakes_the_sender(tmp_path: Path) -> None:
    woken: list[int] = []
    with LocalRunner(f"sqlite:///{tmp_path / 'noetl.db'}") as runner:
        runner.engine.outbox_listeners.append(lambda: woken.append(1))
        for notify in (False, True, False):
            ex = runner.engine.start(parse_playbook(_playbook(f"outbox/{notify}", notify)))
            assert runner.wait(ex.execution_id, timeout=60)["status"] == "COMPLETED"
            assert len(woken) == (1 if notify or woken else 0)
        with runner.store.read() as tx:
            assert tx.next_notification_at() is not None  # the one queued is in the outbox
    assert woken == [1]
