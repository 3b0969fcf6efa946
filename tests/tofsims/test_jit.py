"""numba kernels: compiled once per user, also from a read-only installation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

KERNEL = textwrap.dedent("""
    import numpy as np
    from tofsims.jit import cached_njit

    @cached_njit(nogil=True)
    def total(values):
        out = 0
        for v in values:
            out += v
        return out
""")

RUN = textwrap.dedent("""
    import numpy as np
    import kernels
    assert kernels.total(np.arange(10)) == 45
    stats = kernels.total.stats
    hits, misses = sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
    print(hits, misses, int(stats.cache_path is None))
""")


@pytest.fixture
def read_only_install(tmp_path):
    """A module whose folder cannot hold a ``__pycache__`` (a file of that name is there).

    Tests run as root here, so permissions cannot make a folder read-only; a file where
    numba wants a folder fails the same way for it.
    """
    package = tmp_path / "site"
    package.mkdir()
    (package / "kernels.py").write_text(KERNEL)
    (package / "__pycache__").write_text("not a folder")
    return package


def _run(package, cache_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env.update(PYTHONPATH=os.pathsep.join([str(package), *sys.path]), XDG_CACHE_HOME=cache_home)
    done = subprocess.run(
        [sys.executable, "-c", RUN], env=env, capture_output=True, text=True, cwd=package
    )
    assert done.returncode == 0, done.stderr
    return [int(v) for v in done.stdout.split()]


def test_read_only_install_caches_in_the_users_cache(read_only_install, tmp_path):
    cache_home = tmp_path / "cache"
    assert _run(read_only_install, str(cache_home)) == [0, 1, 0]  # compiled, stored
    assert list((cache_home / "numba").rglob("*.nbi"))
    assert _run(read_only_install, str(cache_home)) == [1, 0, 0]  # loaded, not compiled


def test_no_writable_cache_still_runs(read_only_install, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "numba").write_text("not a folder")
    # numba refuses cache=True when no location is writable; the kernel is compiled instead
    assert _run(read_only_install, str(blocked)) == [0, 1, 1]
    assert _run(read_only_install, str(blocked)) == [0, 1, 1]
