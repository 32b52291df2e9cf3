"""Recipe values that cannot be right, refused before any model is loaded: a value of the wrong type in
the YAML (the command line's are typed by the parser), and numbers of the wrong sign whichever way they came.

TRL and transformers accept most of these and fail much later (a negative learning rate when the optimizer
is built, a list where a number goes deep inside a scheduler), after minutes of loading, with a traceback.
"""

from __future__ import annotations

import enum
import types
import typing

# field → (lowest allowed, whether the lowest itself is allowed). Fields missing here are not sign-checked.
_LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "learning_rate": (0, False),
    "num_train_epochs": (0, False),
    "per_device_train_batch_size": (1, True),
    "per_device_eval_batch_size": (1, True),
    "gradient_accumulation_steps": (1, True),
    "max_length": (1, True),
    "logging_steps": (0, False),
    "save_steps": (0, False),
    "eval_steps": (0, False),
    "save_total_limit": (1, True),
    "warmup_steps": (0, True),
    "weight_decay": (0, True),
    "max_grad_norm": (0, True),
    "lora_r": (1, True),
    "lora_alpha": (0, False),
    "lora_dropout": (0, True),
    "seed": (0, True),
}
_BELOW_ONE = ("lora_dropout",)  # a probability of dropping
_VALUE_KINDS = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
}


def recipe_type_problems(values: dict, dataclasses: tuple[type, ...]) -> list[str]:
    """`key: what is wrong` for each recipe value whose type its field cannot take."""
    hints = {}
    for dataclass in dataclasses:
        hints.update(typing.get_type_hints(dataclass))
    problems = []
    for key, value in values.items():
        if key in hints and not isinstance(value, str) and not _fits(value, hints[key]):
            quote = " (quote it)" if _fits("", hints[key]) and not isinstance(value, (list, dict)) else ""
            problems.append(
                f"{key}: {value!r} is {_VALUE_KINDS.get(type(value), type(value).__name__)}; "
                f"the field takes {_describe(hints[key])}{quote}"
            )
    return problems


def sign_problems(*parsed) -> list[str]:
    """`key: what is wrong` for each parsed argument outside its field's range."""
    problems = []
    for arguments in parsed:
        for key, (lowest, inclusive) in _LOWER_BOUNDS.items():
            value = getattr(arguments, key, None)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if value < lowest or (value == lowest and not inclusive):
                problems.append(f"{key}: {value!r} must be {'at least' if inclusive else 'above'} {lowest}")
            elif key in _BELOW_ONE and value >= 1:
                problems.append(f"{key}: {value!r} must be below 1")
        max_steps = getattr(arguments, "max_steps", None)
        if isinstance(max_steps, int) and max_steps == 0 or isinstance(max_steps, int) and max_steps < -1:
            problems.append(f"max_steps: {max_steps} must be above 0 (or -1: train for num_train_epochs)")
    return problems


def _fits(value, hint) -> bool:
    """Whether a YAML value (not a string: the parser types those) can be this field's value."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, member) for member in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is typing.Any:
        return True
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in {member.value for member in hint}
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple) or hint in (list, tuple):
        return isinstance(value, list)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # a type we do not know how to check: left to TRL


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_describe(member) for member in typing.get_args(hint)))
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(str(member.value) for member in hint)
    if origin is not None:
        return _article(origin.__name__)
    return _article(getattr(hint, "__name__", str(hint)))


def _article(name: str) -> str:
    words = {
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "str": "a string",
        "list": "a list",
        "dict": "a mapping",
        "tuple": "a list",
        "NoneType": "null",
    }
    return words.get(name, f"a {name}")
