"""Docker-compatible output helpers for the CLI.

Everything here reproduces what the Docker CLI prints, so scripts written
against ``docker`` keep working against ``moorage``:

* a Go ``text/template`` subset for ``--format``/``-f`` (``render``,
  ``render_list``), including Docker's extra functions (``json``, ``join``,
  ``upper``, ...), the ``table`` prefix and ``--format json``;
* Go's ``text/tabwriter`` layout as Docker configures it (``tabwrite``,
  ``tabulate``: minwidth 10, padding 3);
* the go-units humanizers (``human_duration``, ``human_size``, ``bytes_size``,
  ``parse_size``) and the derived texts (``created_since``, ``status_text``);
* ``logs --since/--until`` values (``parse_duration_or_timestamp``);
* ``-f key=value`` filters for containers (``parse_filters``,
  ``match_container``);
* ``truncate_id`` and ``format_command``.

The module depends on the standard library only, so it imports without the
native core.  Values reach templates as dicts (keys are field names, as in
``docker inspect`` JSON), dataclasses or plain objects (attributes; a Go-style
name like ``RunningFor`` falls back to ``running_for``); bound methods are
called with the template arguments, like Go methods.
"""

from __future__ import annotations

import base64
import calendar
import dataclasses
import datetime as _dt
import functools
import json
import math
import re
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = [
    "CONTAINER_HEADERS",
    "IMAGE_HEADERS",
    "FilterError",
    "FormatError",
    "Template",
    "bytes_size",
    "compile_template",
    "created_since",
    "ellipsis",
    "format_command",
    "go_quote",
    "go_str",
    "human_duration",
    "human_size",
    "match_container",
    "parse_duration",
    "parse_duration_or_timestamp",
    "parse_filters",
    "parse_size",
    "render",
    "render_list",
    "status_text",
    "tabulate",
    "tabwrite",
    "truncate_id",
    "validate_container_filters",
]


class FormatError(ValueError):
    """A ``--format`` template failed to parse or execute; the message is one
    line, worded like Go's ``text/template`` errors."""


class FilterError(ValueError):
    """A ``--filter`` value is malformed or names an unknown filter."""


# Column titles of `docker ps` (formatter.ContainerContext) and `docker images`.
CONTAINER_HEADERS: Mapping[str, str] = {
    "ID": "CONTAINER ID",
    "Names": "NAMES",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
}
IMAGE_HEADERS: Mapping[str, str] = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}


# ---------------------------------------------------------------------------
# Go value printing
# ---------------------------------------------------------------------------


class _NoValue:
    """Go's invalid reflect.Value: what a missing map entry prints as."""

    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE = _NoValue()
_MISSING = object()  # "no final value" in a pipeline


def _go_float(f: float) -> str:
    """Format a float like Go's ``%v``: the shortest round-tripping digits,
    in exponent form when the decimal exponent is below -4 or at least 6
    (strconv's 'g' with shortest precision: ``1e+06``, ``123456``)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    tup = Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(str(d) for d in tup.digits)
    assert isinstance(tup.exponent, int)
    point = len(digits) + tup.exponent  # digits before the decimal point
    x = point - 1
    if x < -4 or x >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_str(value: Any) -> str:
    """Print ``value`` the way Go's ``fmt.Sprint`` prints the equivalent Go
    value: ``true``/``false``, ``<nil>``, ``[a b]`` for slices and
    ``map[k:v]`` (sorted keys) for maps."""
    if isinstance(value, str):
        return value
    if value is _NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, bytes):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, Mapping):
        items = _sorted_items(value)
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v)}" for k, v in items) + "]"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return "{" + " ".join(go_str(getattr(value, f.name)) for f in fields) + "}"
    return str(value)


def _sorted_items(m: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    try:
        return sorted(m.items(), key=lambda kv: kv[0])
    except TypeError:
        return sorted(m.items(), key=lambda kv: str(kv[0]))


def _go_type(value: Any) -> str:
    """Name of the Go type a Python value stands for, used in messages."""
    if value is None or value is _NO_VALUE:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: a double-quoted string with Go escapes;
    printable non-ASCII characters are kept as they are."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or (ch.isprintable() and code != 0x7F):
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings/slices/maps are
    false; everything else (structs included) is true."""
    if value is None or value is _NO_VALUE:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, (str, bytes, list, tuple, set, frozenset, Mapping)):
        return len(value) > 0
    return True


def _jsonable(value: Any) -> Any:
    """Convert a template value into what ``json.dumps`` accepts, keeping
    dataclass field order (Go keeps struct field order)."""
    if value is _NO_VALUE:
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.isoformat().replace("+00:00", "Z")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return {k: _jsonable(v) for k, v in attrs.items() if not k.startswith("_")}
    return str(value)


def _go_json(value: Any) -> str:
    """Docker's ``json`` template function: compact JSON, HTML not escaped."""
    try:
        text = json.dumps(
            _jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except ValueError as exc:
        raise _FuncError(f"json: unsupported value: {exc}") from None
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# ---------------------------------------------------------------------------
# printf / print / println
# ---------------------------------------------------------------------------

_PRINTF_RE = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?([a-zA-Z%])")


def _pad(text: str, flags: str, width: int | None, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(arg)}={go_str(arg)})"


def _format_one(flags: str, width: int | None, prec: int | None, verb: str, arg: Any) -> str:
    """Format one printf operand as Go's fmt does for the common verbs."""
    if verb in "vs":
        if verb == "s" and not isinstance(arg, (str, bytes)) and isinstance(arg, (int, float)):
            return _bad_verb(verb, arg)
        text = go_str(arg)
        if prec is not None:
            text = text[:prec]
        return _pad(text, flags, width, False)
    if verb == "q":
        if isinstance(arg, str):
            return _pad(go_quote(arg), flags, width, False)
        if isinstance(arg, int) and not isinstance(arg, bool):
            return _pad(
                "'" + go_quote(chr(arg))[1:-1].replace("'", "\\'") + "'", flags, width, False
            )
        return _bad_verb(verb, arg)
    if verb == "t":
        if isinstance(arg, bool):
            return _pad(go_str(arg), flags, width, False)
        return _bad_verb(verb, arg)
    if verb in "dboxXcU":
        if verb in "xX" and isinstance(arg, str):
            text = arg.encode().hex()
            return _pad(text.upper() if verb == "X" else text, flags, width, False)
        if not isinstance(arg, int) or isinstance(arg, bool):
            return _bad_verb(verb, arg)
        if verb == "c":
            return _pad(chr(arg), flags, width, False)
        if verb == "U":
            return _pad(f"U+{arg:04X}", flags, width, False)
        spec = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb]
        sign = "+" if "+" in flags else (" " if " " in flags else "-")
        text = format(arg, sign + ("#" if "#" in flags and verb != "d" else "") + spec)
        return _pad(text, flags, width, True)
    if verb in "eEfFgG":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool):
            return _bad_verb(verb, arg)
        num = float(arg)
        if verb in "gG" and prec is None:
            text = _go_float(num)
            if verb == "G":
                text = text.upper()
            if "+" in flags and num >= 0:
                text = "+" + text
        else:
            sign = "+" if "+" in flags else (" " if " " in flags else "-")
            p = 6 if prec is None else prec
            text = format(num, f"{sign}.{p}{verb}")
        return _pad(text, flags, width, True)
    return _bad_verb(verb, arg)


