"""64-bit time-ordered ids generated in-process (snowflake layout).

Layout: 41 bits of milliseconds since 2024-01-01 UTC, 10 bits of node id, 12 bits of sequence.
Each process that opens a store takes the next value of the store's ``node_seq`` counter, or
the node ``NOETL_NODE_ID`` names (:func:`set_node`, called by the store), so processes sharing
a database never share a node id (up to 1,024 at once). Before a store is opened it is random.
Ids travel as decimal strings in JSON.
"""

from __future__ import annotations

import random
import threading
import time

EPOCH_MS = 1704067200000  # 2024-01-01T00:00:00Z


class IdGenerator:
    def __init__(self, node_id: int | None = None):
        if node_id is None:
            node_id = random.SystemRandom().randrange(1024)
        self.node = node_id & 0x3FF
        self._last = 0
        self._seq = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            now = int(time.time() * 1000) - EPOCH_MS
            if now <= self._last:
                now = self._last
                self._seq = (self._seq + 1) & 0xFFF
                if self._seq == 0:
                    now += 1  # borrow the next millisecond rather than sleeping
            else:
                self._seq = 0
            self._last = now
            return (now << 22) | (self.node << 12) | self._seq


_default = IdGenerator()


def set_node(node_id: int) -> None:
    """Use this node id from now on (a store hands each process a unique one)."""
    with _default._lock:
        _default.node = node_id & 0x3FF


def new_id() -> int:
    return _default.next()


def new_id_str() -> str:
    return str(_default.next())
