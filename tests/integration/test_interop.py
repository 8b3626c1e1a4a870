"""Archives moved between moorage and its peers: podman (docker-archive and
oci-archive, both ways), skopeo (inspect, copy) and umoci (unpack gives the
tree moorage mounts). Each peer's test is skipped when it is not installed;
podman runs with a private store that is reset afterwards."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, Roots
from test_archive import oci_archive, tar_of

pytestmark = pytest.mark.peers


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


class Podman:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.args = [need("podman"), "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc",
                     "--storage-driver", "overlay", "--root", str(base / "root"), "--runroot", str(base / "runroot"),
                     "--tmpdir", str(base / "tmp")]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*self.args, *args], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, f"podman {' '.join(args)} exited {p.returncode}: {p.stderr}"
        return p

    def run(self, image: str, *cmd: str) -> str:
        return self("run", "--rm", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
                    "--network", "none", image, *cmd).stdout


@pytest.fixture
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    base = tmp_path_factory.mktemp("podman")
    (base / "tmp").mkdir()
    p = Podman(base)
    try:
        yield p
    finally:
        p("rm", "-a", "-f", check=False)
        p("system", "reset", "-f", check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_podman_archives_load_into_moorage(podman: Podman, roots: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    cli = Cli(roots)
    podman("import", str(busybox_tar), "localhost/pbb:latest")
    iid = podman("image", "inspect", "--format", "{{.Id}}", "localhost/pbb:latest").stdout.strip()
    for fmt in ("docker-archive", "oci-archive"):
        out = tmp_path / f"{fmt}.tar"
        podman("save", "--format", fmt, "-o", str(out), "localhost/pbb:latest")
        assert cli.ok("load", "-i", str(out)) == "Loaded image: localhost/pbb:latest\n", fmt
        assert cli.ok("images", "-q", "--no-trunc").strip() == f"sha256:{iid}", fmt
        assert cli.ok("run", "--rm", "localhost/pbb", "echo", fmt) == f"{fmt}\n"
        cli.ok("rmi", "localhost/pbb")


def test_moorage_archives_load_into_podman(podman: Podman, roots: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    cli = Cli(roots)
    cli.ok("import", "-c", "CMD echo from-moorage", str(busybox_tar), "localhost/mbb:1")
    iid = cli.ok("images", "-q", "--no-trunc").strip()
    for fmt in ("docker-archive", "oci-archive"):
        out = tmp_path / f"{fmt}.tar"
        cli.ok("save", "--format", fmt, "-o", str(out), "localhost/mbb:1")
        assert "localhost/mbb:1" in podman("load", "-i", str(out)).stdout
        assert podman("image", "inspect", "--format", "{{.Id}}", "localhost/mbb:1").stdout.strip() == iid[7:]
        assert podman.run("localhost/mbb:1") == "from-moorage\n"
        podman("rmi", "localhost/mbb:1")


def test_skopeo_reads_moorage_archives(roots: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    skopeo = need("skopeo")
    cli = Cli(roots)
    cli.ok("import", str(busybox_tar), "busybox")
    iid = cli.ok("images", "-q", "--no-trunc").strip()
    docker, oci = tmp_path / "d.tar", tmp_path / "o.tar"
    cli.ok("save", "-o", str(docker), "busybox")
    cli.ok("save", "--format", "oci-archive", "-o", str(oci), "busybox")
    # the docker-archive is also an OCI layout (Docker 25's layout)
    for src in (f"docker-archive:{docker}", f"oci-archive:{oci}", f"oci-archive:{docker}"):
        p = subprocess.run([skopeo, "inspect", "--config", src], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (src, p.stderr)
        config = json.loads(p.stdout)
        assert config["rootfs"]["diff_ids"] == json.loads(cli.ok("image", "inspect", "busybox"))[0]["RootFS"]["Layers"]
        dest = tmp_path / f"dir-{src.split(':')[0]}-{Path(src.split(':')[1]).stem}"
        p = subprocess.run([skopeo, "copy", "-q", src, f"dir:{dest}"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (src, p.stderr)
        manifest = json.loads((dest / "manifest.json").read_text())
        assert manifest["config"]["digest"] == iid
        assert (dest / iid[7:]).is_file() and all((dest / d["digest"][7:]).is_file() for d in manifest["layers"])


def tree(root: Path) -> dict[str, Any]:
    """Names, types, permission bits, sizes and symlink targets under ``root``."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_size)
    return out


def test_umoci_unpack_matches_the_mounted_rootfs(engine: Any, busybox_tar: Path, tmp_path: Path) -> None:
    umoci = need("umoci")
    # two layers: the second adds files and a symlink, and deletes one (a whiteout)
    top = tar_of({"opt/data.bin": os.urandom(5000), "etc/motd": b"hi\n", ".wh.home": b""}, dirs=("opt",))
    buf = tmp_path / "top.tar"
    buf.write_bytes(top)
    with tarfile.open(buf, "a") as t:
        ti = tarfile.TarInfo("opt/link")
        ti.type, ti.linkname = tarfile.SYMTYPE, "../etc/motd"
        t.addfile(ti)
    arch = oci_archive(tmp_path / "two.tar", [busybox_tar.read_bytes(), buf.read_bytes()], ref="two:1")
    (img,) = engine.images.load(arch)
    saved = tmp_path / "saved.tar"
    engine.images.save(["two:1"], saved, format="oci-archive")
    layout = tmp_path / "layout"
    with tarfile.open(saved) as t:
        t.extractall(layout, filter="tar")
    bundle = tmp_path / "bundle"
    p = subprocess.run([umoci, "unpack", "--image", f"{layout}:docker.io/library/two:1", str(bundle)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    ctx = engine.ctx
    driver = ctx.driver(ctx.storage_driver)
    cache_ids = ctx.images.layer_cache_ids(img.layers, ctx.storage_driver, driver)
    cid = "umoci-compare"
    driver.prepare(cid, cache_ids)
    try:
        rootfs = Path(driver.mount(cid, cache_ids))
        try:
            ours = tree(rootfs)
        finally:
            driver.unmount(cid)
    finally:
        driver.remove_container(cid)
    theirs = tree(bundle / "rootfs")
    assert "home" not in ours and ours["opt/link"] == ("l", "../etc/motd")
    assert ours == theirs
