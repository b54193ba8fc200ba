"""JSON for the core types, both ways.

Every core type is a frozen dataclass; `to_jsonable` turns one into plain JSON values and
`from_jsonable` reads it back, driven by the type hints, so that `probe --format json`
output can be fed to `diagnose`, and an audit's JSON to `probe --topology`.
We keep this small instead of adding pydantic: the types stay plain dataclasses, cheap to
create on the hot path of the log readers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, cast

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: dataclasses become objects, enums their value, datetimes ISO 8601
    in UTC with a `Z`, timedeltas seconds, tuples and sets lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return value


class SerdeError(ValueError):
    """The JSON does not have the shape of the type asked for; the message says where."""


def from_jsonable(cls: type[T], data: Any, where: str = "$") -> T:
    """Rebuild a value of type `cls` from `to_jsonable` output. Unknown keys are ignored
    (newer writers may add fields); missing keys take the field's default."""
    return cast(T, _convert(cls, data, where))


def _parse_datetime(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _convert(tp: Any, data: Any, where: str) -> Any:
    if tp is Any:
        return data
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, data, where)
            except (SerdeError, TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise SerdeError(f"{where}: no type of {tp} fits ({'; '.join(errors)})")
    if origin is typing.Literal:
        if data not in args:
            raise SerdeError(f"{where}: expected one of {args}, got {data!r}")
        return data
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if not isinstance(data, list):
            raise SerdeError(f"{where}: expected a list, got {type(data).__name__}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            items = [
                _convert(a, d, f"{where}[{i}]")
                for i, (a, d) in enumerate(zip(args, data, strict=False))
            ]
        else:
            item_type = args[0] if args else Any
            items = [_convert(item_type, d, f"{where}[{i}]") for i, d in enumerate(data)]
        return (origin or tp)(items)
    if origin is dict or tp is dict:
        if not isinstance(data, dict):
            raise SerdeError(f"{where}: expected an object, got {type(data).__name__}")
        key_type, value_type = args or (Any, Any)
        return {
            _convert(key_type, k, where): _convert(value_type, v, f"{where}.{k}")
            for k, v in data.items()
        }
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return _dataclass(tp, data, where)
        if issubclass(tp, enum.Enum):
            try:
                return tp(data)
            except ValueError as exc:
                raise SerdeError(f"{where}: {exc}") from exc
        if tp is dt.datetime:
            if not isinstance(data, str):
                raise SerdeError(f"{where}: expected an ISO 8601 time, got {data!r}")
            return _parse_datetime(data)
        if tp is dt.timedelta:
            return dt.timedelta(seconds=float(data))
        if tp is Path:
            return Path(data)
        if tp is float and isinstance(data, int) and not isinstance(data, bool):
            return float(data)
        if tp in (int, float, str, bool):
            if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
                raise SerdeError(f"{where}: expected {tp.__name__}, got {data!r}")
            return data
    return data


def _dataclass(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SerdeError(
            f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name in data:
            kwargs[field.name] = _convert(
                hints[field.name], data[field.name], f"{where}.{field.name}"
            )
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SerdeError(f"{where}: missing required key {field.name!r} for {cls.__name__}")
    return cls(**kwargs)
