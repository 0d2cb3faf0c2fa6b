"""Every Lua script, called wrongly against the real Redis: a missing ARGV, a word where a
number is declared, a wrong KEYS count. The Python side refuses first, naming the script
and the argument, and Redis is not called; a caller that bypasses it (a raw EVAL) is
refused by the script's generated header, by name, before its body runs. Either way
nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.redis_data import rdb
from ticker.domain.models import ItemIn
from ticker.newsroom.desk import Desk
from ticker.settings import Settings
from ticker.store import Store, scripts
from ticker.store.scripts import Arg, Script, ScriptArgumentError

pytestmark = pytest.mark.anyio

SCRIPTS = [scripts.load(n) for n in scripts.NAMES]
_GOOD = {"str": "x", "int": 1, "num": 1.5, "bool": True}


def good_keys(script: Script, prefix: str) -> dict[str, str]:
    # The auth scripts' keys share {auth}, the channel's {en}: real names, one slot.
    tag = "{auth}" if "tokens" in script.keys or script.keys == ("rate",) else "{en}"
    return {k: f"{prefix}:{tag}:{k}" for k in script.keys}


def good_args(script: Script) -> dict[str, Any]:
    return {a.name: _GOOD[a.type] for a in script.args}


def numbers(script: Script) -> list[Arg]:
    return [a for a in script.args if a.type in ("int", "num")]


def everything(client: Any, prefix: str) -> dict[bytes, bytes]:
    """Every key under the test's prefix, with its serialized value."""
    return {k: client.dump(k) for k in client.scan_iter(match=f"{prefix}:*", count=1000)}


@pytest.fixture
async def store(settings: Settings) -> Any:
    """A store over a channel that holds one item (so a stray write would show)."""
    assert settings.redis_url is not None
    store = Store(settings.redis_url.get_secret_value(), prefix=settings.key_prefix)
    await Desk(store, settings).post("en", ItemIn(headline="Untouched"), author="t")
    yield store
    await store.close()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
async def test_python_refuses_a_wrong_call_by_name_before_redis(
    script: Script, store: Store, settings: Settings
) -> None:
    client = rdb(settings)
    before = everything(client, settings.key_prefix)
    keys, args = good_keys(script, settings.key_prefix), good_args(script)
    wrong: list[tuple[dict[str, str], dict[str, Any], str]] = []
    if script.args:
        first = script.args[0].name
        wrong.append((keys, {a: v for a, v in args.items() if a != first}, first))
    wrong.append((keys, {**args, "surplus": "1"}, "surplus"))
    wrong += [(keys, {**args, a.name: "soon"}, a.name) for a in numbers(script)]
    wrong += [(keys, {**args, a.name: "1"}, a.name) for a in script.args if a.type == "bool"]
    wrong.append(({k: v for k, v in keys.items() if k != script.keys[-1]}, args, script.keys[-1]))
    wrong.append(({**keys, "stray": "k"}, args, "stray"))
    for bad_keys, bad_args, named in wrong:
        with pytest.raises(ScriptArgumentError) as refused:
            await store.client.run(script.name, bad_keys, bad_args)
        assert script.name in str(refused.value) and named in str(refused.value)
    assert everything(client, settings.key_prefix) == before
    client.close()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
async def test_the_script_refuses_a_wrong_raw_call_by_name(
    script: Script, store: Store, settings: Settings
) -> None:
    """Past the Python side (a raw EVAL of the script as the store loads it)."""
    client = rdb(settings)
    before = everything(client, settings.key_prefix)
    keys = list(good_keys(script, settings.key_prefix).values())
    args = [
        store.client.scripts[script.name].args[n].encode(script.name, v)
        for n, v in enumerate(good_args(script).values())
    ]
    wrong: list[tuple[list[str], list[Any], str]] = [
        (keys, [*args, "1"], "ARGV"),  # one too many
        (keys[:-1], args, "KEYS"),
        ([*keys, keys[0]], args, "KEYS"),
    ]
    if args:
        wrong.append((keys, args[:-1], "ARGV"))  # one missing
    for n, arg in enumerate(script.args):
        if arg.type in ("int", "num", "bool"):
            wrong.append((keys, [*args[:n], "soon", *args[n + 1 :]], arg.name))
    for bad_keys, bad_args, named in wrong:
        with pytest.raises(redis.ResponseError) as refused:
            client.eval(script.source, len(bad_keys), *bad_keys, *bad_args)
        assert str(refused.value).startswith(f"{script.name}: ") and named in str(refused.value)
    assert everything(client, settings.key_prefix) == before
    client.close()


def test_every_number_and_flag_is_declared_with_its_type() -> None:
    """The arguments the scripts read as numbers are declared as numbers (so both checks
    above cover them): each ``tonumber(name)`` in a body is of an int or num ARGV."""
    for script in SCRIPTS:
        for arg in script.args:
            if f"tonumber({arg.name})" in script.body:
                assert arg.type in ("int", "num"), f"{script.name}: {arg.name}"
