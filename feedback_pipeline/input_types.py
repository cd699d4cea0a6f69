"""Input types: each kind of answer a label schema asks for, defined once (under MLflow's names).

One class per input type. Its dataclass fields are the type's parameters, checked when it is made;
every type also takes `required` (default true: the Review App insists on an answer). From the same
class come the four places that judge a value:

- `value_rules()`: the value check as polars rules over a frame of submissions (pipeline validation),
- `check(value)` / `check_value(schema, value)`: the same check for one plain value (the SDK),
- `expectations()`: its Great Expectations expectations, run by the assessments suite and, on a
  dataset's expectation values, by the publish gate (`feedback_pipeline.datasets.audit_dataset`),
- `read_form(given)`: how the Review App reads the strings a form posted into a value.

Values are JSON; their types are named as DuckDB's `json_type` names them (`json_values`). Adding
an input type means a class here, a template block in the Review App and the docs.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from feedback_pipeline.field_errors import FieldError
from feedback_pipeline.json_values import NUMERIC_TYPES, json_type

if TYPE_CHECKING:
    from feedback_pipeline.schemas import LabelSchema

MAX_OPTIONS = 10
MAX_OPTION_CHARS = 64
SHOWN_CHARS = 80

Rule = tuple[pl.Expr, pl.Expr]


def shown(text: str | None) -> str:
    """A value's JSON text as messages show it: at most SHOWN_CHARS characters."""
    text = "null" if text is None else text
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def shown_column(column: str) -> pl.Expr:
    """`shown` as a polars expression."""
    text = pl.col(column).cast(pl.String)
    return pl.when(text.str.len_chars() > SHOWN_CHARS).then(text.str.slice(0, SHOWN_CHARS - 3) + "...").otherwise(text)


# --- parameter checks -----------------------------------------------------------------------------


def _options(owner: str, parameter: str, options: object) -> list[str]:
    if isinstance(options, str) or not isinstance(options, list | tuple):
        raise FieldError(f"input.{parameter}", f"{owner}.{parameter} is {options!r}: expected a list of 1 to {MAX_OPTIONS} strings")
    if not 1 <= len(options) <= MAX_OPTIONS:
        raise FieldError(f"input.{parameter}", f"{owner}.{parameter} has {len(options)} options: expected 1 to {MAX_OPTIONS}")
    for option in options:
        if isinstance(option, bool):
            raise FieldError(f"input.{parameter}", f"{owner}.{parameter} option {option!r}: expected a string (in YAML, quote yes/no options: \"Yes\")")
        if not isinstance(option, str) or not option.strip() or len(option) > MAX_OPTION_CHARS:
            raise FieldError(f"input.{parameter}", f"{owner}.{parameter} option {option!r}: expected a non-empty string of at most {MAX_OPTION_CHARS} characters")
    duplicates = sorted({o for o in options if list(options).count(o) > 1})
    if duplicates:
        raise FieldError(f"input.{parameter}", f"{owner}.{parameter} repeats {duplicates}: expected distinct options")
    return list(options)


