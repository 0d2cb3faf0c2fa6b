"""The Lua scripts the store runs (``lua/*.lua``): each one atomic, each naming keys of one
hash slot (``{channel}`` or ``{auth}``), so they run unchanged on Redis Cluster.

A script declares its KEYS and ARGV once, in its header::

    -- KEYS: events items live
    -- ARGV: uri expected_version:int live_score:int? pin:bool interval_ms:num notice:str?
    -- USES: append audit        (lib/*.lua pieces put before the body)

``Script.call`` builds KEYS and ARGV in that order from the caller's named values, and
checks each value against its type before Redis is called (``ScriptArgumentError``,
naming the script and the argument). The generated Lua header binds each name to a
``local`` and checks the counts and the numbers again, so a caller that bypasses Python
(or drifts) is refused with an error that names the script, before anything is written.
Bodies use the names only, never ``KEYS[n]``.

Types: ``str`` (the default), ``int``, ``num`` (int or float), ``bool`` (sent as ``1``/
``0``); a ``?`` suffix also takes ``None``, sent as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

_TYPES = ("str", "int", "num", "bool")
_HEADER = re.compile(r"^-- (KEYS|ARGV|USES):(.*)$", re.MULTILINE)


class ScriptArgumentError(TypeError):
    """A script was called with KEYS or ARGV its header does not declare: a bug."""


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    type: str
    optional: bool

    def encode(self, script: str, value: Any) -> str | int | float:
        if value is None and self.optional:
            return ""
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "num": isinstance(value, int | float) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
        }[self.type]
        if not ok:
            want = self.type + (" or None" if self.optional else "")
            raise ScriptArgumentError(
                f"{script}: ARGV {self.name} must be {want}, not {type(value).__name__}"
            )
        if self.type == "bool":
            return "1" if value else "0"
        return value  # type: ignore[no-any-return]

    def lua_check(self, script: str, n: int) -> str:
        """The Lua-side check of ARGV[n] (numbers and flags; a string is any string)."""
        if self.type in ("int", "num"):
            bad = f"not tonumber(ARGV[{n}])"
        elif self.type == "bool":
            bad = f"ARGV[{n}] ~= '1' and ARGV[{n}] ~= '0'"
        else:
            return ""
        if self.optional:
            bad = f"ARGV[{n}] ~= '' and {bad}"
        why = f"{script}: ARGV {self.name} must be {self.type}"
        return f"if {bad} then return redis.error_reply('{why}') end\n"


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    body: str  # with the lib pieces it uses, without the generated header

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    @property
    def source(self) -> str:
        want = f"{self.name}: wants {len(self.keys)} KEYS and {len(self.args)} ARGV"
        lines = [
            f"if #KEYS ~= {len(self.keys)} or #ARGV ~= {len(self.args)} then",
            f"  return redis.error_reply('{want}, got ' .. #KEYS .. ' and ' .. #ARGV)",
            "end",
        ]
        lines += [f"local {k} = KEYS[{n}]" for n, k in enumerate(self.keys, 1)]
        lines += [f"local {a.name} = ARGV[{n}]" for n, a in enumerate(self.args, 1)]
        checks = "".join(a.lua_check(self.name, n) for n, a in enumerate(self.args, 1))
        return "\n".join(lines) + "\n" + checks + self.body

    def call(
        self, keys: Mapping[str, str], args: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[str | int | float]]:
        """KEYS and ARGV in the script's order; a missing, unknown or mistyped name is a
        ``ScriptArgumentError`` (nothing is sent)."""
        args = args or {}
        for kind, given, declared in (("KEYS", keys, self.keys), ("ARGV", args, self.arg_names)):
            missing = [n for n in declared if n not in given]
            unknown = sorted(set(given) - set(declared))
            if missing or unknown:
                raise ScriptArgumentError(
                    f"{self.name}: {kind} missing {missing}, unknown {unknown} "
                    f"(declared: {list(declared)})"
                )
        for k in self.keys:
            if not isinstance(keys[k], str) or not keys[k]:
                raise ScriptArgumentError(f"{self.name}: KEYS {k} must be a key name")
        return [keys[k] for k in self.keys], [a.encode(self.name, args[a.name]) for a in self.args]

    def args_from(self, *sources: object, **given: Any) -> dict[str, Any]:
        """The ARGV by name: each from ``given``, or else the first of ``sources`` with an
        attribute of that name (a dataclass such as ``Change``: its fields are the names)."""
        out: dict[str, Any] = {}
        for name in self.arg_names:
            if name in given:
                out[name] = given.pop(name)
                continue
            for source in sources:
                if hasattr(source, name):
                    out[name] = getattr(source, name)
                    break
        return {**out, **given}  # what is left over is unknown: ``call`` says so


def _parse(name: str, text: str) -> Script:
    declared: dict[str, list[str]] = {"KEYS": [], "ARGV": [], "USES": []}
    for kind, names in _HEADER.findall(text):
        declared[kind] += names.split()
    args = []
    for spec in declared["ARGV"]:
        arg, _, kind = spec.partition(":")
        kind = kind or "str"
        if kind.rstrip("?") not in _TYPES:
            raise ValueError(f"{name}.lua: ARGV {arg} has an unknown type {kind!r}")
        args.append(Arg(arg, kind.rstrip("?"), kind.endswith("?")))
    lib = "".join(_text(f"lib/{piece}.lua") for piece in declared["USES"])
    return Script(name, tuple(declared["KEYS"]), tuple(args), lib + text)


def _text(path: str) -> str:
    where = files("ticker.store").joinpath("lua")
    for part in path.split("/"):
        where = where.joinpath(part)
    return where.read_text(encoding="utf-8")


@cache
def load(name: str) -> Script:
    """The script ``lua/{name}.lua``, with its declared names and lib pieces."""
    return _parse(name, _text(f"{name}.lua"))


# Every script, by the name of its file (loaded when a store is opened, not on import).
NAMES = (
    "commit",
    "purge",
    "aged_out",
    "forget",
    "index",
    "held_index",
    "audit_index",
    "snapshot",
    "knows",
    "authorize",
    "token_lookup",
    "token_create",
    "token_revoke",
    "token_rotate",
    "refund",
)
