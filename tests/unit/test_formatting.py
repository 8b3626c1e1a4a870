"""Table-driven tests for moorage.cli.formatting against outputs Docker and
go-units are known to produce (go-units' own test tables, `docker ps`
layout, Go text/template messages)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load() -> ModuleType:
    """Import the module normally; if the package cannot be imported (the
    native core is missing in a source checkout), load the file itself."""
    try:
        from moorage.cli import formatting

        return formatting
    except Exception:
        path = Path(__file__).resolve().parents[2] / "python/moorage/cli/formatting.py"
        spec = importlib.util.spec_from_file_location("moorage_cli_formatting", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


F = _load()

MiB = 1 << 20
GiB = 1 << 30

# --------------------------------------------------------------------------
# go-units
# --------------------------------------------------------------------------

DAY = 86400
WEEK = 7 * DAY
MONTH = 30 * DAY
YEAR = 365 * DAY


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [  # go-units duration_test.go TestHumanDuration
        (0.45, "Less than a second"),
        (-3, "Less than a second"),
        (1, "1 second"),
        (45, "45 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (3 * 60, "3 minutes"),
        (35 * 60 + 40, "35 minutes"),
        (59 * 60, "59 minutes"),
        (3600, "About an hour"),
        (3600 + 29 * 60, "About an hour"),
        (3600 + 31 * 60, "2 hours"),
        (3 * 3600 + 31 * 60, "4 hours"),
        (24 * 3600, "24 hours"),
        (DAY + 12 * 3600, "36 hours"),
        (2 * DAY, "2 days"),
        (13 * DAY + 5 * 3600, "13 days"),
        (2 * WEEK, "2 weeks"),
        (4 * WEEK + 3 * DAY, "4 weeks"),
        (MONTH, "4 weeks"),
        (MONTH + 2 * WEEK, "6 weeks"),
        (2 * MONTH, "2 months"),
        (3 * MONTH + WEEK, "3 months"),
        (23 * MONTH, "23 months"),
        (24 * MONTH, "24 months"),
        (24 * MONTH + 2 * WEEK, "2 years"),
        (3 * YEAR + 2 * MONTH, "3 years"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert F.human_duration(seconds) == expected


@pytest.mark.parametrize(
    ("size", "precision", "expected"),
    [  # go-units size_test.go TestHumanSize (precision 4) ...
        (1000, 4, "1kB"),
        (1024, 4, "1.024kB"),
        (1000000, 4, "1MB"),
        (1048576, 4, "1.049MB"),
        (3.42e9, 4, "3.42GB"),
        (5.372e12, 4, "5.372TB"),
        (2.22e15, 4, "2.22PB"),
        (1e28, 4, "1e+04YB"),
        # ... and the precision 3 that `docker images` / `ps -s` use
        (0, 3, "0B"),
        (512, 3, "512B"),
        (4100, 3, "4.1kB"),
        (1234567, 3, "1.23MB"),
        (1048576, 3, "1.05MB"),
        (77_800_000, 3, "77.8MB"),
        (999_999, 3, "1e+03kB"),  # Go's %.3g rounds 999.999 up to 1e+03
    ],
)
def test_human_size(size: float, precision: int, expected: str) -> None:
    assert F.human_size(size, precision) == expected


def test_human_size_defaults_to_three_digits() -> None:
    assert F.human_size(1234567) == "1.23MB"


@pytest.mark.parametrize(
    ("size", "expected"),
    [  # go-units TestBytesSize
        (1024, "1KiB"),
        (1024 * 1024, "1MiB"),
        (2 * MiB, "2MiB"),
        (1.5 * MiB, "1.5MiB"),
        (3.42 * GiB, "3.42GiB"),
        (5.372 * (1 << 40), "5.372TiB"),
        (2.22 * (1 << 50), "2.22PiB"),
        (float(1 << 50) * 1024**5, "1.049e+06YiB"),
        (100, "100B"),
    ],
)
def test_bytes_size(size: float, expected: str) -> None:
    assert F.bytes_size(size) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # go-units TestRAMInBytes
        ("32", 32),
        ("32b", 32),
        ("32B", 32),
        ("32k", 32 * 1024),
        ("32K", 32 * 1024),
        ("32kb", 32 * 1024),
        ("32Kb", 32 * 1024),
        ("32Kib", 32 * 1024),
        ("32KIB", 32 * 1024),
        ("32Mb", 32 * MiB),
        ("32Gb", 32 * GiB),
        ("32Tb", 32 * (1 << 40)),
        ("32Pb", 32 * (1 << 50)),
        ("32PB", 32 * (1 << 50)),
        ("32P", 32 * (1 << 50)),
        ("32.3", 32),
        ("32.3 mb", int(32.3 * MiB)),
        ("0.3MB", int(0.3 * MiB)),
        ("512m", 512 * MiB),
        ("1g", GiB),
        ("1.5g", int(1.5 * GiB)),
        ("100k", 102400),
        ("123", 123),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert F.parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid size: ''"),
        ("hello", "invalid size: 'hello'"),
        ("-32", "invalid size: '-32'"),
        (" 32 ", "invalid size: ' 32 '"),
        ("32m b", "invalid size: '32m b'"),
        ("32bm", "invalid suffix: 'bm'"),
        ("1x", "invalid suffix: 'x'"),
        ("1mx", "invalid suffix: 'mx'"),
        ("1gigs", "invalid suffix: 'gigs'"),
    ],
)
def test_parse_size_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("'", "'") + "$"):
        F.parse_size(text)


# --------------------------------------------------------------------------
# Times and status
# --------------------------------------------------------------------------

NOW = 1_700_000_000.7  # 2023-11-14T22:13:20.7Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", 1_699_999_400.0),  # Docker truncates to whole seconds
        ("1h30m", 1_699_994_600.0),
        ("2s", 1_699_999_998.0),
        ("1.5s", 1_699_999_999.0),
        ("-1m", 1_700_000_060.0),
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000.5),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
        ("2023-11-14T22:13Z", 1_699_999_980.0),
        ("2023-11-14Z", 1_699_920_000.0),
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        ("0", 0.0),
    ],
)
def test_parse_duration_or_timestamp(value: str, expected: float) -> None:
    assert F.parse_duration_or_timestamp(value, NOW) == expected


def test_parse_timestamp_without_zone_is_local_time() -> None:
    expected = time.mktime((2023, 11, 14, 22, 13, 20, 0, 0, -1))
    assert F.parse_duration_or_timestamp("2023-11-14T22:13:20", NOW) == expected
    assert F.parse_duration_or_timestamp("2023-11-14T22:13:20.25", NOW) == expected + 0.25
    day = time.mktime((2023, 11, 14, 0, 0, 0, 0, 0, -1))
    assert F.parse_duration_or_timestamp("2023-11-14", NOW) == day


@pytest.mark.parametrize("value", ["abc", "2023-13-01", "10x", "2023-11-14T25:00:00Z", ""])
def test_parse_duration_or_timestamp_errors(value: str) -> None:
    with pytest.raises(ValueError):
        F.parse_duration_or_timestamp(value, NOW)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1h30m", 5400 * 10**9),
        ("300ms", 300_000_000),
        ("-2.5s", -2_500_000_000),
        ("1us", 1000),
        ("1µs", 1000),
        ("0", 0),
        (".5m", 30 * 10**9),
    ],
)
def test_parse_duration(text: str, nanos: int) -> None:
    assert F.parse_duration(text) == nanos


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", 'time: missing unit in duration "5"'),
        ("5d", 'time: unknown unit "d" in duration "5d"'),
        ("", 'time: invalid duration ""'),
        ("-", 'time: invalid duration "-"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        F.parse_duration(text)
    assert str(info.value) == message


def test_created_since() -> None:
    assert F.created_since(NOW - 300, NOW) == "5 minutes ago"
    assert F.created_since("2023-11-14T22:13:15Z", NOW) == "5 seconds ago"


ZERO = "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"Status": "running", "Running": True, "StartedAt": NOW - 5}, "Up 5 seconds"),
        ({"Status": "running", "StartedAt": "2023-11-14T22:13:19Z"}, "Up 1 second"),
        (
            {"Status": "paused", "Running": True, "Paused": True, "StartedAt": NOW - 130},
            "Up 2 minutes (Paused)",
        ),
        (
            {
                "Status": "exited",
                "Running": False,
                "ExitCode": 0,
                "StartedAt": NOW - 60,
                "FinishedAt": NOW - 3,
            },
            "Exited (0) 3 seconds ago",
        ),
        (
            {
                "Status": "exited",
                "ExitCode": 137,
                "StartedAt": NOW - 9000,
                "FinishedAt": NOW - 7200,
            },
            "Exited (137) 2 hours ago",
        ),
        ({"Status": "created", "Running": False, "StartedAt": ZERO, "FinishedAt": ZERO}, "Created"),
        (
            {
                "Status": "restarting",
                "Running": True,
                "Restarting": True,
                "ExitCode": 1,
                "StartedAt": NOW - 50,
                "FinishedAt": NOW - 2,
            },
            "Restarting (1) 2 seconds ago",
        ),
        (
            {"Status": "removing", "StartedAt": NOW - 50, "FinishedAt": NOW - 2},
            "Removal In Progress",
        ),
        ({"Status": "dead", "Dead": True, "StartedAt": NOW - 50}, "Dead"),
        (
            {"Status": "running", "StartedAt": NOW - 3, "Health": {"Status": "starting"}},
            "Up 3 seconds (health: starting)",
        ),
        (
            {"Status": "running", "StartedAt": NOW - 3, "Health": {"Status": "healthy"}},
            "Up 3 seconds (healthy)",
        ),
    ],
)
def test_status_text(state: dict[str, Any], expected: str) -> None:
    assert F.status_text(state, NOW) == expected


# --------------------------------------------------------------------------
# IDs, commands, quoting
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        ("4c01db0b339cabcdef0123", "4c01db0b339c"),
        ("sha256:4c01db0b339cabcdef", "4c01db0b339c"),
        ("abc", "abc"),
    ],
)
def test_truncate_id(ident: str, expected: str) -> None:
    assert F.truncate_id(ident) == expected


@pytest.mark.parametrize(
    ("args", "trunc", "expected"),
    [
        (["/bin/sh", "-c", "while true; do echo hi; done"], True, '"/bin/sh -c \'while t…"'),
        (
            ["/bin/sh", "-c", "while true; do echo hi; done"],
            False,
            "\"/bin/sh -c 'while true; do echo hi; done'\"",
        ),
        (["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"], True, '"/docker-entrypoint.…"'),
        (["bash"], True, '"bash"'),
        (["top", "-b"], True, '"top -b"'),
        (["echo", 'say "hi"'], False, '"echo \'say \\"hi\\"\'"'),
        (["12345678901234567890"], True, '"12345678901234567890"'),
        (["123456789012345678901"], True, '"1234567890123456789…"'),
        ([], True, '""'),
    ],
)
def test_format_command(args: list[str], trunc: bool, expected: str) -> None:
    assert F.format_command(args, trunc=trunc) == expected


def test_ellipsis_counts_wide_characters_as_two_cells() -> None:
    assert F.ellipsis("日本語のテキスト", 7) == "日本語…"
    assert F.ellipsis("abc", 1) == "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("x\n\t\r", '"x\\n\\t\\r"'),
        ("\x01\x7f", '"\\x01\\x7f"'),
        ("é…", '"é…"'),
        ("\u200b", '"\\u200b"'),
    ],
)
def test_go_quote(text: str, expected: str) -> None:
    assert F.go_quote(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (None, "<nil>"),
        (3, "3"),
        (1.5, "1.5"),
        (2.0, "2"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (["a", "b"], "[a b]"),
        ([], "[]"),
        ({"b": 1, "a": [True]}, "map[a:[true] b:1]"),
    ],
)
def test_go_str(value: Any, expected: str) -> None:
    assert F.go_str(value) == expected


# --------------------------------------------------------------------------
# tabwriter
# --------------------------------------------------------------------------

PS_HEADERS = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]


def test_tabulate_empty_docker_ps() -> None:
    # Exactly what `docker ps` prints with no containers.
    assert F.tabulate([], PS_HEADERS) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )


def test_tabulate_docker_ps_rows() -> None:
    rows = [
        ["4c01db0b339c", "ubuntu:22.04", '"bash"', "17 seconds ago", "Up 16 seconds", "", "webapp"],
        [
            "d7886598dbe2",
            "nginx",
            '"/docker-entrypoint.…"',
            "2 hours ago",
            "Exited (0) 2 hours ago",
            "80/tcp",
            "web",
        ],
    ]
    assert F.tabulate(rows, PS_HEADERS).splitlines() == [
        (
            "CONTAINER ID   IMAGE          COMMAND                  CREATED          "
            "STATUS                   PORTS     NAMES"
        ),
        (
            '4c01db0b339c   ubuntu:22.04   "bash"                   17 seconds ago   '
            "Up 16 seconds                      webapp"
        ),
        (
            'd7886598dbe2   nginx          "/docker-entrypoint.…"   2 hours ago      '
            "Exited (0) 2 hours ago   80/tcp    web"
        ),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\tb\n", "a         b\n"),
        ("a\tb", "a         b"),
        ("", ""),
        ("only\n", "only\n"),
        ("a\tb\tc\nxx\ty\n", "a         b         c\nxx        y\n"),
        # a line without tabs ends the column block: alignment restarts below it
        ("a\t1\nbreak\nlongervalue\t2\n", "a         1\nbreak\nlongervalue   2\n"),
        # trailing cells are never padded
        ("a\tb   \n", "a         b   \n"),
    ],
)
def test_tabwrite(text: str, expected: str) -> None:
    assert F.tabwrite(text) == expected


# --------------------------------------------------------------------------
# Go templates
# --------------------------------------------------------------------------

INSPECT: dict[str, Any] = {
    "Id": "4c01db0b339cabcdef",
    "Name": "/web",
    "RestartCount": 0,
    "State": {"Status": "running", "Running": True, "ExitCode": 0, "Health": None},
    "Config": {
        "Labels": {"com.example.vendor": "ACME", "version": "1.0"},
        "Cmd": ["sh", "-c", "echo hi"],
        "Env": [],
    },
    "Mounts": [{"Source": "/a", "Destination": "/b"}, {"Source": "/c", "Destination": "/d"}],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Name}}", "/web"),
        ("{{.State.Status}}", "running"),
        ("{{.Config.Labels.version}}", "1.0"),
        ('{{index .Config.Labels "com.example.vendor"}}', "ACME"),
        ('{{index .Config.Labels "missing"}}', ""),
        ("{{index .Config.Cmd 1}}", "-c"),
        ("{{json .Config.Labels}}", '{"com.example.vendor":"ACME","version":"1.0"}'),
        ("{{json .State.Running}}", "true"),
        ('{{json "<a&b>"}}', '"<a&b>"'),
        ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/a:/b /c:/d "),
        (
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}",
            "com.example.vendor=ACME version=1.0 ",
        ),
        ("{{range $i, $m := .Mounts}}{{$i}}{{$m.Source}}{{end}}", "0/a1/c"),
        ("{{range $m := .Mounts}}{{$m.Destination}}{{end}}", "/b/d"),
        ("{{range .Config.Env}}x{{else}}none{{end}}", "none"),
        ('{{range .Mounts}}{{if eq .Source "/c"}}{{break}}{{end}}{{.Source}}{{end}}', "/a"),
        ('{{range .Mounts}}{{if eq .Source "/a"}}{{continue}}{{end}}{{.Source}}{{end}}', "/c"),
        ("{{range 3}}{{.}}{{end}}", "012"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ('{{if eq .State.Status "exited"}}x{{else if .State.Running}}r{{else}}n{{end}}', "r"),
        ("{{if .Config.Env}}x{{end}}", ""),
        ("{{with .State}}{{.Status}}{{end}}", "running"),
        ("{{with .Config.Env}}x{{else}}empty{{end}}", "empty"),
        ("{{println .Name}}", "/web\n"),
        ('{{println "a" 1}}', "a 1\n"),
        ('{{print 1 2 "a" 3}}', "1 2a3"),
        ("{{upper .State.Status}}", "RUNNING"),
        ("{{.State.Status | upper}}", "RUNNING"),
        ('{{lower "ABC"}}', "abc"),
        ('{{title "hello world"}}', "Hello World"),
        ('{{join .Config.Cmd " "}}', "sh -c echo hi"),
        ('{{split "a,b,c" ","}}', "[a b c]"),
        ('{{pad "x" 1 2}}', " x  "),
        ('{{truncate "abcdef" 3}}', "abc"),
        ('{{printf "%s-%d" .Name .RestartCount}}', "/web-0"),
        (
            '{{printf "%5s|%-5s|%05d|%x|%q|%v|%t|%.2f" "a" "b" 42 255 "q" 1.5 true 3.14159}}',
            '    a|b    |00042|ff|"q"|1.5|true|3.14',
        ),
        ('{{printf "%d" "x"}}', "%!d(string=x)"),
        ('{{printf "%s"}}', "%!s(MISSING)"),
        ('{{printf "%d%%" 5}}', "5%"),
        ("{{.Config.Env}}", "[]"),
        ("{{.Config.Cmd}}", "[sh -c echo hi]"),
        ("{{.Config.Labels}}", "map[com.example.vendor:ACME version:1.0]"),
        ("{{.State.Health}}", "<nil>"),
        ("{{.State.ExitCode}}", "0"),
        ("a  {{- .Name -}}  b", "a/webb"),
        ("a\n{{- .Name}}\n", "a/web\n"),
        ("{{/* comment */}}x", "x"),
        ("x {{- /* trimmed */ -}} y", "xy"),
        ("{{len .Mounts}}", "2"),
        ("{{len .Name}}", "4"),
        ("{{$n := .Name}}{{$n}}", "/web"),
        ("{{$n := 1}}{{$n = 2}}{{$n}}", "2"),
        ("{{$.Name}}", "/web"),
        ("{{range .Mounts}}{{$.Name}}{{end}}", "/web/web"),
        ('{{or .Config.Env "default"}}', "default"),
        ("{{and .State.Running .Name}}", "/web"),
        ("{{not .State.Running}}", "false"),
        ('{{if and .State.Running (eq .State.Status "running")}}ok{{end}}', "ok"),
        ("{{(index .Mounts 0).Source}}", "/a"),
        ('{{ne 1 2}} {{lt 1 2}} {{ge "b" "a"}} {{le 2 2}} {{gt 1 2}}', "true true true true false"),
        ('{{eq .State.Status "created" "running"}}', "true"),
        ("{{html \"<a href='x'>\"}}", "&lt;a href=&#39;x&#39;&gt;"),
        ('{{urlquery "a b&c"}}', "a+b%26c"),
        ("{{`raw \\n`}}", "raw \\n"),
        ('{{"esc\\tx"}}', "esc\tx"),
        ("{{'a'}}", "97"),
        ("{{.}}", ""),
    ],
)
def test_render(template: str, expected: str) -> None:
    obj: Any = "" if template == "{{.}}" else INSPECT
    assert F.render(template, obj) == expected


def test_render_json_round_trips() -> None:
    assert json.loads(F.render("{{json .}}", INSPECT)) == INSPECT


@dataclass
class PsRow:
    """A ps row object of the kind the CLI may pass (attributes, a method)."""

    ID: str
    Names: str
    running_for: str = "5 seconds ago"
    labels: dict[str, str] = field(default_factory=lambda: {"a": "1"})

    def Label(self, name: str) -> str:
        return self.labels.get(name, "")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.ID}} {{.Names}}", "abc web"),
        ('{{.Label "a"}}', "1"),
        ('{{"a" | .Label}}', "1"),
        ("{{.RunningFor}}", "5 seconds ago"),
        (
            "{{json .}}",
            ('{"ID":"abc","Names":"web","running_for":"5 seconds ago","labels":{"a":"1"}}'),
        ),
        ("{{.}}", "{abc web 5 seconds ago map[a:1]}"),
    ],
)
def test_render_objects(template: str, expected: str) -> None:
    assert F.render(template, PsRow("abc", "web")) == expected


@pytest.mark.parametrize(
    ("template", "obj", "message"),
    [
        (
            "{{.Foo}}",
            INSPECT,
            'template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"',
        ),
        (
            "{{.Foo}}",
            PsRow("a", "b"),
            'template: :1:2: executing "" at <.Foo>: can\'t evaluate field Foo in type PsRow',
        ),
        (
            "x{{.State.Foo}}",
            INSPECT,
            'template: :1:9: executing "" at <.State.Foo>: map has no entry for key "Foo"',
        ),
        (
            "{{.State.Health.Status}}",
            INSPECT,
            (
                'template: :1:8: executing "" at <.State.Health.Status>: '
                "nil pointer evaluating interface {}.Status"
            ),
        ),
        (
            "a\n  {{.Nope}}",
            INSPECT,
            'template: :2:4: executing "" at <.Nope>: map has no entry for key "Nope"',
        ),
        (
            "{{.Name.Foo}}",
            INSPECT,
            'template: :1:7: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type string',
        ),
        (
            "{{join .Name}}",
            INSPECT,
            (
                'template: :1:2: executing "" at <join .Name>: wrong number of args for join: '
                "want 2 got 1"
            ),
        ),
        (
            "{{index .Mounts 5}}",
            INSPECT,
            (
                'template: :1:2: executing "" at <index .Mounts 5>: error calling index: '
                "index out of range: 5"
            ),
        ),
        (
            "{{range .Name}}{{end}}",
            INSPECT,
            'template: :1:8: executing "" at <.Name>: range can\'t iterate over /web',
        ),
        ("{{.Name", INSPECT, "template: :1: unclosed action"),
        ("{{.Name}", INSPECT, "template: :1: unrecognized character in action: U+007D '}'"),
        ("{{foo .Name}}", INSPECT, 'template: :1: function "foo" not defined'),
        ("{{if .Name}}x", INSPECT, "template: :1: unexpected EOF"),
        ("{{end}}", INSPECT, "template: :1: unexpected {{end}}"),
        ("{{$x}}", INSPECT, 'template: :1: undefined variable "$x"'),
        ("{{break}}", INSPECT, "template: :1: {{break}} outside {{range}}"),
        ("{{}}", INSPECT, "template: :1: missing value for command"),
        ('{{"abc}}', INSPECT, "template: :1: unterminated quoted string"),
    ],
)
def test_render_errors(template: str, obj: Any, message: str) -> None:
    with pytest.raises(F.FormatError) as info:
        F.render(template, obj)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------
# render_list (ps/images --format)
# --------------------------------------------------------------------------

ITEMS = [
    {"ID": "4c01db0b339c", "Image": "ubuntu", "Names": "web", "Labels": "a=1"},
    {"ID": "d7886598dbe2", "Image": "nginx:latest", "Names": "proxy", "Labels": ""},
]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "table {{.ID}}\\t{{.Names}}",
            "CONTAINER ID   NAMES\n4c01db0b339c   web\nd7886598dbe2   proxy\n",
        ),
        (
            "table {{.Image}}\t{{.Names}}",
            "IMAGE          NAMES\nubuntu         web\nnginx:latest   proxy\n",
        ),
        (
            "table {{upper .Names}}\t{{.ID}}",
            "NAMES     CONTAINER ID\nWEB       4c01db0b339c\nPROXY     d7886598dbe2\n",
        ),
        ("table {{.Names}}\t{{.Foo2}}", None),
        ("{{.Names}}", "web\nproxy\n"),
        ("  {{.Names}}:{{.Image}}\\n", "web:ubuntu\n\nproxy:nginx:latest\n\n"),
        (
            "json",
            (
                '{"ID":"4c01db0b339c","Image":"ubuntu","Names":"web","Labels":"a=1"}\n'
                '{"ID":"d7886598dbe2","Image":"nginx:latest","Names":"proxy","Labels":""}\n'
            ),
        ),
        (" json ", None),
    ],
)
def test_render_list(fmt: str, expected: str | None) -> None:
    if fmt == "table {{.Names}}\t{{.Foo2}}":
        with pytest.raises(F.FormatError, match='map has no entry for key "Foo2"'):
            F.render_list(fmt, ITEMS, F.CONTAINER_HEADERS)
        return
    out = F.render_list(fmt, ITEMS, F.CONTAINER_HEADERS)
    if expected is None:  # " json " is json too
        assert [json.loads(line) for line in out.splitlines()] == ITEMS
    else:
        assert out == expected


def test_render_list_empty_table_prints_the_header() -> None:
    fmt = "table {{.ID}}\t{{.Image}}\t{{.Names}}"
    assert F.render_list(fmt, [], F.CONTAINER_HEADERS) == "CONTAINER ID   IMAGE     NAMES\n"


def test_render_list_header_without_title_prints_no_value() -> None:
    assert F.render_list("table {{.Unknown}}", [], {}) == "<no value>\n"


def test_render_list_default_table() -> None:
    default = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}"
    rows = [{"Repository": "busybox", "Tag": "latest", "ID": "a416a98b71e2"}]
    expected = "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    a416a98b71e2\n"
    assert F.render_list("", rows, F.IMAGE_HEADERS, default_table=default) == expected
    assert F.render_list("table", rows, F.IMAGE_HEADERS, default_table=default) == expected
    with pytest.raises(F.FormatError):
        F.render_list("table", rows, F.IMAGE_HEADERS)


# --------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------


def test_parse_filters() -> None:
    got = F.parse_filters(["status=running", "name=web", "status=running", " Label = a=b ", ""])
    assert got == {"status": ["running"], "name": ["web"], "label": ["a=b"]}


def test_parse_filters_bad_format() -> None:
    with pytest.raises(F.FilterError, match=r"^bad format of filter \(expected name=value\)$"):
        F.parse_filters(["running"])


EXITED: dict[str, Any] = {
    "Id": "4c01db0b339cabcdef",
    "Names": ["/web-1"],
    "Image": "nginx:latest",
    "ImageID": "sha256:abc123def456",
    "Labels": {"app": "web", "tier": "front"},
    "State": "exited",
    "ExitCode": 137,
}
RUNNING: dict[str, Any] = {**EXITED, "State": "running", "ExitCode": 0, "Labels": {}}


@pytest.mark.parametrize(
    ("filters", "container", "expected"),
    [
        ({}, EXITED, True),
        ({"status": ["exited"]}, EXITED, True),
        ({"status": ["running"]}, EXITED, False),
        ({"status": ["running", "exited"]}, EXITED, True),
        ({"name": ["web"]}, EXITED, True),
        ({"name": ["^web"]}, EXITED, True),
        ({"name": ["^/web"]}, EXITED, True),
        ({"name": ["web-[0-9]$"]}, EXITED, True),
        ({"name": ["db"]}, EXITED, False),
        ({"name": ["db", "web"]}, EXITED, True),
        ({"name": ["(unclosed"]}, EXITED, False),
        ({"label": ["app"]}, EXITED, True),
        ({"label": ["app=web"]}, EXITED, True),
        ({"label": ["app=db"]}, EXITED, False),
        ({"label": ["app", "tier=front"]}, EXITED, True),
        ({"label": ["app", "missing"]}, EXITED, False),
        ({"label": ["app"]}, RUNNING, False),
        ({"id": ["4c01"]}, EXITED, True),
        ({"id": ["01db"]}, EXITED, False),
        ({"exited": ["137"]}, EXITED, True),
        ({"exited": ["0", "137"]}, EXITED, True),
        ({"exited": ["0"]}, EXITED, False),
        ({"exited": ["0"]}, RUNNING, False),
        ({"ancestor": ["nginx"]}, EXITED, True),
        ({"ancestor": ["nginx:latest"]}, EXITED, True),
        ({"ancestor": ["docker.io/library/nginx"]}, EXITED, True),
        ({"ancestor": ["abc1"]}, EXITED, True),
        ({"ancestor": ["sha256:abc123"]}, EXITED, True),
        ({"ancestor": ["redis"]}, EXITED, False),
        ({"health": ["none"]}, EXITED, True),
        ({"health": ["healthy"]}, {**RUNNING, "Health": "healthy"}, True),
        ({"health": ["healthy"]}, RUNNING, False),
        ({"is-task": ["true"]}, EXITED, False),
        ({"is-task": ["false"]}, EXITED, True),
        (
            {"volume": ["/data"]},
            {**EXITED, "Mounts": [{"Name": "v1", "Destination": "/data"}]},
            True,
        ),
        ({"volume": ["v2"]}, {**EXITED, "Mounts": [{"Name": "v1", "Destination": "/data"}]}, False),
        ({"network": ["bridge"]}, {**EXITED, "Networks": {"bridge": {"NetworkID": "n1"}}}, True),
        ({"network": ["n1"]}, {**EXITED, "Networks": {"bridge": {"NetworkID": "n1"}}}, True),
        ({"network": ["host"]}, {**EXITED, "Networks": ["bridge"]}, False),
        ({"status": ["exited"], "label": ["app=web"], "name": ["web"]}, EXITED, True),
        ({"status": ["exited"], "label": ["app=db"]}, EXITED, False),
    ],
)
def test_match_container(
    filters: dict[str, list[str]], container: dict[str, Any], expected: bool
) -> None:
    assert F.match_container(filters, container) is expected


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": ["foo"]}, "invalid filter 'status=foo'"),
        ({"bogus": ["x"]}, "invalid filter 'bogus'"),
        ({"exited": ["x"]}, 'strconv.Atoi: parsing "x": invalid syntax'),
        ({"health": ["sick"]}, "unrecognized filter value for health: sick"),
        ({"before": ["web"]}, "filter 'before' is not supported by moorage yet"),
    ],
)
def test_match_container_rejects(filters: dict[str, list[str]], message: str) -> None:
    with pytest.raises(F.FilterError) as info:
        F.match_container(filters, EXITED)
    assert str(info.value) == message
    with pytest.raises(F.FilterError):
        F.validate_container_filters(filters)


def test_module_does_not_need_the_native_core() -> None:
    source = Path(str(F.__file__)).read_text()
    assert "_core" not in source
    assert "import moorage" not in source and "from moorage" not in source
