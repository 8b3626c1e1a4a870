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


def test_stats_row_arithmetic() -> None:
    from moorage.cli.container import stats_row

    st = {
        "id": "a" * 64, "name": "/web",
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}, "system_cpu_usage": 20_000_000_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 10_000_000_000},
        "memory_stats": {"usage": 3 << 20, "limit": 64 << 20, "stats": {"total_inactive_file": 1 << 20}},
        "pids_stats": {"current": 4},
        "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 10}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "Write", "value": 0}]},
    }
    row = stats_row("web", st)
    # CPU: 1 s of 10 s of host time on 2 CPUs = 20 %; memory without the inactive page cache
    assert row == {"Container": "web", "ID": "a" * 12, "Name": "web", "CPUPerc": "20.00%",
                   "MemUsage": "2MiB / 64MiB", "MemPerc": "3.12%", "NetIO": "2kB / 10B", "BlockIO": "4.1kB / 0B",
                   "PIDs": "4"}
    st["memory_stats"]["stats"] = {"inactive_file": 2 << 20}  # the v2 key
    st["blkio_stats"] = {"io_service_bytes_recursive": None}  # not counted by this kernel
    row = stats_row("web", st, no_trunc=True)
    assert (row["MemUsage"], row["BlockIO"], row["ID"]) == ("1MiB / 64MiB", "--", "a" * 64)