def _go_sprintf(fmt: str, args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use in practice."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _PRINTF_RE.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width_s, prec_s, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            if argi < len(args) and isinstance(args[argi], int):
                width = args[argi]
                argi += 1
            else:
                out.append("%!(BADWIDTH)")
        elif width_s:
            width = int(width_s)
        if prec_s == "*":
            if argi < len(args) and isinstance(args[argi], int):
                prec = args[argi]
                argi += 1
            else:
                out.append("%!(BADPREC)")
        elif prec_s is not None:
            prec = int(prec_s) if prec_s else 0
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(flags, width, prec, verb, args[argi]))
        argi += 1
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{_go_type(a)}={go_str(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _go_sprint(args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    out: list[str] = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(go_str(a))
        prev_string = is_string
    return "".join(out)


# ---------------------------------------------------------------------------
# Template functions
# ---------------------------------------------------------------------------


class _FuncError(Exception):
    """Raised by a template function; reported as "error calling NAME: ..."."""


class _PlainError(Exception):
    """Raised by a template function; reported as is (Go's builtin checks)."""


def _fn_index(item: Any, *indexes: Any) -> Any:
    for idx in indexes:
        if item is None or item is _NO_VALUE:
            raise _FuncError("index of untyped nil")
        if isinstance(item, Mapping):
            # A missing key gives the map's zero value; for the string maps
            # templates index (labels, options) that is "".
            item = item.get(idx, "")
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise _FuncError(f"cannot index slice/array with type {_go_type(idx)}")
            if not 0 <= idx < len(item):
                raise _FuncError(f"index out of range: {idx}")
            item = item[idx] if not isinstance(item, str) else item.encode()[idx]
        else:
            raise _FuncError(f"can't index item of type {_go_type(item)}")
    return item


def _fn_slice(item: Any, *indexes: Any) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise _FuncError(f"can't slice item of type {_go_type(item)}")
    if len(indexes) > 2:
        raise _FuncError(f"too many slice indexes: {len(indexes)}")
    bounds = [i for i in indexes]
    for b in bounds:
        if not isinstance(b, int) or isinstance(b, bool):
            raise _FuncError(f"cannot index slice/array with type {_go_type(b)}")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise _FuncError(f"index out of range: {hi if hi > len(item) else lo}")
    return item[lo:hi]


def _fn_len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (bytes, list, tuple, set, frozenset, Mapping)):
        return len(item)
    raise _FuncError(f"len of type {_go_type(item)}")


def _kind(v: Any) -> str:
    if v is None or v is _NO_VALUE:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "other"


def _fn_eq(a: Any, *others: Any) -> bool:
    if not others:
        raise _FuncError("missing argument for comparison")
    for b in others:
        ka, kb = _kind(a), _kind(b)
        if ka != kb and "nil" not in (ka, kb):
            raise _FuncError("incompatible types for comparison")
        if a == b or (ka == kb == "nil"):
            return True
    return False


def _fn_ne(a: Any, b: Any) -> bool:
    return not _fn_eq(a, b)


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("number", "string") or kb not in ("number", "string"):
        raise _FuncError("invalid type for comparison")
    if ka != kb:
        raise _FuncError("incompatible types for comparison")
    return a, b


def _fn_lt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x < y)


def _fn_le(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x <= y)


def _fn_gt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x > y)


def _fn_ge(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x >= y)


def _fn_printf(fmt: Any, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise _FuncError(f"wrong type for value; expected string; got {_go_type(fmt)}")
    return _go_sprintf(fmt, args)


def _fn_split(s: Any, sep: Any) -> list[str]:
    text, sep_s = go_str(s), go_str(sep)
    if sep_s == "":
        return list(text)
    return text.split(sep_s)


def _fn_join(items: Any, sep: Any) -> str:
    if isinstance(items, str):
        raise _FuncError("wrong type for value; expected []string; got string")
    if not isinstance(items, (list, tuple)):
        raise _FuncError(f"wrong type for value; expected []string; got {_go_type(items)}")
    return go_str(sep).join(go_str(i) for i in items)


def _fn_title(s: Any) -> str:
    return re.sub(r"(?<![\w'])\w", lambda m: m.group(0).upper(), go_str(s))


def _fn_html(*args: Any) -> str:
    text = _go_sprint(args)
    for old, new in (
        ("&", "&amp;"),
        ("'", "&#39;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ('"', "&#34;"),
        ("\0", "\ufffd"),
    ):
        text = text.replace(old, new)
    return text


def _fn_pad(s: Any, before: Any, after: Any) -> str:
    text = go_str(s)
    if not text:
        return text
    return " " * int(before) + text + " " * int(after)


def _fn_truncate(s: Any, n: Any) -> str:
    text = go_str(s)
    return text[: int(n)] if len(text) > int(n) else text


def _fn_js(*args: Any) -> str:
    text = _go_sprint(args)
    out = []
    for ch in text:
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


# name -> (callable, minimum args, maximum args or None)
_FUNCS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "index": (_fn_index, 1, None),
    "slice": (_fn_slice, 1, None),
    "len": (_fn_len, 1, 1),
    "not": (lambda a: not _truth(a), 1, 1),
    "eq": (_fn_eq, 1, None),
    "ne": (_fn_ne, 2, 2),
    "lt": (_fn_lt, 2, 2),
    "le": (_fn_le, 2, 2),
    "gt": (_fn_gt, 2, 2),
    "ge": (_fn_ge, 2, 2),
    "print": (lambda *a: _go_sprint(a), 0, None),
    "printf": (_fn_printf, 1, None),
    "println": (lambda *a: " ".join(go_str(x) for x in a) + "\n", 0, None),
    "html": (_fn_html, 0, None),
    "urlquery": (lambda *a: urllib.parse.quote_plus(_go_sprint(a)), 0, None),
    "js": (_fn_js, 0, None),
    # Docker's additions (cli/templates/templates.go).
    "json": (_go_json, 1, 1),
    "split": (_fn_split, 2, 2),
    "join": (_fn_join, 2, 2),
    "title": (_fn_title, 1, 1),
    "lower": (lambda s: go_str(s).lower(), 1, 1),
    "upper": (lambda s: go_str(s).upper(), 1, 1),
    "pad": (_fn_pad, 3, 3),
    "truncate": (_fn_truncate, 2, 2),
}
# In the header row Docker's functions return their first argument.
_HEADER_FUNCS = frozenset({"json", "split", "join", "title", "lower", "upper", "pad", "truncate"})
_KNOWN_FUNCS = frozenset(_FUNCS) | {"and", "or"}


# ---------------------------------------------------------------------------
# Lexer
# ---------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str
    val: str
    pos: int
    value: Any = None


_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
)
_NUMBER_RE = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|"
    r"(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
)
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = " \t\r\n"


