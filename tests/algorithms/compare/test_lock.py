"""One comparison per directory: a second one is refused while the first runs, and a SIGKILLed
first one does not block the resume."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from branchgym.algorithms.compare.runner import _exclusive
from branchgym.errors import ConfigError


def test_second_comparison_in_a_directory_is_refused_until_the_first_dies(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from branchgym.algorithms.compare.runner import _exclusive\n"
            "with _exclusive(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"another `branchgym compare` is running .*pid {holder.pid}"):
            with _exclusive(tmp_path):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    t0 = time.monotonic()
    with _exclusive(tmp_path):  # the kernel released the lock with the process
        assert time.monotonic() - t0 < 5
