"""The in-process Python API (docker-py shaped)."""

from __future__ import annotations

import pytest

import moorage


def test_run_returns_output_and_raises_on_failure(engine, image) -> None:
    assert engine.containers.run(image, ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(moorage.ContainerError) as e:
        engine.containers.run(image, "sh -c 'echo bad >&2; exit 3'", remove=True)
    assert e.value.exit_status == 3
    assert engine.containers.list(all=True) == []


def test_detached_lifecycle(engine, image) -> None:
    c = engine.containers.run(image, ["sleep", "300"], detach=True, name="api", labels={"a": "b"}, init=True)
    assert c.status == "running" and c.name == "api"
    assert engine.containers.get("api").id == c.id
    assert [x.id for x in engine.containers.list(filters={"label": "a=b"})] == [c.id]
    code, _ = c.exec_run("true")
    assert code == 0
    assert "sleep 300" in " ".join(c.top()["Processes"][0])
    c.stop(timeout=1)
    assert c.status == "exited"
    assert c.wait()["StatusCode"] == 143
    assert c.attrs["State"]["ExitCode"] == 143
    c.remove()
    with pytest.raises(moorage.ContainerNotFound):
        engine.containers.get("api")


def test_images_api(engine, image) -> None:
    img = engine.images.get("busybox:latest")
    assert img.id.startswith("sha256:") and "docker.io/library/busybox:latest" in img.tags
    assert [i.id for i in engine.images.list()] == [img.id]
    with pytest.raises(moorage.ImageNotFound):
        engine.images.get("nope")