def _line_of(src: str, pos: int) -> int:
    return 1 + src.count("\n", 0, pos)


def _parse_error(src: str, pos: int, msg: str) -> FormatError:
    return FormatError(f"template: :{_line_of(src, pos)}: {msg}")


def _unquote(src: str, tok: str, pos: int) -> str:
    """Decode a Go interpreted string literal (``"..."``)."""
    try:
        body = tok[1:-1]
        out: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            esc = body[i + 1]
            simple = {
                "a": "\a",
                "b": "\b",
                "f": "\f",
                "n": "\n",
                "r": "\r",
                "t": "\t",
                "v": "\v",
                "\\": "\\",
                '"': '"',
                "'": "'",
            }
            if esc in simple:
                out.append(simple[esc])
                i += 2
            elif esc == "x":
                out.append(chr(int(body[i + 2 : i + 4], 16)))
                i += 4
            elif esc == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
            elif esc == "U":
                out.append(chr(int(body[i + 2 : i + 10], 16)))
                i += 10
            elif esc in "01234567":
                out.append(chr(int(body[i + 1 : i + 4], 8)))
                i += 4
            else:
                raise ValueError(esc)
        return "".join(out)
    except (ValueError, IndexError):
        raise _parse_error(src, pos, f"invalid syntax: {tok}") from None


def _lex(src: str) -> list[_Tok]:
    """Split a template into text, delimiters and action tokens, applying
    the ``{{-``/``-}}`` whitespace trimming."""
    toks: list[_Tok] = []
    i, n = 0, len(src)
    trim_next = False
    while i <= n:
        j = src.find("{{", i)
        text = src[i:] if j < 0 else src[i:j]
        if trim_next:
            text = text.lstrip(_SPACE)
            trim_next = False
        left_trim = j >= 0 and src.startswith("{{-", j) and j + 3 < n and src[j + 3] in _SPACE
        if left_trim:
            text = text.rstrip(_SPACE)
        if text:
            toks.append(_Tok("text", text, i))
        if j < 0:
            break
        k = j + (4 if left_trim else 2)
        # Comments: {{/* ... */}}
        if src.startswith("/*", k):
            end = src.find("*/", k + 2)
            if end < 0:
                raise _parse_error(src, j, "unclosed comment")
            k = end + 2
            if src.startswith(" -}}", k):
                i = k + 4
                trim_next = True
            elif src.startswith("}}", k):
                i = k + 2
            else:
                raise _parse_error(src, j, "comment ends before closing delimiter")
            continue
        toks.append(_Tok("left", "{{", j))
        k = _lex_action(src, k, toks)
        if src.startswith(" -}}", k) or (src[k] in _SPACE and src.startswith("-}}", k + 1)):
            toks.append(_Tok("right", "}}", k))
            i = k + 4
            trim_next = True
        else:
            toks.append(_Tok("right", "}}", k))
            i = k + 2
    toks.append(_Tok("eof", "", n))
    return toks


def _at_right(src: str, k: int) -> bool:
    if src.startswith("}}", k):
        return True
    return k < len(src) and src[k] in _SPACE and src.startswith("-}}", k + 1)


def _lex_action(src: str, k: int, toks: list[_Tok]) -> int:
    """Lex the inside of one action; return the index of its right delimiter."""
    n = len(src)
    while True:
        if k >= n:
            raise _parse_error(src, k, "unclosed action")
        if _at_right(src, k):
            return k
        ch = src[k]
        start = k
        if ch in _SPACE:
            while k < n and src[k] in _SPACE and not _at_right(src, k):
                k += 1
            toks.append(_Tok("space", src[start:k], start))
            continue
        if ch == '"':
            k += 1
            while k < n and src[k] != '"':
                if src[k] == "\\":
                    k += 1
                if k >= n or src[k] == "\n":
                    raise _parse_error(src, start, "unterminated quoted string")
                k += 1
            if k >= n:
                raise _parse_error(src, start, "unterminated quoted string")
            k += 1
            tok = src[start:k]
            toks.append(_Tok("string", tok, start, _unquote(src, tok, start)))
            continue
        if ch == "`":
            end = src.find("`", k + 1)
            if end < 0:
                raise _parse_error(src, start, "unterminated raw quoted string")
            k = end + 1
            toks.append(_Tok("string", src[start:k], start, src[start + 1 : end]))
            continue
        if ch == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[k:])
            if not m:
                raise _parse_error(src, start, "unterminated character constant")
            k += m.end()
            lit = m.group(0)
            char = _unquote(src, '"' + lit[1:-1] + '"', start)
            toks.append(_Tok("number", lit, start, ord(char)))
            continue
        if ch == "$":
            m = _IDENT_RE.match(src, k + 1)
            k = m.end() if m else k + 1
            toks.append(_Tok("var", src[start:k], start))
            continue
        if ch == "." and not (k + 1 < n and src[k + 1].isdigit()):
            m = _IDENT_RE.match(src, k + 1)
            if m:
                k = m.end()
                toks.append(_Tok("field", src[start:k], start))
            else:
                k += 1
                toks.append(_Tok("dot", ".", start))
            continue
        if ch.isdigit() or ch == "." or (ch in "+-" and k + 1 < n and src[k + 1] in "0123456789."):
            m = _NUMBER_RE.match(src, k)
            if not m or m.end() == k:
                raise _parse_error(src, start, f"bad number syntax: {src[k : k + 1]!r}")
            k = m.end()
            lit = src[start:k]
            clean = lit.replace("_", "")
            value: Any
            try:
                value = int(clean, 0)
            except ValueError:
                try:
                    value = float(clean)
                except ValueError:
                    raise _parse_error(src, start, f'bad number syntax: "{lit}"') from None
            toks.append(_Tok("number", lit, start, value))
            continue
        m = _IDENT_RE.match(src, k)
        if m:
            k = m.end()
            word = m.group(0)
            if word in _KEYWORDS:
                toks.append(_Tok("keyword", word, start))
            elif word in ("true", "false"):
                toks.append(_Tok("bool", word, start, word == "true"))
            elif word == "nil":
                toks.append(_Tok("nil", word, start))
            else:
                toks.append(_Tok("ident", word, start))
            continue
        if src.startswith(":=", k):
            toks.append(_Tok("declare", ":=", start))
            k += 2
            continue
        simple = {"|": "pipe", "(": "lparen", ")": "rparen", "=": "assign", ",": "comma"}
        if ch in simple:
            toks.append(_Tok(simple[ch], ch, start))
            k += 1
            continue
        raise _parse_error(src, start, f"unrecognized character in action: U+{ord(ch):04X} '{ch}'")


# ---------------------------------------------------------------------------
# Parse tree
# ---------------------------------------------------------------------------


@dataclass
class _Node:
    pos: int