def _limit(owner: str, parameter: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldError(f"input.{parameter}", f"{owner}.{parameter} is {value!r}: expected a positive whole number or None")
    return value


def _bound(owner: str, parameter: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(f"input.{parameter}", f"{owner}.{parameter} is {value!r}: expected a finite number or None")
    return value


def _label(owner: str, parameter: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_OPTION_CHARS:
        raise FieldError(f"input.{parameter}", f"{owner}.{parameter} is {value!r}: expected a non-empty string of at most {MAX_OPTION_CHARS} characters")
    return value


# --- Great Expectations -------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueExpectation:
    """One requirement on the values answering a schema: a column computed from `json_values.value_facts`
    columns, the GX expectation on it, and which rows fail it (to show examples)."""

    requirement: str
    column: str
    values: pl.Expr
    expectation: str
    arguments: dict[str, Any]
    fails: pl.Expr

    def gx(self, gx: Any) -> Any:
        """The expectation object of the `great_expectations` module `gx`, on `column`."""
        return getattr(gx.expectations, self.expectation)(column=self.column, **self.arguments)

    def renamed(self, column: str) -> ValueExpectation:
        """The same requirement on a column of another name (the publish gate's wide frame)."""
        return ValueExpectation(self.requirement, column, self.values, self.expectation, self.arguments, self.fails)


def _in_set(requirement: str, column: str, values: pl.Expr, allowed: Sequence[Any]) -> ValueExpectation:
    return ValueExpectation(requirement, column, values, "ExpectColumnValuesToBeInSet", {"value_set": list(allowed)},
                            ~values.is_in(list(allowed)).fill_null(True))


def _at_most(requirement: str, column: str, values: pl.Expr, low: float | None, high: float | None) -> ValueExpectation:
    within = values.is_between(-math.inf if low is None else low, math.inf if high is None else high)
    return ValueExpectation(requirement, column, values, "ExpectColumnValuesToBeBetween",
                            {"min_value": low, "max_value": high}, ~within.fill_null(True))


def _of_type(requirement: str, types: Sequence[str]) -> ValueExpectation:
    return _in_set(requirement, "value_type", pl.col("value_type"), types)


# --- the input types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Input(ABC):
    """What every input type has: `required`, its parameters as stored, and the four value checks."""

    required: bool = field(default=True, kw_only=True)
    input_type: ClassVar[str]
    discrete: ClassVar[bool] = False
    """A few distinct values (a majority vote between reviewers means something)."""
    agreement_level: ClassVar[str | None] = "nominal"
    """Krippendorff's level of measurement for agreement between reviewers (`feedback_pipeline.agreement`);
    None: no alpha, the exact-match rate. A categorical list is nominal over the whole selection."""

    def __post_init__(self) -> None:
        if not isinstance(self.required, bool):
            raise FieldError("input.required", f"{type(self).__name__}.required is {self.required!r}: expected true or false")
        self.check_parameters()

    def check_parameters(self) -> None:
        """Raise ValueError naming the parameter, its value and what was expected."""

    def parameters(self) -> dict[str, Any]:
        """The parameters as stored in a label schema's `input` (`required` only when false)."""
        stored = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "required"}
        return stored if self.required else {**stored, "required": False}

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(form value, label) of the options a keyboard digit picks, in order (none for free input)."""
        return []

    @classmethod
    @abstractmethod
    def value_rules(cls, name: pl.Expr, value: pl.Expr) -> list[Rule]:
        """(condition, message) rules over `value_facts` columns and this type's parameter columns: when a
        condition holds, the value does not fit. `name` is the schema name, `value` the value as shown."""

    @abstractmethod
    def problems(self, value: Any, name: str, text: str) -> list[str]:
        """The reasons a (non-null) value does not fit; `text` is its JSON as shown."""

    def check(self, value: Any, name: str = "value") -> list[str]:
        """The reasons one value does not fit this input, in the words validation uses (empty: it fits).
        None is no answer, and fits."""
        if value is None:
            return []
        return self.problems(value, name, shown(json.dumps(value, separators=(",", ":"), ensure_ascii=False)))

    @abstractmethod
    def expectations(self) -> list[ValueExpectation]:
        """What Great Expectations requires of the values answering this input."""

    @abstractmethod
    def read_form(self, given: list[str]) -> tuple[Any, str | None]:
        """(value, None) for a valid form answer, (None, None) when unanswered, (None, message) when wrong."""


def _strings_only() -> pl.Expr:
    return pl.col("item_types").list.eval(pl.element() == "VARCHAR").list.all()


def _options_text() -> pl.Expr:
    return pl.col("options").list.join(", ")


@dataclass(frozen=True)
class _OptionsInput(Input):
    """An input whose answers are picked from a few options."""

    options: list[str]
    discrete: ClassVar[bool] = True

    def check_parameters(self) -> None:
        object.__setattr__(self, "options", _options(type(self).__name__, "options", self.options))

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(o, o) for o in self.options]

    @property
    def listed(self) -> str:
        """The options as JSON, as the expectations say them."""
        return json.dumps(self.options, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class InputCategorical(_OptionsInput):
    """Pick one of a few options."""

    input_type: ClassVar[str] = "categorical"

    @classmethod
    def value_rules(cls, name: pl.Expr, value: pl.Expr) -> list[Rule]:
        return [(
            (pl.col("value_type") != "VARCHAR") | ~pl.col("options").list.contains(pl.col("value_text")),
            pl.format("value {} for '{}' is not one of its options: {}", value, name, _options_text()),
        )]

    def problems(self, value: Any, name: str, text: str) -> list[str]:
        if not isinstance(value, str) or value not in self.options:
            return [f"value {text} for '{name}' is not one of its options: {', '.join(self.options)}"]
        return []

    def expectations(self) -> list[ValueExpectation]:
        return [
            _of_type("values must be texts", ["VARCHAR"]),
            _in_set(f"values must be one of {self.listed}", "value_text", pl.col("value_text"), self.options),
        ]

    def read_form(self, given: list[str]) -> tuple[Any, str | None]:
        value = given[0] if given else ""
        if value == "":
            return None, None
        if value not in self.options:
            return None, f"{value!r} is not one of the options ({', '.join(self.options)})"
        return value, None


@dataclass(frozen=True)
class InputCategoricalList(_OptionsInput):
    """Pick any number of a few options."""

    input_type: ClassVar[str] = "categorical_list"

    @classmethod
    def value_rules(cls, name: pl.Expr, value: pl.Expr) -> list[Rule]:
        is_list, strings = pl.col("value_type") == "ARRAY", _strings_only()
        unknown = pl.col("value_items").list.set_difference(pl.col("options"))
        return [
            (~is_list | ~strings,
             pl.format("value {} for '{}' must be a list of options from: {}", value, name, _options_text())),
            (is_list & strings & (unknown.list.len() > 0),
             pl.format("value {} for '{}' has items that are not options: {} (options: {})", value, name,
                       unknown.list.join(", "), _options_text())),
        ]

    def problems(self, value: Any, name: str, text: str) -> list[str]:
        options = ", ".join(self.options)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return [f"value {text} for '{name}' must be a list of options from: {options}"]
        unknown = list(dict.fromkeys(item for item in value if item not in self.options))
        if unknown:
            return [f"value {text} for '{name}' has items that are not options: {', '.join(unknown)} (options: {options})"]
        return []

    def expectations(self) -> list[ValueExpectation]:
        in_options = pl.col("value_items").list.eval(pl.element().is_in(self.options)).list.all()
        return [
            _of_type("values must be lists", ["ARRAY"]),
            _in_set(f"values must be one of {self.listed}", "items_in_options", in_options, [True]),
        ]

    def read_form(self, given: list[str]) -> tuple[Any, str | None]:
        picked = [v for v in given if v != ""]
        unknown = [v for v in picked if v not in self.options]
        if unknown:
            return None, f"{unknown[0]!r} is not one of the options ({', '.join(self.options)})"
        return ([o for o in self.options if o in picked] or None), None


def _number(text: str) -> float | int:
    value = float(text)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


@dataclass(frozen=True)
class InputNumeric(Input):
    """A number, optionally bounded."""

    min_value: float | None = None
    max_value: float | None = None
    input_type: ClassVar[str] = "numeric"
    agreement_level: ClassVar[str | None] = "interval"

    def check_parameters(self) -> None:
        low = _bound(type(self).__name__, "min_value", self.min_value)
        high = _bound(type(self).__name__, "max_value", self.max_value)
        if low is not None and high is not None and low > high:
            raise FieldError("input.min_value", f"{type(self).__name__}.min_value {low!r} is above max_value {high!r}: expected min_value <= max_value")

    @classmethod
    def value_rules(cls, name: pl.Expr, value: pl.Expr) -> list[Rule]:
        number = pl.col("value_num")
        return [
            (~pl.col("value_type").is_in(NUMERIC_TYPES), pl.format("value {} for '{}' must be a number", value, name)),
            (number < pl.col("min_value"),
             pl.format("value {} for '{}' is below its minimum {}", value, name, pl.col("min_value"))),
            (number > pl.col("max_value"),
             pl.format("value {} for '{}' is above its maximum {}", value, name, pl.col("max_value"))),
        ]

    def problems(self, value: Any, name: str, text: str) -> list[str]:
        if json_type(value) not in NUMERIC_TYPES:
            return [f"value {text} for '{name}' must be a number"]
        if self.min_value is not None and value < self.min_value:
            return [f"value {text} for '{name}' is below its minimum {float(self.min_value)}"]
        if self.max_value is not None and value > self.max_value:
            return [f"value {text} for '{name}' is above its maximum {float(self.max_value)}"]
        return []

    def expectations(self) -> list[ValueExpectation]:
        found = [_of_type("values must be numbers", NUMERIC_TYPES)]
        low, high = self.min_value, self.max_value
        if low is not None or high is not None:
            words = (f"between {float(low)} and {float(high)}" if low is not None and high is not None
                     else f"at least {float(low)}" if low is not None else f"at most {float(high)}")
            found.append(_at_most(f"values must be {words}", "value_num", pl.col("value_num"), low, high))
        return found

    def read_form(self, given: list[str]) -> tuple[Any, str | None]:
        text = (given[0] if given else "").strip()
        if text == "":
            return None, None
        try:
            number = _number(text)
        except ValueError:
            return None, f"{text!r} is not a number"
        low, high = self.min_value, self.max_value
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"between {low} and {high}" if low is not None and high is not None else (
                f"at least {low}" if low is not None else f"at most {high}")
            return None, f"{number} is out of range: expected a number {bounds}"
        return number, None


@dataclass(frozen=True)
class InputText(Input):
    """Free text, optionally limited in length."""

    max_length: int | None = None
    input_type: ClassVar[str] = "text"
    agreement_level: ClassVar[str | None] = None

    def check_parameters(self) -> None:
        _limit(type(self).__name__, "max_length", self.max_length)

    @classmethod
    def value_rules(cls, name: pl.Expr, value: pl.Expr) -> list[Rule]:
        is_text, length = pl.col("value_type") == "VARCHAR", pl.col("value_text").str.len_chars()
        return [
            (~is_text, pl.format("value {} for '{}' must be text", value, name)),
            (is_text & (length > pl.col("max_length")),
             pl.format("value for '{}' is {} characters long: at most {} are allowed", name, length, pl.col("max_length"))),
        ]

    def problems(self, value: Any, name: str, text: str) -> list[str]:
        if not isinstance(value, str):
            return [f"value {text} for '{name}' must be text"]
        if self.max_length is not None and len(value) > self.max_length:
            return [f"value for '{name}' is {len(value)} characters long: at most {self.max_length} are allowed"]
        return []

    def expectations(self) -> list[ValueExpectation]:
        found = [_of_type("values must be texts", ["VARCHAR"])]
        if self.max_length is not None:
            found.append(_at_most(f"values must be at most {self.max_length} characters long", "text_length",
                                  pl.col("value_text").str.len_chars(), 0, self.max_length))
        return found

    def read_form(self, given: list[str]) -> tuple[Any, str | None]:
        text = (given[0] if given else "").strip()
        if self.max_length is not None and len(text) > self.max_length:
            return None, f"the text has {len(text)} characters: at most {self.max_length} are allowed"
        return (text or None), None


@dataclass(frozen=True)
class InputTextList(Input):
    """A list of short texts (facts, guidelines)."""

    max_length_each: int | None = None
    max_count: int | None = None
    input_type: ClassVar[str] = "text_list"
    agreement_level: ClassVar[str | None] = None

    def check_parameters(self) -> None:
        _limit(type(self).__name__, "max_length_each", self.max_length_each)
        _limit(type(self).__name__, "max_count", self.max_count)

    @classmethod
    def value_rules(cls, name: pl.Expr, value: pl.Expr) -> list[Rule]:
        is_list, count = pl.col("value_type") == "ARRAY", pl.col("value_items").list.len()
        longest = pl.col("value_items").list.eval(pl.element().str.len_chars()).list.max()
        return [
            (~is_list | ~_strings_only(), pl.format("value {} for '{}' must be a list of texts", value, name)),
            (is_list & (count > pl.col("max_count")),
             pl.format("value for '{}' has {} items: at most {} are allowed", name, count, pl.col("max_count"))),
            (is_list & (longest > pl.col("max_length_each")),
             pl.format("an item of the value for '{}' is {} characters long: at most {} are allowed", name, longest,
                       pl.col("max_length_each"))),
        ]

    def problems(self, value: Any, name: str, text: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return [f"value {text} for '{name}' must be a list of texts"]
        found = []
        if self.max_count is not None and len(value) > self.max_count:
            found.append(f"value for '{name}' has {len(value)} items: at most {self.max_count} are allowed")
        longest = max((len(item) for item in value), default=0)
        if self.max_length_each is not None and longest > self.max_length_each:
            found.append(f"an item of the value for '{name}' is {longest} characters long: "
                         f"at most {self.max_length_each} are allowed")
        return found

    def expectations(self) -> list[ValueExpectation]:
        found = [_of_type("values must be lists of texts", ["ARRAY"])]
        if self.max_count is not None:
            found.append(_at_most(f"values must have at most {self.max_count} items", "item_count",
                                  pl.col("value_items").list.len(), 0, self.max_count))
        if self.max_length_each is not None:
            longest = pl.col("value_items").list.eval(pl.element().str.len_chars()).list.max()
            found.append(_at_most(f"items must be at most {self.max_length_each} characters long", "longest_item",
                                  longest, 0, self.max_length_each))
        return found

    def read_form(self, given: list[str]) -> tuple[Any, str | None]:
        items = [t.strip() for t in given if t.strip()]
        if self.max_count is not None and len(items) > self.max_count:
            return None, f"{len(items)} entries given: at most {self.max_count} are allowed"
        for item in items:
            if self.max_length_each is not None and len(item) > self.max_length_each:
                return None, f"an entry has {len(item)} characters: at most {self.max_length_each} are allowed"
        return (items or None), None


@dataclass(frozen=True)
class InputPassFail(Input):
    """A pass/fail judgement; the value is a bool, shown with these labels."""

    positive_label: str = "Pass"
    negative_label: str = "Fail"
    input_type: ClassVar[str] = "pass_fail"
    discrete: ClassVar[bool] = True

    def check_parameters(self) -> None:
        _label(type(self).__name__, "positive_label", self.positive_label)
        _label(type(self).__name__, "negative_label", self.negative_label)
        if self.positive_label == self.negative_label:
            raise FieldError("input.negative_label", f"{type(self).__name__} labels are both {self.positive_label!r}: expected two different labels")

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [("true", self.positive_label), ("false", self.negative_label)]

    @classmethod
    def value_rules(cls, name: pl.Expr, value: pl.Expr) -> list[Rule]:
        return [(pl.col("value_type") != "BOOLEAN",
                 pl.format("value {} for '{}' must be true (pass) or false (fail)", value, name))]

    def problems(self, value: Any, name: str, text: str) -> list[str]:
        if not isinstance(value, bool):
            return [f"value {text} for '{name}' must be true (pass) or false (fail)"]
        return []

    def expectations(self) -> list[ValueExpectation]:
        return [_of_type("values must be true or false", ["BOOLEAN"])]

    def read_form(self, given: list[str]) -> tuple[Any, str | None]:
        value = given[0] if given else ""
        if value == "":
            return None, None
        if value not in ("true", "false"):
            return None, f"{value!r} is not one of the options ({self.positive_label}, {self.negative_label})"
        return value == "true", None


INPUT_CLASSES: dict[str, type[Input]] = {
    cls.input_type: cls
    for cls in (InputCategorical, InputCategoricalList, InputNumeric, InputText, InputTextList, InputPassFail)
}
INPUT_TYPES = tuple(INPUT_CLASSES)
DISCRETE_TYPES = tuple(name for name, cls in INPUT_CLASSES.items() if cls.discrete)

_DTYPES = {"list[str]": pl.List(pl.String), "float | None": pl.Float64, "int | None": pl.Int64, "str": pl.String,
           "bool": pl.Boolean}
PARAMETERS_DTYPE = pl.Struct(
    {f.name: _DTYPES[f.type] for cls in INPUT_CLASSES.values() for f in fields(cls)}
)
"""Every type's parameters as one struct: how a label schema's `input` JSON is decoded into columns."""


def input_from_parameters(input_type: str, parameters: Mapping[str, Any]) -> Input:
    """Rebuild an input from its type and parameters (as stored in the table or written in a file)."""
    cls = INPUT_CLASSES.get(input_type)
    if cls is None:
        raise FieldError("input.type", f"input type {input_type!r}: expected one of {', '.join(INPUT_CLASSES)}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise FieldError(f"input.{unknown[0]}", f"input parameters {unknown} for {input_type!r}: expected only {sorted(known)}")
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING and f.name not in parameters]
    if missing:
        raise FieldError("input", f"input type {input_type!r} needs {', '.join(missing)}: expected them among its parameters")
    return cls(**parameters)


def input_from_columns(row: Mapping[str, Any]) -> Input:
    """The input of a label-schema row whose parameters were decoded into columns (`PARAMETERS_DTYPE`);
    a null column is a parameter left at its default."""
    cls = INPUT_CLASSES[row["input_type"]]
    return cls(**{f.name: row[f.name] for f in fields(cls) if row.get(f.name) is not None})


def value_rules(name: pl.Expr, value: pl.Expr) -> list[Rule]:
    """Every type's value rules, each limited to the rows whose `input_type` column is that type."""
    return [
        ((pl.col("input_type") == input_type) & condition, message)
        for input_type, cls in INPUT_CLASSES.items()
        for condition, message in cls.value_rules(name, value)
    ]


def check_value(schema: LabelSchema | Input, value: Any) -> list[str]:
    """Why `value` cannot answer this label schema (or input), in the words pipeline validation would
    reject it with; an empty list when it fits. For a door that can tell the caller at once, such as
    `log_feedback`: the pipeline applies the same rules later (`value_rules`), so what passes here is
    not refused for its value's shape afterwards (the schema may still change in between)."""
    if isinstance(schema, Input):
        return schema.check(value)
    return schema.input.check(value, schema.name)
