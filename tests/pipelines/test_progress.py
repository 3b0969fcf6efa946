"""Progress bars: the counting bar of work done outside dask, and switching it off."""

from __future__ import annotations

import io
import threading
import time

import dask

from pipelines.progress import QUIET_KEY, CountingBar


def _work(bar: CountingBar, parts: int, amount: int) -> None:
    for _ in range(parts):
        bar(amount)
        time.sleep(0.01)


def test_counting_bar_counts_work_from_several_threads():
    out = io.StringIO()
    with CountingBar(400, interval=0.02, file=out) as bar:
        threads = [threading.Thread(target=_work, args=(bar, 10, 10)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert bar._fraction() == 0.5  # 200 of 400
    text = out.getvalue()
    assert text.endswith("\n")
    last = text.strip().split("\r")[-1]
    assert last.startswith("[" + "#" * 40 + "] | 100% Completed | ")
    assert " ms" in last or " s" in last
    assert text.count("Completed") >= 2  # also drawn while the work ran


def test_counting_bar_after_an_error_shows_the_work_done():
    out = io.StringIO()
    try:
        with CountingBar(100, file=out) as bar:
            bar(30)
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert "] | 30% Completed" in out.getvalue().split("\r")[-1]


def test_counting_bar_off_in_a_batch_or_by_the_quiet_key():
    out = io.StringIO()
    with CountingBar(10, enabled=False, file=out) as bar:
        bar(10)
        time.sleep(0.15)
    with dask.config.set({QUIET_KEY: True}), CountingBar(10, file=out) as bar:
        bar(10)
        time.sleep(0.15)
    assert out.getvalue() == ""
