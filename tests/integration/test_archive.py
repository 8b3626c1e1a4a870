"""`save`, `load` and `import URL` against a private store: round trips in both
formats, archives made here (OCI layouts, old Docker layout, 130 layers), and
bad inputs that must leave the store exactly as it was."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, Roots

MT = 1700000000


# ------------------------------------------------------------------ helpers
def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, MT
            tar.addfile(ti)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, MT
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, MT
            tar.addfile(ti, io.BytesIO(data))
    return path


def oci_archive(path: Path, layers: list[bytes], ref: str | None = "docker.io/library/made:latest",
                layer_media: str = "application/vnd.oci.image.layer.v1.tar", diff_ids: list[str] | None = None,
                drop: set[str] = frozenset(), flip: str | None = None, cmd: list[str] | None = None,
                nested: bool = False) -> Path:
    """An OCI image layout as a tar: ``flip`` corrupts one byte of that blob's
    content after its digest was taken; ``drop`` leaves blobs out."""
    blobs: dict[str, bytes] = {}
    descs = []
    for data in layers:
        blobs[sha(data)] = data
        descs.append({"mediaType": layer_media, "digest": sha(data), "size": len(data)})
    plain = [gzip.decompress(x) if x[:2] == b"\x1f\x8b" else x for x in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd or ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha(x) for x in plain]}}).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": descs}).encode()
    blobs[sha(manifest)] = manifest
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
           "platform": {"os": "linux", "architecture": "amd64"}}
    if nested:
        other = dict(top, platform={"os": "linux", "architecture": "arm64"}, digest=sha(b"absent"))
        inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [other, top]}).encode()
        blobs[sha(inner)] = inner
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner), "size": len(inner)}
    if ref:
        top["annotations"] = {"org.opencontainers.image.ref.name": ref}
    members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
               ("index.json", json.dumps({"schemaVersion": 2, "manifests": [top]}).encode())]
    for d, data in blobs.items():
        if d in drop:
            continue
        if d == flip:
            data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:]
        members.append((f"blobs/sha256/{d[7:]}", data))
    return write_tar(path, members)


def store_state(roots: Roots, cli: Cli) -> dict[str, Any]:
    def names(p: Path) -> list[str]:
        return sorted(x.name for x in p.iterdir()) if p.is_dir() else []

    return {
        "images": cli.ok("images", "-a", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"),
        "blobs": names(roots.root / "blobs" / "sha256"),
        "layers": names(roots.root / "storage" / "overlay" / "layers"),
    }


def tmp_empty(roots: Roots) -> bool:
    t = roots.root / "tmp"
    return not t.exists() or not any(t.iterdir())


def pipe(roots: Roots, left: list[str], right: list[str]) -> tuple[int, int, bytes]:
    base = [sys.executable, "-m", "moorage.cli", *roots.args()]
    a = subprocess.Popen([*base, *left], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    b = subprocess.run([*base, *right], stdin=a.stdout, capture_output=True, timeout=120)
    assert a.stdout is not None
    a.stdout.close()
    a.wait(timeout=60)
    return a.returncode, b.returncode, b.stdout + b.stderr


# -------------------------------------------------------------- round trips
def test_save_rmi_load_round_trip(cli: Cli, roots: Roots, tmp_path: Path) -> None:
    iid = cli.ok("images", "-q", "--no-trunc").strip()
    cli.ok("tag", "busybox", "localhost:5000/team/bb:v1")
    out = tmp_path / "bb.tar"
    cli.ok("save", "-o", str(out), "busybox", "localhost:5000/team/bb:v1")
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert {"manifest.json", "repositories", "oci-layout", "index.json"} <= set(names)
    assert manifest == [{"Config": f"blobs/sha256/{iid[7:]}", "RepoTags": ["busybox:latest", "localhost:5000/team/bb:v1"],
                         "Layers": [manifest[0]["Layers"][0]]}]
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "docker.io/library/busybox:latest", "localhost:5000/team/bb:v1"]
    # reproducible: the same bytes twice
    again = tmp_path / "again.tar"
    cli.ok("save", "-o", str(again), "busybox", "localhost:5000/team/bb:v1")
    assert again.read_bytes() == out.read_bytes()
    cli.ok("rmi", "busybox", "localhost:5000/team/bb:v1")
    assert cli.ok("images", "-q") == ""
    r = cli("load", "-i", str(out))
    assert r.code == 0 and r.err == ""  # no progress bar when stderr is not a terminal
    assert r.out.splitlines() == ["Loaded image: busybox:latest", "Loaded image: localhost:5000/team/bb:v1"]
    assert sorted(cli.ok("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines()) == [
        f"busybox:latest {iid}", f"localhost:5000/team/bb:v1 {iid}"]
    assert cli.ok("run", "--rm", "localhost:5000/team/bb:v1", "echo", "back") == "back\n"
    assert tmp_empty(roots)
    # through a pipe, into a store that already has it: nothing new, same answer
    before = store_state(roots, cli)
    code_save, code_load, text = pipe(roots, ["save", "busybox"], ["load"])
    assert (code_save, code_load) == (0, 0) and text.decode() == "Loaded image: busybox:latest\n"
    assert store_state(roots, cli) == before


def test_save_refuses_a_terminal(cli: Cli, roots: Roots) -> None:
    master, slave = pty.openpty()
    try:
        p = subprocess.run([sys.executable, "-m", "moorage.cli", *roots.args(), "save", "busybox"],
                           stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == 1
    assert p.stderr.decode() == "Error: cowardly refusing to save to a terminal. Use the -o flag or redirect\n"


def test_load_progress_bar_on_a_terminal(cli: Cli, roots: Roots, tmp_path: Path) -> None:
    out = tmp_path / "bb.tar"
    cli.ok("save", "-o", str(out), "busybox")
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, "-m", "moorage.cli", *roots.args(), "load", "-i", str(out)],
                             stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                             env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        assert p.wait(timeout=60) == 0
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.stdout is not None and p.stdout.read() == b"Loaded image: busybox:latest\n"
    assert b"Loading" in seen or b"Storing image" in seen


def test_oci_archive_round_trip(cli: Cli, roots: Roots, tmp_path: Path) -> None:
    iid = cli.ok("images", "-q", "--no-trunc").strip()
    out = tmp_path / "bb.oci.tar"
    cli.ok("save", "--format", "oci-archive", "-o", str(out), "busybox")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert "manifest.json" not in names and "oci-layout" in names
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "docker.io/library/busybox:latest"
    assert all(n in names for n in (f"blobs/sha256/{iid[7:]}", f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"))
    cli.ok("rmi", "busybox")
    assert cli.ok("load", "-i", str(out)) == "Loaded image: busybox:latest\n"
    assert cli.ok("images", "-q", "--no-trunc").strip() == iid
    assert cli.ok("run", "--rm", "busybox", "echo", "oci") == "oci\n"


def test_load_gzip_archive_from_stdin(cli: Cli, roots: Roots, tmp_path: Path) -> None:
    out = tmp_path / "bb.tar"
    cli.ok("save", "-o", str(out), "busybox")
    iid = cli.ok("images", "-q", "--no-trunc").strip()
    cli.ok("rmi", "busybox")
    r = cli("load", "-q", input=gzip.compress(out.read_bytes(), compresslevel=1))
    assert r.code == 0 and r.out == "Loaded image: busybox:latest\n"
    assert cli.ok("images", "-q", "--no-trunc").strip() == iid
    assert tmp_empty(roots)


def test_load_old_docker_layout_and_gzip_layers(cli: Cli, busybox_tar: Path, tmp_path: Path) -> None:
    """Docker < 25: <id>/layer.tar (a repeated layer as a symlink), <hex>.json; plus a nested OCI index with gzip layers."""
    base = busybox_tar.read_bytes()
    top = tar_of({"hello.txt": b"old layout\n"})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["cat", "/hello.txt"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(base), sha(top), sha(top)]}}).encode()
    arch = tmp_path / "old.tar"
    with tarfile.open(arch, "w") as tar:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), MT
            tar.addfile(ti, io.BytesIO(data))

        add("aaaa/layer.tar", base)
        add("bbbb/layer.tar", top)
        ti = tarfile.TarInfo("cccc/layer.tar")
        ti.type, ti.linkname = tarfile.SYMTYPE, "../bbbb/layer.tar"
        tar.addfile(ti)
        add(f"{sha(config)[7:]}.json", config)
        add("manifest.json", json.dumps([{"Config": f"{sha(config)[7:]}.json", "RepoTags": ["old:1"],
                                          "Layers": ["aaaa/layer.tar", "bbbb/layer.tar", "cccc/layer.tar"]}]).encode())
    assert cli.ok("load", "-i", str(arch)) == "Loaded image: old:1\n"
    assert cli.ok("run", "--rm", "old:1") == "old layout\n"
    gz = oci_archive(tmp_path / "gz.tar", [gzip.compress(base, 1), gzip.compress(tar_of({"z": b"zz\n"}), 1)],
                     ref=None, layer_media="application/vnd.oci.image.layer.v1.tar+gzip", cmd=["cat", "/z"],
                     nested=True)
    out = cli.ok("load", "-i", str(gz))
    assert out.startswith("Loaded image ID: sha256:")
    assert cli.ok("run", "--rm", out.split()[-1]) == "zz\n"


def test_deep_image_130_layers(cli: Cli, busybox_tar: Path, tmp_path: Path) -> None:
    layers = [busybox_tar.read_bytes()]
    layers += [tar_of({f"deep/f{i:03d}": f"{i}\n".encode()}, dirs=("deep",)) for i in range(130)]
    arch = oci_archive(tmp_path / "deep.tar", layers, ref="deep:latest", cmd=["sh", "-c", "ls /deep | wc -l; cat /deep/f129"])
    assert cli.ok("load", "-i", str(arch), timeout=180) == "Loaded image: deep:latest\n"
    info = json.loads(cli.ok("image", "inspect", "deep"))[0]
    assert len(info["RootFS"]["Layers"]) == 131
    assert cli.ok("run", "--rm", "deep").split() == ["130", "129"]


def test_multi_image_save_and_python_api(engine: Any, busybox_tar: Path, tmp_path: Path) -> None:
    engine.images.import_(str(busybox_tar), "busybox", "latest")
    engine.images.import_(str(busybox_tar), "other", "2", changes=["CMD echo other"])
    out = tmp_path / "two.tar"
    engine.images.save(["busybox", "other:2"], out)
    ids = sorted(engine.images.get(n).id for n in ("busybox", "other:2"))
    for n in ("busybox", "other:2"):
        engine.images.remove(n)
    loaded = engine.images.load(out)
    assert sorted(i.id for i in loaded) == ids
    assert engine.containers.run("other:2", remove=True) == b"other\n"
    with open(out, "rb") as f:  # a file object works too
        assert sorted(i.id for i in engine.images.load(f)) == ids


# --------------------------------------------------------------- bad inputs
def _bad_archives(busybox_tar: Path, d: Path) -> dict[str, tuple[Path, str]]:
    base = busybox_tar.read_bytes()
    new1 = tar_of({"new/one": b"1\n"}, dirs=("new",))
    new2 = tar_of({"new/two": b"2\n"})
    good = oci_archive(d / "good.tar", [base, new1, new2])
    data = good.read_bytes()
    return {
        "truncated": (write_bytes(d / "trunc.tar", data[: len(data) - len(new2) - 3000]), "truncated"),
        "flipped": (oci_archive(d / "flip.tar", [base, new1, new2], flip=sha(new1)),
                    f"blob {sha(new1)} in the archive has content digest"),
        "missing": (oci_archive(d / "missing.tar", [base, new1, new2], drop={sha(new2)}),
                    f"layer blob {sha(new2)} is not in the archive"),
        "media": (oci_archive(d / "media.tar", [base, new1], layer_media="application/x-unknown"),
                  "unsupported media type 'application/x-unknown'"),
        "diff_id": (oci_archive(d / "diffid.tar", [base, new1, new2], diff_ids=[sha(base), sha(new1), sha(b"x")]),
                    f"the image config says {sha(b'x')}"),
        "not_tar": (write_bytes(d / "junk.tar", os.urandom(4096)), "not a tar archive"),
        "empty": (write_bytes(d / "empty.tar", b""), "empty"),
    }


def write_bytes(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def test_bad_archives_leave_the_store_unchanged(cli: Cli, roots: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    cases = _bad_archives(busybox_tar, tmp_path)
    before = store_state(roots, cli)
    for name, (path, needle) in cases.items():
        r = cli("load", "-i", str(path))
        assert r.code == 1, (name, r)
        lines = r.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: load: ") and needle in lines[0], (name, r.err)
        assert store_state(roots, cli) == before, name
        assert tmp_empty(roots), name
    # the same archive, intact, loads
    good = oci_archive(tmp_path / "ok.tar", [busybox_tar.read_bytes(), tar_of({"new/one": b"1\n"}, dirs=("new",))],
                       cmd=["cat", "/new/one"])
    assert cli.ok("load", "-i", str(good)) == "Loaded image: made:latest\n"
    assert cli.ok("run", "--rm", "made") == "1\n"


# ---------------------------------------------------- kill -9 and disk full
def big_layer(mb: int) -> bytes:
    blob = os.urandom(1 << 20)
    return tar_of({f"big/f{i:03d}": blob[i:] + blob[:i] for i in range(mb)}, dirs=("big",))


def test_kill_9_mid_load(roots: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    cli = Cli(roots)
    arch = oci_archive(tmp_path / "big.tar", [busybox_tar.read_bytes(), big_layer(30), tar_of({"x": b"x"})],
                       ref="big:1", cmd=["sh", "-c", "ls /big | wc -l"])
    layers = roots.root / "storage" / "overlay" / "layers"
    p = subprocess.Popen([sys.executable, "-m", "moorage.cli", *roots.args(), "load", "-i", str(arch)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            if layers.is_dir() and any(not x.name.startswith(".") for x in layers.iterdir()):
                break  # the first layer is unpacked; the 30 MB one is next
            time.sleep(0.002)
        assert p.poll() is None, "load finished before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    assert cli.ok("images", "-q") == ""
    assert cli.ok("load", "-i", str(arch)) == "Loaded image: big:1\n"
    assert cli.ok("run", "--rm", "big:1") == "30\n"
    assert tmp_empty(roots)  # the killed load's directory was cleaned up by the next one


@pytest.fixture
def small_root(roots: Roots) -> Iterator[Roots]:
    roots.root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(roots.root)], check=True)
    try:
        yield roots
    finally:
        subprocess.run(["umount", str(roots.root)], check=False)


def test_disk_full(small_root: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    cli = Cli(small_root)
    cli.ok("import", str(busybox_tar), "busybox")
    arch = oci_archive(tmp_path / "big.tar", [busybox_tar.read_bytes(), big_layer(30)], ref="big:1")
    before = store_state(small_root, cli)
    r = cli("load", "-i", str(arch))
    assert r.code == 1 and len(r.err.splitlines()) == 1 and "no space left on device" in r.err, r
    assert store_state(small_root, cli) == before
    assert tmp_empty(small_root)
    out = tmp_path / "bb.tar"
    cli.ok("save", "-o", str(out), "busybox")
    cli.ok("rmi", "busybox")
    assert cli.ok("load", "-i", str(out)) == "Loaded image: busybox:latest\n"


# --------------------------------------------------------------- URL import
def test_import_from_url(roots: Roots, busybox_tar: Path) -> None:
    cli = Cli(roots)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(busybox_tar.parent))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert cli.ok("import", f"{url}/{busybox_tar.name}", "fromurl:1").startswith("sha256:")
        assert cli.ok("run", "--rm", "fromurl:1", "echo", "net") == "net\n"
        r = cli("import", f"{url}/absent.tar", "x")
        assert r.code == 1 and "absent.tar" in r.err and "File not found" in r.err
    finally:
        server.shutdown()
        server.server_close()
        t.join()
    assert tmp_empty(roots)


# ------------------------------------------------- multi-platform OCI index
def multi_platform_archive(path: Path, layers: list[bytes], cmd: list[str],
                           ref: str = "docker.io/library/multi:1") -> dict[str, str]:
    """An OCI layout whose index.json names an index (the image's) listing
    linux/amd64 (complete) and linux/arm64 (its manifest only: config and
    layers absent, as in a partial pull). Returns the digests."""
    blobs: dict[str, bytes] = {}
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd},
                         "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]}}).encode()
    blobs[sha(config)] = config
    for x in layers:
        blobs[sha(x)] = x

    def manifest(cfg: bytes, lays: list[bytes]) -> bytes:
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(cfg), "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(x),
                                       "size": len(x)} for x in lays]}).encode()

    amd64 = manifest(config, layers)
    arm_config = json.dumps({"architecture": "arm64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [sha(b"arm layer")]}}).encode()
    arm64 = manifest(arm_config, [b"arm layer"])
    blobs[sha(amd64)] = amd64
    blobs[sha(arm64)] = arm64
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(amd64), "size": len(amd64),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(arm64), "size": len(arm64),
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    ]}).encode()
    blobs[sha(index)] = index
    top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(index), "size": len(index),
           "annotations": {"org.opencontainers.image.ref.name": ref}}
    members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
               ("index.json", json.dumps({"schemaVersion": 2, "manifests": [top]}).encode())]
    members += [(f"blobs/sha256/{d[7:]}", data) for d, data in blobs.items()]
    write_tar(path, members)
    return {"index": sha(index), "amd64": sha(amd64), "arm64": sha(arm64), "arm64_config": sha(arm_config),
            "config": sha(config)}


def blob_names(roots: Roots) -> set[str]:
    d = roots.root / "blobs" / "sha256"
    return {f"sha256:{p.name}" for p in d.iterdir()} if d.is_dir() else set()


def test_load_keeps_the_multi_platform_index(cli: Cli, roots: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    dg = multi_platform_archive(tmp_path / "multi.tar", [busybox_tar.read_bytes(), tar_of({"m": b"multi\n"})],
                                ["cat", "/m"])
    assert cli.ok("load", "-i", str(tmp_path / "multi.tar")) == "Loaded image: multi:1\n"
    assert cli.ok("run", "--rm", "multi:1") == "multi\n"
    info = json.loads(cli.ok("image", "inspect", "multi:1"))[0]
    assert (info["Id"], info["Digest"], info["ManifestListDigest"]) == (dg["config"], dg["amd64"], dg["index"])
    assert json.loads(cli.ok("image", "inspect", "busybox"))[0]["ManifestListDigest"] == ""
    # the index and the arm64 manifest are kept; what the archive lacked is not made up
    have = blob_names(roots)
    assert {dg["index"], dg["amd64"], dg["arm64"]} <= have and dg["arm64_config"] not in have
    assert cli.ok("system", "check") == "no problems found\n"
    # loading it again changes nothing
    before = store_state(roots, cli)
    assert cli.ok("load", "-i", str(tmp_path / "multi.tar")) == "Loaded image: multi:1\n"
    assert store_state(roots, cli) == before


def test_multi_platform_index_round_trip_and_rmi(cli: Cli, roots: Roots, busybox_tar: Path, tmp_path: Path) -> None:
    layers = [busybox_tar.read_bytes(), tar_of({"m": b"multi\n"})]
    dg = multi_platform_archive(tmp_path / "multi.tar", layers, ["cat", "/m"])
    cli.ok("load", "-i", str(tmp_path / "multi.tar"))
    out = tmp_path / "saved.oci.tar"
    cli.ok("save", "--format", "oci-archive", "-o", str(out), "multi:1")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        top = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        index = tar.extractfile(f"blobs/sha256/{dg['index'][7:]}").read()  # type: ignore[union-attr]
    assert [(m["mediaType"], m["digest"]) for m in top["manifests"]] == [
        ("application/vnd.oci.image.index.v1+json", dg["index"])]
    assert top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "docker.io/library/multi:1"
    assert sha(index) == dg["index"]
    # the arm64 entry keeps its manifest; its config and layers were never here
    assert {f"blobs/sha256/{dg[k][7:]}" for k in ("amd64", "arm64", "config")} <= names
    assert f"blobs/sha256/{dg['arm64_config'][7:]}" not in names
    # a docker-archive stays a single-platform archive (its index.json names the manifest)
    dock = tmp_path / "saved.docker.tar"
    cli.ok("save", "-o", str(dock), "multi:1")
    with tarfile.open(dock) as tar:
        assert json.load(tar.extractfile("index.json"))["manifests"][0]["digest"] == dg["amd64"]  # type: ignore[arg-type]
    if shutil.which("skopeo"):
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{out}"], capture_output=True, timeout=60)
        assert raw.returncode == 0, raw.stderr
        assert raw.stdout == index
        one = subprocess.run(["skopeo", "--override-arch", "amd64", "--override-os", "linux", "inspect",
                              f"oci-archive:{out}"], capture_output=True, timeout=60)
        assert one.returncode == 0, one.stderr
        seen = json.loads(one.stdout)  # skopeo names the index (as for a registry) and reads the amd64 image
        assert (seen["Digest"], seen["Architecture"], seen["Layers"][-1]) == (dg["index"], "amd64", sha(layers[-1]))
    # rmi: the index and the other manifest go with the image
    cli.ok("rmi", "multi:1")
    assert not {dg["index"], dg["amd64"], dg["arm64"], dg["config"]} & blob_names(roots)
    assert cli.ok("system", "check") == "no problems found\n"
    # load the saved archive: the same index again
    assert cli.ok("load", "-i", str(out)) == "Loaded image: multi:1\n"
    info = json.loads(cli.ok("image", "inspect", "multi:1"))[0]
    assert (info["Digest"], info["ManifestListDigest"]) == (dg["amd64"], dg["index"])
    assert cli.ok("run", "--rm", "multi:1") == "multi\n"
    assert cli.ok("system", "check") == "no problems found\n"
    cli.ok("rmi", "multi:1")
    assert not {dg["index"], dg["arm64"]} & blob_names(roots)
    assert cli.ok("system", "check") == "no problems found\n"


def test_old_database_gains_index_digest(tmp_path: Path) -> None:
    import sqlite3

    from moorage.runtime.store import Store

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE images (id TEXT PRIMARY KEY, config_digest TEXT NOT NULL, manifest_digest TEXT,"
                       " created TEXT, size INTEGER NOT NULL DEFAULT 0, layers TEXT NOT NULL, added REAL NOT NULL);"
                       "INSERT INTO images VALUES ('sha256:aa', 'sha256:aa', NULL, '', 0, '[]', 0);")
    conn.close()
    for _ in range(2):  # the second open finds the column there
        s = Store(db)
        assert s.one("SELECT id, index_digest FROM images")["index_digest"] is None  # type: ignore[index]
        s.close()
