import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def bench_engine():
    if os.geteuid() != 0:
        pytest.skip("benchmarks run real containers: root needed")
    import _fixtures as fx

    from moorage import Engine

    work = Path(tempfile.mkdtemp(prefix="moorage-bench-"))
    run = Path(tempfile.mkdtemp(prefix="moorage-bench-", dir="/run"))
    eng = Engine(work / "root", run)
    eng.images.import_(str(fx.busybox_tar(work)), "bbench")
    yield eng, work
    for c in eng.containers.list(all=True):
        c.remove(force=True)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
