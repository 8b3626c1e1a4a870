"""Flag parsing into CreateOptions, without running anything."""

import pytest

from moorage.cli import command_name
from moorage.errors import InvalidArgument
from moorage.spec.options import RestartPolicy


def test_command_name() -> None:
    assert command_name(["--root", "/x", "run", "busybox"]) == "run"
    assert command_name(["container", "create", "x"]) == "create"
    assert command_name(["-s", "vfs", "ps"]) == "ps"


@pytest.mark.parametrize("text, name, n", [("no", "no", 0), ("always", "always", 0), ("on-failure:3", "on-failure", 3),
                                           ("unless-stopped", "unless-stopped", 0), ("on-failure", "on-failure", 0)])
def test_restart_policy(text: str, name: str, n: int) -> None:
    p = RestartPolicy.parse(text)
    assert (p.name, p.maximum_retry_count) == (name, n)
    assert str(p) == text


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:-1"])
def test_bad_restart_policy(text: str) -> None:
    with pytest.raises(InvalidArgument):
        RestartPolicy.parse(text)


def test_archive_formats_match_the_cli_choice() -> None:
    from moorage.cli.archive import FORMATS as CLI_FORMATS
    from moorage.image.archive import FORMATS

    assert CLI_FORMATS == FORMATS


def test_env_file_follows_docker_rules(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from moorage.cli.container import _read_env_file
    from moorage.errors import InvalidArgument

    f = tmp_path / "env"
    f.write_text("# comment\n\n  A=1 2 \nFROM_HOST\nEMPTY=\n")
    assert _read_env_file(str(f)) == ["A=1 2 ", "FROM_HOST", "EMPTY="]
    f.write_text("OK=1\nbad name=1\n")
    with pytest.raises(InvalidArgument, match=r"variable 'bad name' contains whitespaces \(line 2 of "):
        _read_env_file(str(f))
    f.write_text("=x\n")
    with pytest.raises(InvalidArgument, match="no variable name on line '=x'"):
        _read_env_file(str(f))
    with pytest.raises(InvalidArgument, match=r"open .*/missing: no such file or directory"):
        _read_env_file(str(tmp_path / "missing"))
