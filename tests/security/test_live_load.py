"""The real server under more concurrent requests than it has worker threads: every one is
answered (on SQLite, the admission limit keeps the write lock's holder from starving)."""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor


def test_more_concurrent_requests_than_worker_threads_are_all_answered(live_server, live_token):
    def call(i: int) -> int:
        req = urllib.request.Request(f"{live_server}/api/security/me?i={i}",
                                     headers={"Authorization": f"Bearer {live_token}"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status

    with ThreadPoolExecutor(max_workers=120) as pool:
        statuses = list(pool.map(call, range(240)))
    assert statuses == [200] * 240
