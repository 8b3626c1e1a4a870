"""The metadata database under concurrent writers (real processes, real SQLite)."""

import multiprocessing
from pathlib import Path

from moorage.runtime.store import Store


def _writer(path: str, n: int, tag: int) -> None:
    s = Store(Path(path))
    for i in range(n):
        with s.transaction() as db:
            db.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (f"k{tag}-{i}", "v"))


def test_many_processes_write_safely(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Store(path).close()
    # spawn, not fork: like separate moorage CLIs, each process opens the
    # database itself (SQLite connections must not cross a fork).
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), 50, t)) for t in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    s = Store(path)
    assert s.one("SELECT count(*) AS n FROM meta WHERE key LIKE 'k%'")["n"] == 200
    assert s.one("PRAGMA journal_mode")[0] == "wal"


def test_rollback_on_error(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    try:
        with s.transaction() as db:
            db.execute("INSERT INTO meta(key, value) VALUES ('x', '1')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert s.one("SELECT * FROM meta WHERE key='x'") is None
