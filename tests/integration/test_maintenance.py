"""`image prune`, `system df`, `system check [--repair]`, and a commit killed mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def _short(iid: str) -> str:
    return iid.removeprefix("sha256:")[:12]


def _committed(cli, cmd: str, *tag: str) -> str:
    cid = cli.ok("create", "busybox", "sh", "-c", cmd).strip()
    cli.ok("start", "-a", cid)
    return cli.ok("commit", cid, *tag).strip()


def test_prune_dangling_then_all_unused(cli, roots) -> None:
    unused = _committed(cli, "echo 1 > /one")
    used = _committed(cli, "echo 2 > /two")
    keep = _committed(cli, "echo 3 > /three", "keep:1")
    cli.ok("create", used, "true")
    r = cli("image", "prune", input="n\n")
    assert r.code == 0 and r.out.startswith("WARNING! This will remove all dangling images.\nAre you sure")
    assert unused in cli.ok("images", "-q", "--no-trunc")
    out = cli.ok("image", "prune", "-f")
    assert out.splitlines()[:2] == ["Deleted Images:", f"deleted: {unused}"]
    assert out.splitlines()[-1].startswith("Total reclaimed space: ") and out.splitlines()[-1] != "Total reclaimed space: 0B"
    left = cli.ok("images", "-q", "--no-trunc").split()
    assert unused not in left and used in left and keep in left
    assert not (roots.root / "blobs" / "sha256" / unused.removeprefix("sha256:")).exists()
    out = cli.ok("image", "prune", "-a", "-f", input="")
    assert "untagged: keep:1" in out and f"deleted: {keep}" in out
    left = cli.ok("images", "-q", "--no-trunc").split()
    assert used in left and len(left) == 2  # busybox: its containers still exist
    assert cli.ok("image", "prune", "-f") == "Total reclaimed space: 0B\n"
    assert cli("system", "check").code == 0


def test_system_df(cli, roots) -> None:
    cli.ok("create", "busybox", "true")
    cid = cli.ok("create", "busybox", "sh", "-c", "head -c 5000 /bin/busybox > /f").strip()
    cli.ok("start", "-a", cid)
    _committed(cli, "echo x > /x", "other:1")
    lines = cli.ok("system", "df").splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {ln[:16].strip(): ln[16:].split() for ln in lines[1:]}
    assert rows["Images"][:2] == ["2", "1"]
    assert rows["Containers"][:2] == ["3", "0"]
    assert rows["Local Volumes"] == ["0", "0", "0B", "0B"] and rows["Build Cache"] == ["0", "0", "0B", "0B"]
    data = json.loads(cli.ok("system", "df", "--format", "json").splitlines()[1])
    assert data["Type"] == "Containers"
    from moorage.engine import Engine

    eng = Engine(roots.root, roots.runroot)
    try:
        s = eng.df()["Summary"]
        sizes = [r["size"] for r in eng.ctx.db.query("SELECT size FROM layers")]
        assert s["Images"]["Size"] == sum(sizes) and s["Images"]["Reclaimable"] == min(sizes)
        assert s["Containers"]["Size"] >= 5000 and s["Containers"]["Reclaimable"] == s["Containers"]["Size"]
    finally:
        eng.ctx.db.close()


def test_check_reports_and_repairs_leftovers(cli, roots) -> None:
    out = cli.ok("system", "check")
    assert out == "no problems found\n"
    (roots.root / "tmp").mkdir(exist_ok=True)
    (roots.root / "tmp" / "upload-dead").write_bytes(b"x" * 100)
    layers = roots.root / "storage" / "overlay" / "layers"
    (layers / ".deadbeef.tmp" / "diff").mkdir(parents=True)
    (layers / "f00d" / "diff").mkdir(parents=True)
    (roots.root / "blobs" / "sha256" / ("ab" * 32)).write_bytes(b"nobody needs me")
    r = cli("system", "check")
    assert r.code == 1
    text = r.out
    assert "upload-dead" in text and ".deadbeef.tmp" in text and "f00d has no layer record" in text
    assert f"blob sha256:{'ab' * 32} is corrupt" in text
    assert len(r.out.splitlines()) == 5  # the bad blob is corrupt and unreferenced
    r = cli("system", "check", "--repair")
    assert r.code == 0 and r.out.count("(repaired)") == 4  # a removed corrupt blob is not also listed unreferenced
    assert cli.ok("system", "check") == "no problems found\n"
    assert not (layers / "f00d").exists() and list((roots.root / "tmp").iterdir()) == []


def test_check_missing_layer_dir_is_rebuilt(cli, roots) -> None:
    import shutil

    layers = roots.root / "storage" / "overlay" / "layers"
    (only,) = [p for p in layers.iterdir() if not p.name.startswith(".")]
    shutil.rmtree(only)
    r = cli("system", "check")
    assert r.code == 1 and "is missing" in r.out and "image sha256:" in r.out
    r = cli("system", "check", "--repair")
    assert r.code == 0 and "rebuilt from blob" in r.out, r.out
    assert cli.ok("system", "check") == "no problems found\n"
    assert cli.ok("run", "--rm", "busybox", "echo", "ok") == "ok\n"


def test_check_corrupt_layer_blob_breaks_the_image(cli, roots) -> None:
    info = json.loads(cli.ok("image", "inspect", "busybox"))[0]
    (blob,) = [p for p in (roots.root / "blobs" / "sha256").iterdir() if p.stat().st_size > 100_000]
    with open(blob, "r+b") as f:
        f.seek(1000)
        f.write(b"garbage")
    r = cli("system", "check")
    assert r.code == 1 and f"blob sha256:{blob.name} is corrupt" in r.out
    assert f"image {info['Id']} is broken: layer blob sha256:{blob.name}" in r.out
    r = cli("system", "check", "--repair")
    assert r.code == 1 and f"image {info['Id']} is broken" in r.out and not blob.exists()
    cli.ok("rmi", "busybox")
    assert cli.ok("system", "check") == "no problems found\n"


def test_commit_killed_midway_leaves_a_consistent_store(cli, roots) -> None:
    cid = cli.ok("create", "busybox", "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=96 2>/dev/null").strip()
    cli.ok("start", "-a", cid)
    before = cli.ok("images", "-q", "--no-trunc")
    tmp = roots.root / "tmp"
    p = subprocess.Popen([sys.executable, "-m", "moorage.cli", *roots.args(), "commit", cid, "half:1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and p.poll() is None:
            if tmp.is_dir() and any(f.stat().st_size > 1 << 20 for f in tmp.iterdir()):
                break
            time.sleep(0.002)
        assert p.poll() is None, "commit finished before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    assert cli.ok("images", "-q", "--no-trunc") == before
    r = cli("system", "check", "--repair")
    assert r.code == 0, r.out
    assert cli.ok("system", "check") == "no problems found\n"
    assert cli.ok("images", "-q", "--no-trunc") == before
    assert list(tmp.iterdir()) == []
    # and the store still works: the same commit now succeeds
    iid = cli.ok("commit", cid, "whole:1").strip()
    assert cli.ok("run", "--rm", iid, "sh", "-c", "wc -c < /big").strip() == str(96 << 20)