@dataclass
class _Text(_Node):
    text: str


@dataclass
class _Field(_Node):
    names: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + n for n in self.names)


@dataclass
class _Var(_Node):
    name: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name + "".join("." + n for n in self.names)


@dataclass
class _Ident(_Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class _Dot(_Node):
    def __str__(self) -> str:
        return "."


@dataclass
class _Lit(_Node):
    text: str
    value: Any

    def __str__(self) -> str:
        return self.text


@dataclass
class _Cmd(_Node):
    args: list[_Node]

    def __str__(self) -> str:
        return " ".join(str(a) for a in self.args)


@dataclass
class _Pipe(_Node):
    decl: list[str]
    is_assign: bool
    cmds: list[_Cmd]
    paren: bool = False

    def __str__(self) -> str:
        text = " | ".join(str(c) for c in self.cmds)
        if self.decl:
            text = ", ".join(self.decl) + (" = " if self.is_assign else " := ") + text
        return f"({text})" if self.paren else text


@dataclass
class _Chain(_Node):
    node: _Node
    names: tuple[str, ...]

    def __str__(self) -> str:
        return str(self.node) + "".join("." + n for n in self.names)


@dataclass
class _Action(_Node):
    pipe: _Pipe


@dataclass
class _Control(_Node):
    kind: str  # "if", "with" or "range"
    pipe: _Pipe
    body: list[_Node]
    else_body: list[_Node] = field(default_factory=list)


@dataclass
class _Jump(_Node):
    kind: str  # "break" or "continue"


@dataclass
class _Marker(_Node):
    kind: str  # "else" or "end"


class _Parser:
    """Recursive-descent parser mirroring Go's text/template/parse."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = _lex(src)
        self.i = 0
        self.vars = ["$"]
        self.range_depth = 0

    def error(self, pos: int, msg: str) -> FormatError:
        return _parse_error(self.src, pos, msg)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def peek_non_space(self) -> _Tok:
        while self.toks[self.i].kind == "space":
            self.i += 1
        return self.toks[self.i]

    def next_non_space(self) -> _Tok:
        tok = self.peek_non_space()
        self.i += 1
        return tok

    def parse(self) -> list[_Node]:
        nodes: list[_Node] = []
        while self.peek().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _Marker):
                raise self.error(node.pos, f"unexpected {{{{{node.kind}}}}}")
            nodes.append(node)
        return nodes

    def item_list(self) -> tuple[list[_Node], _Marker]:
        nodes: list[_Node] = []
        while self.peek().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _Marker):
                return nodes, node
            nodes.append(node)
        raise self.error(len(self.src), "unexpected EOF")

    def text_or_action(self) -> _Node:
        tok = self.next()
        if tok.kind == "text":
            return _Text(tok.pos, tok.val)
        if tok.kind == "left":
            return self.action()
        raise self.error(tok.pos, f"unexpected {tok.val!r} in input")

    def expect_right(self, context: str) -> _Tok:
        tok = self.next_non_space()
        if tok.kind != "right":
            raise self.error(tok.pos, f"unexpected {tok.val!r} in {context}")
        return tok

    def action(self) -> _Node:
        tok = self.peek_non_space()
        if tok.kind == "keyword":
            self.next()
            kw = tok.val
            if kw in ("if", "with", "range"):
                return self.control(kw, tok.pos)
            if kw == "else":
                nxt = self.peek_non_space()
                if nxt.kind == "keyword" and nxt.val in ("if", "with"):
                    return _Marker(tok.pos, "else")
                self.expect_right("else")
                return _Marker(tok.pos, "else")
            if kw == "end":
                self.expect_right("end")
                return _Marker(tok.pos, "end")
            if kw in ("break", "continue"):
                if self.range_depth == 0:
                    raise self.error(tok.pos, f"{{{{{kw}}}}} outside {{{{range}}}}")
                self.expect_right(kw)
                return _Jump(tok.pos, kw)
            raise self.error(tok.pos, f"{{{{{kw}}}}} is not supported in --format templates")
        pipe = self.pipeline("command", "right")
        return _Action(tok.pos, pipe)

    def control(self, kind: str, pos: int) -> _Control:
        mark = len(self.vars)
        pipe = self.pipeline(kind, "right")
        if kind == "range":
            self.range_depth += 1
        body, marker = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: list[_Node] = []
        if marker.kind == "else":
            nxt = self.peek_non_space()
            if kind in ("if", "with") and nxt.kind == "keyword" and nxt.val == kind:
                self.next()
                else_body = [self.control(kind, nxt.pos)]
            else:
                else_body, marker = self.item_list()
                if marker.kind != "end":
                    raise self.error(marker.pos, "expected end; found {{else}}")
        del self.vars[mark:]
        return _Control(pos, kind, pipe, body, else_body)

    def pipeline(self, context: str, end: str) -> _Pipe:
        start = self.peek_non_space()
        decl: list[str] = []
        is_assign = False
        if start.kind == "var":
            save = self.i
            self.next()
            nxt = self.next_non_space()
            if nxt.kind in ("declare", "assign"):
                decl = [start.val]
                is_assign = nxt.kind == "assign"
            elif nxt.kind == "comma" and context == "range":
                second = self.next_non_space()
                op = self.next_non_space()
                if second.kind != "var" or op.kind not in ("declare", "assign"):
                    raise self.error(nxt.pos, "range can only initialize variables")
                decl = [start.val, second.val]
                is_assign = op.kind == "assign"
            else:
                self.i = save
            for name in decl:
                if is_assign:
                    if name not in self.vars:
                        raise self.error(start.pos, f'undefined variable "{name}"')
                else:
                    self.vars.append(name)
        cmds: list[_Cmd] = []
        while True:
            tok = self.peek_non_space()
            if tok.kind == end:
                self.next()
                if not cmds:
                    raise self.error(tok.pos, f"missing value for {context}")
                return _Pipe(start.pos, decl, is_assign, cmds)
            if tok.kind in (
                "bool",
                "number",
                "string",
                "nil",
                "dot",
                "field",
                "ident",
                "var",
                "lparen",
            ):
                cmds.append(self.command())
                continue
            if tok.kind == "eof":
                raise self.error(tok.pos, "unclosed action")
            raise self.error(tok.pos, f"unexpected {tok.val!r} in {context}")

    def command(self) -> _Cmd:
        start = self.peek_non_space()
        args: list[_Node] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("right", "rparen"):
                self.i -= 1
            elif tok.kind != "pipe":
                raise self.error(tok.pos, f"unexpected {tok.val!r} in operand")
            break
        if not args:
            raise self.error(start.pos, "empty command")
        return _Cmd(start.pos, args)

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "field":
            chain_pos = self.peek().pos
            names: list[str] = []
            while self.peek().kind == "field":
                names.append(self.next().val[1:])
            if isinstance(node, _Field):
                return _Field(chain_pos, node.names + tuple(names))
            if isinstance(node, _Var):
                return _Var(chain_pos, node.name, node.names + tuple(names))
            if isinstance(node, (_Lit, _Dot)):
                raise self.error(chain_pos, f"unexpected . after term {str(node)!r}")
            return _Chain(chain_pos, node, tuple(names))
        return node

    def term(self) -> _Node | None:
        tok = self.next_non_space()
        if tok.kind == "ident":
            if tok.val not in _KNOWN_FUNCS:
                raise self.error(tok.pos, f'function "{tok.val}" not defined')
            return _Ident(tok.pos, tok.val)
        if tok.kind == "dot":
            return _Dot(tok.pos)
        if tok.kind == "nil":
            return _Lit(tok.pos, "nil", None)
        if tok.kind == "var":
            if tok.val not in self.vars:
                raise self.error(tok.pos, f'undefined variable "{tok.val}"')
            return _Var(tok.pos, tok.val)
        if tok.kind == "field":
            return _Field(tok.pos, (tok.val[1:],))
        if tok.kind in ("bool", "number", "string"):
            return _Lit(tok.pos, tok.val, tok.value)
        if tok.kind == "lparen":
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            pipe.paren = True
            pipe.pos = tok.pos
            return pipe
        self.i -= 1
        return None


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_SNAKE_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _snake(name: str) -> str:
    return _SNAKE_RE.sub("_", name).lower()


class _Exec:
    """State of one template execution (Go's ``state``)."""

    def __init__(self, src: str, root: Any, header: bool) -> None:
        self.src = src
        self.header = header
        self.vars: list[list[Any]] = [["$", root]]
        self.out: list[str] = []

    def error(self, node: _Node, msg: str) -> FormatError:
        text = self.src[: node.pos]
        nl = text.rfind("\n")
        col = node.pos if nl < 0 else node.pos - (nl + 1)
        return FormatError(
            f'template: :{_line_of(self.src, node.pos)}:{col}: executing "" at <{node}>: {msg}'
        )

    # --- walking ---

    def walk(self, dot: Any, nodes: list[_Node]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.eval_pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(go_str(value))
            elif isinstance(node, _Control):
                if node.kind == "range":
                    self.walk_range(dot, node)
                else:
                    self.walk_if_with(dot, node)
            elif isinstance(node, _Jump):
                raise _Break() if node.kind == "break" else _Continue()

    def walk_if_with(self, dot: Any, node: _Control) -> None:
        mark = len(self.vars)
        value = self.eval_pipeline(dot, node.pipe)
        if _truth(value):
            self.walk(value if node.kind == "with" else dot, node.body)
        elif node.else_body:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    def walk_range(self, dot: Any, node: _Control) -> None:
        mark = len(self.vars)
        value = self.eval_pipeline(dot, node.pipe, declare=False)
        pairs: Iterable[tuple[Any, Any]]
        if value is None or value is _NO_VALUE:
            pairs = []
        elif isinstance(value, Mapping):
            pairs = _sorted_items(value)
        elif isinstance(value, (list, tuple)):
            pairs = enumerate(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                raise self.error(node.pipe, "can't use int to iterate over more than one variable")
            pairs = ((i, i) for i in range(value))
        elif isinstance(value, (str, bool, float)) or not isinstance(value, Iterable):
            raise self.error(node.pipe, f"range can't iterate over {go_str(value)}")
        else:
            pairs = enumerate(list(value))
        decl = node.pipe.decl
        slots: list[list[Any]] = []
        if not node.pipe.is_assign:
            for name in decl:
                slot = [name, value]
                self.vars.append(slot)
                slots.append(slot)
        ran = False
        inner = len(self.vars)
        for key, elem in pairs:
            ran = True
            if decl:
                if len(decl) == 1:
                    self.assign(node.pipe, decl[0], elem, slots[0] if slots else None)
                else:
                    self.assign(node.pipe, decl[0], key, slots[0] if slots else None)
                    self.assign(node.pipe, decl[1], elem, slots[1] if slots else None)
            try:
                self.walk(elem, node.body)
            except _Continue:
                pass
            except _Break:
                del self.vars[inner:]
                break
            del self.vars[inner:]
        if not ran and node.else_body:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    def assign(self, node: _Node, name: str, value: Any, slot: list[Any] | None) -> None:
        if slot is not None:
            slot[1] = value
            return
        for existing in reversed(self.vars):
            if existing[0] == name:
                existing[1] = value
                return
        raise self.error(node, f"undefined variable: {name}")

    # --- evaluation ---

    def eval_pipeline(self, dot: Any, pipe: _Pipe, declare: bool = True) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        if declare:
            for name in pipe.decl:
                if pipe.is_assign:
                    self.assign(pipe, name, value, None)
                else:
                    self.vars.append([name, value])
        return value

    def eval_command(self, dot: Any, cmd: _Cmd, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, _Field):
            return self.eval_chain(dot, dot, first, first.names, cmd.args[1:], final)
        if isinstance(first, _Var):
            value = self.lookup(first)
            if not first.names:
                self.not_a_function(cmd, final)
                return value
            return self.eval_chain(dot, value, first, first.names, cmd.args[1:], final)
        if isinstance(first, _Chain):
            base = self.eval_arg(dot, first.node)
            return self.eval_chain(dot, base, first, first.names, cmd.args[1:], final)
        if isinstance(first, _Ident):
            return self.eval_function(dot, first, cmd, final)
        self.not_a_function(cmd, final)
        if isinstance(first, _Pipe):
            return self.eval_pipeline(dot, first)
        if isinstance(first, _Dot):
            return dot
        if isinstance(first, _Lit):
            if first.text == "nil":
                raise self.error(cmd, "nil is not a command")
            return first.value
        raise self.error(cmd, "can't evaluate command")

    def not_a_function(self, cmd: _Cmd, final: Any) -> None:
        if len(cmd.args) > 1 or final is not _MISSING:
            raise self.error(cmd, f"can't give argument to non-function {cmd.args[0]}")

    def lookup(self, node: _Var) -> Any:
        for name, value in reversed(self.vars):
            if name == node.name:
                return value
        raise self.error(node, f"undefined variable: {node.name}")

    def eval_arg(self, dot: Any, node: _Node) -> Any:
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, _Lit):
            return node.value
        if isinstance(node, _Field):
            return self.eval_chain(dot, dot, node, node.names, [], _MISSING)
        if isinstance(node, _Var):
            value = self.lookup(node)
            if node.names:
                return self.eval_chain(dot, value, node, node.names, [], _MISSING)
            return value
        if isinstance(node, _Pipe):
            return self.eval_pipeline(dot, node)
        if isinstance(node, _Chain):
            base = self.eval_arg(dot, node.node)
            return self.eval_chain(dot, base, node, node.names, [], _MISSING)
        if isinstance(node, _Ident):
            return self.eval_function(dot, node, _Cmd(node.pos, [node]), _MISSING)
        raise self.error(node, "can't handle argument")

    def eval_chain(
        self,
        dot: Any,
        receiver: Any,
        node: _Node,
        names: tuple[str, ...],
        args: list[_Node],
        final: Any,
    ) -> Any:
        for name in names[:-1]:
            receiver = self.eval_field(dot, name, node, [], _MISSING, receiver)
        return self.eval_field(dot, names[-1], node, args, final, receiver)

    def eval_field(
        self, dot: Any, name: str, node: _Node, args: list[_Node], final: Any, receiver: Any
    ) -> Any:
        has_args = bool(args) or final is not _MISSING
        if receiver is _NO_VALUE:
            return _NO_VALUE
        if receiver is None:
            raise self.error(node, f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, Mapping):
            if has_args:
                raise self.error(node, f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.header:
                return _NO_VALUE
            raise self.error(node, f'map has no entry for key "{name}"')
        attr: Any = _MISSING
        if not name.startswith("_") and not isinstance(receiver, (str, int, float, list, tuple)):
            attr = getattr(receiver, name, _MISSING)
            if attr is _MISSING:
                attr = getattr(receiver, _snake(name), _MISSING)
        if attr is _MISSING:
            raise self.error(node, f"can't evaluate field {name} in type {_go_type(receiver)}")
        if callable(attr) and not isinstance(attr, type):
            values = [self.eval_arg(dot, a) for a in args]
            if final is not _MISSING:
                values.append(final)
            try:
                return attr(*values)
            except TypeError as exc:
                raise self.error(node, f"wrong number of args for {name}: {exc}") from None
            except Exception as exc:
                raise self.error(node, f"error calling {name}: {exc}") from None
        if has_args:
            raise self.error(node, f"{name} has arguments but cannot be invoked as function")
        return attr

    def eval_function(self, dot: Any, ident: _Ident, cmd: _Cmd, final: Any) -> Any:
        name = ident.name
        arg_nodes = cmd.args[1:]
        if name in ("and", "or"):
            nodes: list[Any] = list(arg_nodes)
            if final is not _MISSING:
                nodes.append(final)
            if not nodes:
                raise self.error(cmd, f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for item in nodes:
                value = self.eval_arg(dot, item) if isinstance(item, _Node) else item
                if _truth(value) != (name == "and"):
                    return value
            return value
        func, lo, hi = _FUNCS[name]
        values = [self.eval_arg(dot, a) for a in arg_nodes]
        if final is not _MISSING:
            values.append(final)
        if len(values) < lo or (hi is not None and len(values) > hi):
            want = f"at least {lo}" if hi is None else str(lo)
            raise self.error(cmd, f"wrong number of args for {name}: want {want} got {len(values)}")
        if self.header and name in _HEADER_FUNCS:
            return values[0]
        try:
            return func(*values)
        except _FuncError as exc:
            raise self.error(cmd, f"error calling {name}: {exc}") from None
        except _PlainError as exc:
            raise self.error(cmd, str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise self.error(cmd, f"error calling {name}: {exc}") from None


class Template:
    """A parsed Go template; parse once, execute for many objects."""

    def __init__(self, text: str) -> None:
        """Parse ``text``; raise FormatError on a syntax error."""
        self.text = text
        self._nodes = _Parser(text).parse()

    def execute(self, obj: Any) -> str:
        """Render the template with ``obj`` as dot; raise FormatError when a
        field is missing or a function fails."""
        return self._run(obj, header=False)

    def execute_header(self, headers: Mapping[str, str]) -> str:
        """Render the table header row: fields resolve through ``headers``
        (a missing title prints ``<no value>``, as Docker's does) and
        Docker's string functions pass their argument through unchanged."""
        return self._run(dict(headers), header=True)

    def _run(self, obj: Any, header: bool) -> str:
        state = _Exec(self.text, obj, header)
        state.walk(obj, self._nodes)
        return "".join(state.out)


@functools.lru_cache(maxsize=64)
def compile_template(text: str) -> Template:
    """Parse ``text`` once and cache the result."""
    return Template(text)


def render(template: str, obj: Any) -> str:
    """Render one Go ``text/template`` against ``obj`` (``inspect -f``).

    The text is used as given: no ``table`` prefix and no ``\\t`` rewriting
    (``docker inspect`` does neither).  Errors raise FormatError, for example
    ``template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"``.
    """
    return compile_template(template).execute(obj)


def render_list(
    fmt: str,
    objs: Iterable[Any],
    headers: Mapping[str, str] | None = None,
    *,
    default_table: str | None = None,
) -> str:
    """Format a listing (``ps``, ``images``, ...) the way Docker's
    ``formatter.Context`` does, returning everything to write to stdout.

    ``fmt`` may be ``json`` (one compact JSON object per line, Docker 23+),
    ``table <template>`` (a header row from ``headers``, then the rows,
    aligned by ``tabwrite``) or a plain template (one line per object).  An
    empty ``fmt`` or bare ``table`` uses ``default_table``.  Literal ``\\t``
    and ``\\n`` in the format become tab and newline, and surrounding spaces
    are trimmed, as Docker does.
    """
    if fmt.strip() in ("", "table"):
        if default_table is None:
            raise FormatError("no table format given")
        fmt = default_table
    if fmt.strip() == "json":
        fmt = "{{json .}}"
    table = fmt.startswith("table")
    body = fmt[len("table") :] if table else fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tpl = compile_template(body)
    rows = "".join(tpl.execute(obj) + "\n" for obj in objs)
    if not table:
        return rows
    return tabwrite(tpl.execute_header(headers or {}) + "\n" + rows)


# ---------------------------------------------------------------------------
# tabwriter
# ---------------------------------------------------------------------------


def tabwrite(text: str, minwidth: int = 10, padding: int = 3, padchar: str = " ") -> str:
    """Align tab-terminated cells like Go's ``text/tabwriter`` configured as
    Docker does (``NewWriter(out, 10, 1, 3, ' ', 0)``).

    A column block is a run of consecutive lines that have a cell in that
    column; its width is the widest cell plus ``padding``, at least
    ``minwidth``.  The text after a line's last tab is not aligned or padded.
    Widths count code points, as Go counts runes.
    """
    cells = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    out: list[str] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            parts: list[str] = []
            for j, cell in enumerate(cells[i]):
                parts.append(cell)
                if j < len(widths):
                    parts.append(padchar * (widths[j] - len(cell)))
            out.append("".join(parts))
            if i + 1 != len(cells):
                out.append("\n")

    def format_block(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(cells[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(cells[this]) - 1:
                width = max(width, len(cells[this][column]) + padding)
                this += 1
            widths.append(width)
            format_block(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    format_block(0, len(cells))
    return "".join(out)


def tabulate(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Lay out ``headers`` and ``rows`` like ``docker ps``: every column but
    the last padded to its widest cell plus 3 spaces (at least 10 wide).
    Each line, the last included, ends with a newline."""
    lines = ["\t".join(headers)] + ["\t".join(row) for row in rows]
    return tabwrite("".join(line + "\n" for line in lines))


# ---------------------------------------------------------------------------
# go-units humanizing
# ---------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: "Less than a second", "1 second",
    "59 seconds", "About a minute", "59 minutes", "About an hour",
    "47 hours", "13 days", "8 weeks", "23 months", "2 years"."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_DECIMAL_ABBRS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_ABBRS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _size_and_unit(size: float, base: float, abbrs: Sequence[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(abbrs) - 1:
        size /= base
        i += 1
    return size, abbrs[i]


def human_size(size: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision`` in decimal units ("512B", "4.1kB",
    "1.23MB"); Docker's ``ps``/``images`` use precision 3 (``HumanSize`` is 4)."""
    value, unit = _size_and_unit(float(size), 1000.0, _DECIMAL_ABBRS)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, 4 significant digits ("1.5MiB")."""
    value, unit = _size_and_unit(float(size), 1024.0, _BINARY_ABBRS)
    return f"{value:.4g}{unit}"


_SIZE_MULTIPLIERS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_size(text: str) -> int:
    """go-units ``RAMInBytes``: "512m", "1g", "100k", "1.5g", "32KiB", "123"
    → bytes (binary multiples k/m/g/t/p, optional "b"/"ib", any case).
    Raises ValueError with go-units' message on bad input."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] == " ":
        num, sfx = text[:sep], text[sep + 1 :]
    else:
        num, sfx = text[: sep + 1], text[sep + 1 :]
    if not _FLOAT_RE.fullmatch(num):
        raise ValueError(f"invalid size: '{text}'")
    size = float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    if len(sfx) > 3:
        raise ValueError(f"invalid suffix: '{sfx}'")
    low = sfx.lower()
    if low[0] == "b":
        if len(low) > 1:
            raise ValueError(f"invalid suffix: '{low}'")
        return int(size)
    mul = _SIZE_MULTIPLIERS.get(low[0])
    if mul is None or (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{low}'")
    return int(size * mul)


# ---------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------

_ZERO_TIMES = ("", "0001-01-01T00:00:00Z")
_TS_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?"
)


def _parse_timestamp(text: str) -> Fraction | None:
    """Parse the RFC 3339 shapes Docker accepts into epoch seconds; a
    value without a zone is local time.  None if it does not match."""
    m = _TS_RE.fullmatch(text)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, zone = m.groups()
    parts = (int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
    try:
        _dt.datetime(*parts)
    except ValueError:
        return None
    if zone is None:
        base = int(time.mktime((*parts, 0, 0, -1)))
    else:
        base = calendar.timegm((*parts, 0, 0, 0))
        if zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            base -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return base + (Fraction(frac[1:]) / 10 ** (len(frac) - 1) if frac else Fraction(0))


def _epoch(value: Any) -> float | None:
    """A timestamp given as epoch seconds, datetime or RFC 3339 text, as
    epoch seconds; None for Go's zero time or an empty value."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    if isinstance(value, _dt.datetime):
        if value.year <= 1:
            return None
        return value.timestamp()
    if isinstance(value, str):
        if value in _ZERO_TIMES or value.startswith("0001-01-01T00:00:00"):
            return None
        parsed = _parse_timestamp(value.replace("z", "Z"))
        if parsed is None:
            raise ValueError(f"invalid timestamp: {value!r}")
        return float(parsed)
    raise ValueError(f"invalid timestamp: {value!r}")


def created_since(ts: Any, now: float) -> str:
    """``RunningFor``/``CreatedSince``: "5 minutes ago" (go-units wording)."""
    when = _epoch(ts)
    return human_duration(now - (when if when is not None else 0.0)) + " ago"


def status_text(state: Mapping[str, Any], now: float) -> str:
    """The ``STATUS`` column, worded like Docker's ``State.String()``.

    ``state`` is shaped like ``docker inspect``'s ``State`` (``Status``,
    ``Running``, ``Paused``, ``Restarting``, ``Dead``, ``ExitCode``,
    ``StartedAt``, ``FinishedAt``, ``Health.Status``); missing booleans are
    derived from ``Status``.  Times are epoch seconds, datetimes or RFC 3339.
    """
    status = str(state.get("Status", "") or "")
    running = bool(state.get("Running", status in ("running", "paused", "restarting")))
    paused = bool(state.get("Paused", status == "paused"))
    restarting = bool(state.get("Restarting", status == "restarting"))
    started = _epoch(state.get("StartedAt"))
    finished = _epoch(state.get("FinishedAt"))
    code = int(state.get("ExitCode", 0) or 0)
    if running:
        up = human_duration(now - (started or now))
        if paused:
            return f"Up {up} (Paused)"
        if restarting:
            return f"Restarting ({code}) {human_duration(now - (finished or now))} ago"
        health = state.get("Health")
        health_status = health.get("Status") if isinstance(health, Mapping) else health
        if health_status and health_status != "none":
            shown = "health: starting" if health_status == "starting" else health_status
            return f"Up {up} ({shown})"
        return f"Up {up}"
    if state.get("RemovalInProgress") or status == "removing":
        return "Removal In Progress"
    if state.get("Dead") or status == "dead":
        return "Dead"
    if started is None:
        return "Created"
    if finished is None:
        return ""
    return f"Exited ({code}) {human_duration(now - finished)} ago"


_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART_RE = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` ("1h30m", "-2.5s", "300ms") in integer
    nanoseconds; raises ValueError with Go's message."""
    s = text
    neg = False
    if s[:1] in ("+", "-"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    total = Fraction(0)
    while s:
        m = _DURATION_PART_RE.match(s)
        assert m is not None  # the pattern matches the empty string
        whole, frac, unit = m.groups()
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {go_quote(text)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        mult = _DURATION_UNITS_NS.get(unit)
        if mult is None:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        number = Fraction(int(whole or "0"))
        if frac:
            number += Fraction(int(frac), 10 ** len(frac))
        total += number * mult
        s = s[m.end() :]
    ns = int(total)
    return -ns if neg else ns


def parse_duration_or_timestamp(value: str, now: float) -> float:
    """``logs --since/--until`` (Docker's ``timetypes.GetTimestamp``): a Go
    duration counts back from ``now`` and is truncated to whole seconds; an
    RFC 3339 timestamp (date only, minutes, seconds, fraction, ``Z`` or
    offset; local time without a zone) or Unix seconds ("1700000000.5") is
    taken as is.  Returns epoch seconds; raises ValueError."""
    if value != "0":
        try:
            nanos = parse_duration(value)
        except ValueError:
            pass
        else:
            return float((round(now * 1_000_000_000) - nanos) // 1_000_000_000)
    parsed = _parse_timestamp(value)
    if parsed is not None:
        return float(parsed)
    if "-" in value:
        raise ValueError(f'parsing time "{value}": not an RFC 3339 timestamp')
    m = re.fullmatch(r"([+-]?\d+)(?:\.(\d+))?", value)
    if not m:
        raise ValueError(f"failed to parse value as time or duration: {go_quote(value)}")
    seconds = Fraction(int(m.group(1)))
    if m.group(2):
        seconds += Fraction(int(m.group(2)), 10 ** len(m.group(2)))
    return float(seconds)


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------

_CONTAINER_STATES = frozenset(
    {"created", "restarting", "running", "removing", "paused", "exited", "dead"}
)
_HEALTH_STATES = frozenset({"starting", "healthy", "unhealthy", "none"})
_SUPPORTED_FILTERS = frozenset(
    {
        "ancestor",
        "exited",
        "health",
        "id",
        "is-task",
        "label",
        "name",
        "network",
        "status",
        "volume",
    }
)
# Accepted by dockerd but needing data a single container record lacks.
_UNSUPPORTED_FILTERS = frozenset({"before", "since", "publish", "expose", "isolation"})


def parse_filters(values: Iterable[str]) -> dict[str, list[str]]:
    """Collect ``-f key=value`` flags: keys lower-cased and trimmed, values
    trimmed, duplicates dropped, empty flags ignored (Docker's FilterOpt)."""
    filters: dict[str, list[str]] = {}
    for raw in values:
        if raw == "":
            continue
        if "=" not in raw:
            raise FilterError("bad format of filter (expected name=value)")
        name, _, value = raw.partition("=")
        key = name.strip().lower()
        val = value.strip()
        bucket = filters.setdefault(key, [])
        if val not in bucket:
            bucket.append(val)
    return filters


def validate_container_filters(filters: Mapping[str, Sequence[str]]) -> None:
    """Reject what dockerd rejects before listing: unknown keys ("invalid
    filter 'key'"), bad ``status``/``health`` values and non-numeric
    ``exited`` codes.  Raises FilterError."""
    for key, values in filters.items():
        if key in _UNSUPPORTED_FILTERS:
            raise FilterError(f"filter '{key}' is not supported by moorage yet")
        if key not in _SUPPORTED_FILTERS:
            raise FilterError(f"invalid filter '{key}'")
        for value in values:
            if key == "status" and value not in _CONTAINER_STATES:
                raise FilterError(f"invalid filter 'status={value}'")
            if key == "health" and value not in _HEALTH_STATES:
                raise FilterError(f"unrecognized filter value for health: {value}")
            if key == "exited" and not re.fullmatch(r"[+-]?\d+", value):
                raise FilterError(f"strconv.Atoi: parsing {go_quote(value)}: invalid syntax")
            if key == "is-task" and value not in ("true", "false"):
                raise FilterError(f"invalid filter 'is-task={value}'")


def _regex_match(values: Sequence[str], source: str) -> bool:
    """Docker's ``Args.Match``: exact, else an unanchored regex search;
    patterns that do not compile are skipped."""
    for pattern in values:
        if pattern == source:
            return True
        try:
            if re.search(pattern, source):
                return True
        except re.error:
            continue
    return False


def _normalize_ref(ref: str) -> str:
    name = ref
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = name.removeprefix("library/")
    last = name.rsplit("/", 1)[-1]
    if "@" not in name and ":" not in last:
        name += ":latest"
    return name


def _ancestor_match(value: str, image: str, image_id: str) -> bool:
    if value == image or (image and _normalize_ref(value) == _normalize_ref(image)):
        return True
    want = value.split(":", 1)[1] if value.startswith("sha256:") else value
    have = image_id.split(":", 1)[1] if ":" in image_id else image_id
    return bool(want) and re.fullmatch(r"[0-9a-f]+", want) is not None and have.startswith(want)


def match_container(filters: Mapping[str, Sequence[str]], c: Mapping[str, Any]) -> bool:
    """Whether container ``c`` passes ``filters`` (values of one key are
    ORed, keys are ANDed; ``label`` values are ANDed, as in dockerd).

    ``c`` has ``Id``, ``Names`` (list), ``Image``, ``ImageID``, ``Labels``,
    ``State`` and ``ExitCode``; optionally ``Health`` (status string),
    ``Mounts`` (dicts with Name/Source/Destination) and ``Networks`` (names,
    or a mapping of name to settings with ``NetworkID``).  Filters are
    validated first (see validate_container_filters).
    """
    validate_container_filters(filters)
    state = str(c.get("State", ""))
    for key, values in filters.items():
        if not values:
            continue
        if key == "status" and state not in values:
            return False
        if key == "id" and not any(str(c.get("Id", "")).startswith(v) for v in values):
            return False
        if key == "name":
            names = [str(n) for n in c.get("Names", []) or []]
            if not any(
                _regex_match(values, n) or _regex_match(values, n.lstrip("/")) for n in names
            ):
                return False
        if key == "label":
            labels = c.get("Labels") or {}
            for value in values:
                k, has_value, v = value.partition("=")
                if k not in labels or (has_value and labels[k] != v):
                    return False
        if key == "exited":
            if state not in ("exited", "dead"):
                return False
            if int(c.get("ExitCode", 0) or 0) not in {int(v) for v in values}:
                return False
        if key == "ancestor":
            image, image_id = str(c.get("Image", "")), str(c.get("ImageID", ""))
            if not any(_ancestor_match(v, image, image_id) for v in values):
                return False
        if key == "health" and str(c.get("Health") or "none") not in values:
            return False
        if key == "is-task" and "true" in values and "false" not in values:
            return False
        if key == "volume":
            mounts = c.get("Mounts") or []
            points = {str(m.get(f, "")) for m in mounts for f in ("Name", "Source", "Destination")}
            if not points.intersection(values):
                return False
        if key == "network":
            nets = c.get("Networks") or []
            keys = set(nets)
            if isinstance(nets, Mapping):
                keys |= {
                    str(s.get("NetworkID", "")) for s in nets.values() if isinstance(s, Mapping)
                }
            if not keys.intersection(values):
                return False
    return True


# ---------------------------------------------------------------------------
# IDs and commands
# ---------------------------------------------------------------------------


def truncate_id(ident: str) -> str:
    """Docker's ``TruncateID``: drop an ``algo:`` prefix, keep 12 characters."""
    _, sep, rest = ident.partition(":")
    return (rest if sep else ident)[:12]


def _rune_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(text: str, max_width: int) -> str:
    """Docker's ``formatter.Ellipsis``: cut ``text`` to ``max_width``
    display cells, the last one being "…"."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return text[:1]
    widths = [_rune_width(ch) for ch in text]
    if sum(widths) <= max_width:
        return text
    used = 0
    for i, w in enumerate(widths):
        if used + w > max_width - 1:
            return text[:i] + "…"
        used += w
    return text


def format_command(args: Sequence[str], trunc: bool = True) -> str:
    """The ``COMMAND`` column: the path, then arguments (those containing a
    space wrapped in single quotes), cut to 20 cells with "…" unless
    ``trunc`` is false, then Go-quoted: ``"/bin/sh -c 'while t…"``."""
    if not args:
        command = ""
    else:
        rest = [f"'{a}'" if " " in a else a for a in args[1:]]
        command = " ".join([args[0], *rest]) if rest else args[0]
    if trunc:
        command = ellipsis(command, 20)
    return go_quote(command)
