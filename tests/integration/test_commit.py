"""`commit`, `diff`, `export`, `history` against a private store."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

CHANGE = ("echo new > /tmp/new; echo more >> /etc/passwd; rm /etc/group; "
          "rm -rf /home; mkdir -p /home/bob; echo b > /home/bob/f")


def _make_changes(cli, *extra: str) -> str:
    cid = cli.ok(*extra, "create", "busybox", "sh", "-c", CHANGE).strip()
    cli.ok("start", "-a", cid)
    return cid


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_commit_new_image_sees_exactly_the_changes(cli, driver: str) -> None:
    s = ("-s", driver)
    cid = _make_changes(cli, *s)
    out = cli.ok(*s, "diff", cid).splitlines()
    assert out == ["C /etc", "D /etc/group", "C /etc/passwd", "C /home", "D /home/alice",
                   "A /home/bob", "A /home/bob/f", "C /tmp", "A /tmp/new"]
    iid = cli.ok(*s, "commit", cid, "snap:1").strip()
    assert iid.startswith("sha256:") and len(iid) == 71
    seen = cli.ok(*s, "run", "--rm", "snap:1", "sh", "-c",
                  "cat /tmp/new; tail -1 /etc/passwd; ls /etc/group 2>&1; ls /home; cat /home/bob/f")
    assert seen.splitlines() == ["new", "more", "ls: /etc/group: No such file or directory", "bob", "b"]
    # the committed image's own containers start clean
    cid2 = cli.ok(*s, "create", "snap:1", "true").strip()
    assert cli.ok(*s, "diff", cid2) == ""


def test_commit_config_history_and_chain(cli) -> None:
    cid = _make_changes(cli)
    iid = cli.ok("commit", "-c", 'CMD ["echo","x"]', "-m", "first snap", "-a", "Ann <a@b>", cid, "snap:1").strip()
    info = json.loads(cli.ok("image", "inspect", "snap:1"))[0]
    assert info["Id"] == iid and info["Config"]["Cmd"] == ["echo", "x"]
    assert info["Author"] == "Ann <a@b>" and info["Comment"] == "first snap"
    assert len(info["RootFS"]["Layers"]) == 2
    assert cli.ok("run", "--rm", "snap:1") == "x\n"
    # second commit on top: a chain of 3
    cid2 = cli.ok("create", "snap:1", "sh", "-c", "echo two > /two").strip()
    cli.ok("start", "-a", cid2)
    iid2 = cli.ok("commit", "--pause=false", cid2, "snap:2").strip()
    info2 = json.loads(cli.ok("image", "inspect", iid2))[0]
    assert len(info2["RootFS"]["Layers"]) == 3 and info2["RootFS"]["Layers"][:2] == info["RootFS"]["Layers"]
    assert cli.ok("run", "--rm", "snap:2", "cat", "/two", "/tmp/new") == "two\nnew\n"
    hist = cli.ok("history", "snap:2").splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and "CREATED BY" in hist[0] and hist[0].rstrip().endswith("COMMENT")
    assert len(hist) == 4
    assert hist[1].startswith(iid2.removeprefix("sha256:")[:12]) and "sh -c echo two > /two" in hist[1]
    assert hist[2].startswith(iid.removeprefix("sha256:")[:12]) and hist[2].rstrip().endswith("first snap")
    assert "…" in hist[2]  # "sh -c echo new > ..." is longer than 45 characters
    assert cli.ok("history", "-q", "snap:2").split() == [
        iid2.removeprefix("sha256:")[:12], iid.removeprefix("sha256:")[:12],
        json.loads(cli.ok("image", "inspect", "busybox"))[0]["Id"].removeprefix("sha256:")[:12]]
    full = cli.ok("history", "--no-trunc", "snap:1").splitlines()
    assert full[1].startswith(iid) and CHANGE in full[1]
    raw = cli.ok("history", "-H=false", "--format", "{{.Size}}|{{.Comment}}", "snap:1").splitlines()
    assert raw[0].split("|")[0].isdigit() and raw[0].endswith("|first snap")


def test_commit_running_container_pauses_and_resumes(cli) -> None:
    cid = cli.ok("run", "-d", "busybox", "sh", "-c", "echo hi > /hi; sleep 60").strip()
    for _ in range(100):
        if "A /hi" in cli.ok("diff", cid):
            break
    iid = cli.ok("commit", cid).strip()
    assert cli.ok("inspect", "-f", "{{.State.Status}}", cid).strip() == "running"
    assert cli.ok("run", "--rm", iid, "cat", "/hi") == "hi\n"
    out = cli.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert "<none>:<none>" in out


def test_commit_never_started_and_api(engine, image) -> None:
    c = engine.containers.create(image, ["true"])
    img = c.commit(repository="fresh", tag="1", changes=["ENV A=b"], message="m")
    assert img.tags == ["docker.io/library/fresh:1"]
    assert "A=b" in img.config["config"]["Env"]
    assert engine.containers.run("fresh:1", ["sh", "-c", "echo $A"], remove=True) == b"b\n"
    c2 = engine.containers.create(image, ["sh", "-c", "mkdir /d; rm /etc/passwd; echo x >> /etc/group"])
    c2.start()
    c2.wait()
    assert c2.diff() == [{"Path": "/d", "Kind": 1}, {"Path": "/etc", "Kind": 0},
                         {"Path": "/etc/group", "Kind": 0}, {"Path": "/etc/passwd", "Kind": 2}]


def test_export_has_the_files_and_no_whiteouts(cli, tmp_path) -> None:
    cid = _make_changes(cli)
    out = tmp_path / "fs.tar"
    cli.ok("export", "-o", str(out), cid)
    names = set(tarfile.open(out).getnames())
    assert {"tmp/new", "home/bob/f", "bin/busybox", "etc/passwd"} <= names
    assert "etc/group" not in names and "home/alice" not in names
    assert not any(".wh." in n for n in names)
    with tarfile.open(out) as t:
        f = t.extractfile("tmp/new")
        assert f is not None and f.read() == b"new\n"
    # stdout gets the same tar; the rootfs is unmounted again
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "moorage.cli", *cli.roots.args(), "export", cid],
                       capture_output=True, check=True)
    assert set(tarfile.open(fileobj=io.BytesIO(p.stdout)).getnames()) == names
    mounts = open("/proc/self/mountinfo").read()
    assert cid not in mounts


def _top_layer_names(cli, s: tuple[str, ...], ref: str, tmp_path) -> dict[str, tarfile.TarInfo]:
    """The entries of the newest layer tar of ``ref``, from ``save``."""
    saved = tmp_path / "saved.tar"
    cli.ok(*s, "save", "-o", str(saved), ref)
    with tarfile.open(saved) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = t.extractfile(manifest[0]["Layers"][-1])
        assert layer is not None
        with tarfile.open(fileobj=io.BytesIO(layer.read()), mode="r:*") as lt:
            return {m.name.removeprefix("./"): m for m in lt}


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_commit_leaves_out_runtime_mount_targets(cli, driver: str, tmp_path) -> None:
    s = ("-s", driver)
    cid = cli.ok(*s, "create", "busybox", "sh", "-c",
                 "echo welcome > /etc/motd; cat /etc/hosts > /dev/null; echo x > /new").strip()
    cli.ok(*s, "start", "-a", cid)
    cli.ok(*s, "commit", cid, "snap:mt")
    names = _top_layer_names(cli, s, "snap:mt", tmp_path)
    # the image has none of them; the empty files the runtime bind-mounted over are not the user's
    assert not {"etc/hosts", "etc/hostname", "etc/resolv.conf"} & set(names), sorted(names)
    assert names["etc/motd"].size == len("welcome\n") and "new" in names
    assert cli.ok(*s, "run", "--rm", "snap:mt", "cat", "/etc/motd", "/new") == "welcome\nx\n"
    # the runtime still gets its mount targets in the new image's containers
    assert cli.ok(*s, "run", "--rm", "--hostname", "h1", "snap:mt", "cat", "/etc/hostname") == "h1\n"


def test_vfs_commit_keeps_xattrs(cli, engine, tmp_path) -> None:
    s = ("-s", "vfs")
    vfs = engine.ctx.driver("vfs")
    cid = cli.ok(*s, "create", "busybox", "sh", "-c", "echo data > /f").strip()
    cli.ok(*s, "start", "-a", cid)
    rootfs = Path(vfs.rootfs_path(cid))
    try:
        os.setxattr(rootfs / "f", "user.moorage", b"x")
    except OSError as e:
        pytest.skip(f"no user.* xattrs under {rootfs}: {e}")
    cli.ok(*s, "commit", cid, "snap:xa")
    layer = _top_layer_names(cli, s, "snap:xa", tmp_path)
    assert layer["f"].pax_headers.get("SCHILY.xattr.user.moorage") == "x"
    cid2 = cli.ok(*s, "create", "snap:xa", "cat", "/f").strip()
    assert cli.ok(*s, "start", "-a", cid2) == "data\n"
    assert os.getxattr(Path(vfs.rootfs_path(cid2)) / "f", "user.moorage") == b"x"
