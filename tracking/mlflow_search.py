"""MLflow's run search (``runs/search``) over Ferry's jobs.

The ``filter`` string and ``order_by`` list are parsed first into ``Clause`` and ``Ordering``
values, which know MLflow's grammar and nothing of the database; ``runs_matching`` then
translates them into one queryset of jobs, trusting what the parser let through. The grammar
follows MLflow's own (``mlflow.utils.search_utils.SearchUtils``), a little stricter where
MLflow's is loose: clauses need exactly one ``AND`` between them, and ``==`` or ``<>`` are
refused rather than accepted and failed later.

LIKE patterns take ``%`` and ``_`` as wildcards and ``\\`` as their escape, as PostgreSQL's LIKE
does; they are case-sensitive on every database (SQLite's LIKE is not: see ``Like``).
"""

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    Expression,
    F,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql.compiler import SQLCompiler

from jobs.models import Job
from tracking.models import MetricSeries, Param, Tag

RUN_NAME_TAG = "mlflow.runName"

RUN_STATUSES: dict[str, frozenset[str]] = {
    "RUNNING": frozenset({"starting", "running", "stopping"}),
    "SCHEDULED": frozenset({"queued", "scheduled"}),
    "FINISHED": frozenset({"succeeded"}),
    "FAILED": frozenset({"failed", "lost"}),
    "KILLED": frozenset({"stopped"}),
}
_RUN_STATUS_OF = {
    job_status: run for run, job_statuses in RUN_STATUSES.items() for job_status in job_statuses
}


def run_status(job_status: str) -> str:
    """MLflow's status of a job whose Ferry status is ``job_status``."""
    return _RUN_STATUS_OF[job_status]


class SearchError(ValueError):
    """A filter or order_by the grammar refuses; the message says what is wrong and what is
    accepted. The MLflow API answers it as INVALID_PARAMETER_VALUE."""


# --- what the parser produces ---------------------------------------------------------------

Kind = Literal["metric", "param", "tag", "attribute"]

_PREFIX_OF: dict[Kind, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
}


@dataclass(frozen=True)
class Key:
    """What a clause compares or an ordering sorts by. An attribute's ``name`` is its canonical
    one (``created`` is ``start_time``, ``Run name`` is ``run_name``)."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        name = self.name if re.fullmatch(r"[\w.]+", self.name) else f"`{self.name}`"
        return f"{_PREFIX_OF[self.kind]}.{name}"


@dataclass(frozen=True)
class Clause:
    """``key comparator value``. ``comparator`` is upper case with single spaces ("NOT IN");
    ``value`` is a float for metrics and times, a tuple of strings for IN and NOT IN, None for
    IS NULL and IS NOT NULL, else a string."""

    key: Key
    comparator: str
    value: float | str | tuple[str, ...] | None

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise TypeError(f"{self} holds no string")
        return self.value

    def number(self) -> float:
        if not isinstance(self.value, float):
            raise TypeError(f"{self} holds no number")
        return self.value

    def texts(self) -> tuple[str, ...]:
        if not isinstance(self.value, tuple):
            raise TypeError(f"{self} holds no list")
        return self.value


@dataclass(frozen=True)
class Ordering:
    key: Key
    ascending: bool


# --- parsing ----------------------------------------------------------------------------------

_NUMERIC = ("=", "!=", "<", "<=", ">", ">=")
_STRING = ("=", "!=", "LIKE", "ILIKE")
_LISTS = ("IN", "NOT IN")
_NULL_TESTS = ("IS NULL", "IS NOT NULL")

# Attribute names as MLflow spells them, to the canonical one; artifact_uri is MLflow's too,
# but Ferry's jobs keep their output elsewhere, so it is refused by name below.
_ATTRIBUTE_NAMES = {
    "run_id": "run_id",
    "run_name": "run_name",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
    "status": "status",
    "start_time": "start_time",
    "created": "start_time",
    "Created": "start_time",
    "end_time": "end_time",
    "user_id": "user_id",
}
_ATTRIBUTE_COMPARATORS: dict[str, tuple[str, ...]] = {
    "run_id": ("=", "!=", *_LISTS),
    "run_name": _STRING,
    "status": (*_STRING, *_LISTS),
    "start_time": _NUMERIC,
    "end_time": _NUMERIC,
    "user_id": _STRING,
}
_KIND_OF: dict[str, Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

_WORD = re.compile(r"[A-Za-z_]\w*|`[^`]*`")
_DOT = re.compile(r"\.")
_KEY_NAME = re.compile(r"`[^`]*`|\"[^\"]*\"|[\w.]+")
# `==` and `<>` are matched only to be refused with the list of what is accepted.
_COMPARATOR = re.compile(
    r"==|<>|!=|>=|<=|=|>|<|(?:NOT\s+)?IN\b|I?LIKE\b|IS\s+(?:NOT\s+)?NULL\b", re.IGNORECASE
)
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_QUOTE_HINT = "Quote a key holding spaces, dashes or other symbols in backticks: tags.`my key`."
_AND = re.compile(r"AND\b", re.IGNORECASE)
_DIRECTION = re.compile(r"(?:ASC|DESC)\b", re.IGNORECASE)
_OPEN, _COMMA, _CLOSE = re.compile(r"\("), re.compile(r","), re.compile(r"\)")


class _Scanner:
    """A position in the text being parsed; ``take`` consumes what a pattern matches there."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0

    def take(self, pattern: re.Pattern[str], *, skip_space: bool = True) -> re.Match[str] | None:
        if skip_space:
            self._skip_space()
        match = pattern.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()
        return match

    def at_end(self) -> bool:
        self._skip_space()
        return self.pos == len(self.text)

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def error(self, expected: str, hint: str = "") -> SearchError:
        rest = self.text[self.pos : self.pos + 24]
        found = repr(rest) if rest else "the end"
        return SearchError(
            f"Invalid {self.what} {self.text!r}: expected {expected} at position {self.pos}, "
            f"found {found}. {hint}".rstrip()
        )


def parse_filter(filter_string: str) -> list[Clause]:
    """The clauses of an MLflow filter string, all of which a run must satisfy."""
    scanner = _Scanner(filter_string, "filter")
    if scanner.at_end():
        return []
    clauses = [_clause(scanner)]
    while not scanner.at_end():
        if scanner.take(_AND) is None:
            raise scanner.error("AND", "Clauses are joined by AND only: no OR, no parentheses.")
        clauses.append(_clause(scanner))
    return clauses


def parse_order_by(order_by: Sequence[str]) -> list[Ordering]:
    """MLflow's order_by items ("metrics.acc DESC", "params.lr"), each key named once."""
    orderings = [_ordering(item) for item in order_by]
    keys = [ordering.key for ordering in orderings]
    repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
    if repeated:
        raise SearchError(f"order_by names {', '.join(repeated)} more than once; name each once.")
    return orderings


def _ordering(item: str) -> Ordering:
    scanner = _Scanner(item, "order_by item")
    key = _identifier(scanner)
    direction = scanner.take(_DIRECTION)
    if not scanner.at_end():
        raise scanner.error("ASC or DESC after the key, and nothing more")
    return Ordering(key, ascending=direction is None or direction[0].upper() == "ASC")


def _clause(scanner: _Scanner) -> Clause:
    key = _identifier(scanner)
    comparator = _comparator(scanner, key)
    return Clause(key, comparator, _value(scanner, key, comparator))


def _identifier(scanner: _Scanner) -> Key:
    head = scanner.take(_WORD)
    if head is None:
        raise scanner.error("a key such as metrics.acc, params.lr, tags.`my tag` or status")
    if scanner.take(_DOT, skip_space=False) is None:
        return _key(None, _unquote(head[0]))  # MLflow reads a bare name as an attribute
    name = scanner.take(_KEY_NAME, skip_space=False)
    if name is None:
        raise scanner.error(f"a key after '{head[0]}.'", _QUOTE_HINT)
    return _key(_unquote(head[0]), _unquote(name[0]))


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in '`"':
        return token[1:-1]
    return token


def _key(prefix: str | None, name: str) -> Key:
    kind = "attribute" if prefix is None else _KIND_OF.get(prefix)
    if kind is None:
        if prefix in ("dataset", "datasets"):
            raise SearchError("Ferry does not search runs by their datasets.")
        raise SearchError(
            f"Unknown key type '{prefix}' in '{prefix}.{name}': use metrics., params., tags. "
            "or attributes. (or metric., param., tag., attr., run.)."
        )
    if not name:
        raise SearchError(f"An empty key after '{prefix}.': name the {kind} to compare.")
    if kind == "attribute":
        return Key("attribute", _attribute_name(name))
    return Key(kind, name)


def _attribute_name(name: str) -> str:
    if name == "artifact_uri":
        raise SearchError("Ferry cannot search or order runs by attributes.artifact_uri.")
    canonical = _ATTRIBUTE_NAMES.get(name)
    if canonical is None:
        known = ", ".join(sorted(_ATTRIBUTE_COMPARATORS))
        raise SearchError(
            f"Unknown attribute '{name}': the attributes are {known} (and created, "
            f"`Run name`). A metric, param or tag is written metrics.{name}, params.{name} "
            f"or tags.{name}."
        )
    return canonical


def _comparators(key: Key) -> tuple[str, ...]:
    if key.kind == "metric":
        return _NUMERIC
    if key.kind in ("param", "tag"):
        return (*_STRING, *_NULL_TESTS)
    return _ATTRIBUTE_COMPARATORS[key.name]


def _comparator(scanner: _Scanner, key: Key) -> str:
    match = scanner.take(_COMPARATOR)
    if match is None:
        raise scanner.error(
            f"a comparator after {key} (one of {', '.join(_comparators(key))})", _QUOTE_HINT
        )
    comparator = " ".join(match[0].upper().split())
    allowed = _comparators(key)
    if comparator not in allowed:
        raise SearchError(f"{comparator} cannot compare {key}: use one of {', '.join(allowed)}.")
    return comparator


def _value(scanner: _Scanner, key: Key, comparator: str) -> float | str | tuple[str, ...] | None:
    if comparator in _NULL_TESTS:
        return None
    if comparator in _LISTS:
        return _string_list(scanner)
    if _is_numeric(key):
        return _number(scanner, key)
    text = _string(scanner, key)
    if comparator in ("LIKE", "ILIKE"):
        list(like_parts(text))  # refuses a dangling escape now, not when the query runs
    return text


def _is_numeric(key: Key) -> bool:
    if key.kind == "attribute":
        return key.name in ("start_time", "end_time")
    return key.kind == "metric"


def _number(scanner: _Scanner, key: Key) -> float:
    match = scanner.take(_NUMBER)
    if match is None:
        raise scanner.error(f"a number ({key} compares numbers, written without quotes)")
    return float(match[0])


def _string(scanner: _Scanner, key: Key | None = None) -> str:
    match = scanner.take(_QUOTED)
    if match is None:
        subject = f"{key} compares" if key else "lists hold"
        raise scanner.error(f"a string in single or double quotes ({subject} strings)")
    return match[1] if match[1] is not None else match[2]


def _string_list(scanner: _Scanner) -> tuple[str, ...]:
    if scanner.take(_OPEN) is None:
        raise scanner.error("a list of quoted strings in parentheses, such as ('a', 'b')")
    items = [_string(scanner)]
    while scanner.take(_COMMA) is not None:
        items.append(_string(scanner))
    if scanner.take(_CLOSE) is None:
        raise scanner.error("',' or ')' in the list")
    return tuple(items)


LikePart = tuple[Literal["any", "one", "literal"], str]


def like_parts(pattern: str) -> Iterator[LikePart]:
    """A LIKE pattern's pieces: ``%`` (any run), ``_`` (one character), and literal characters,
    ``\\`` making the next one literal as PostgreSQL's LIKE does."""
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise SearchError(
                    f"The LIKE pattern {pattern!r} ends with a lone backslash, which escapes "
                    "the character after it: write \\\\ for a backslash itself."
                )
            yield ("literal", escaped)
        elif char == "%":
            yield ("any", char)
        elif char == "_":
            yield ("one", char)
        else:
            yield ("literal", char)


def like_regex(pattern: str, *, case_sensitive: bool) -> re.Pattern[str]:
    """The pattern as a regular expression for ``fullmatch``."""
    pieces = {"any": ".*", "one": "."}
    regex = "".join(pieces.get(kind) or re.escape(char) for kind, char in like_parts(pattern))
    return re.compile(regex, re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def like_glob(pattern: str) -> str:
    """The pattern as SQLite's GLOB, whose own wildcards (``* ? [``) are bracketed so they
    match only themselves."""
    pieces = {"any": "*", "one": "?"}
    return "".join(
        pieces.get(kind) or (f"[{char}]" if char in "*?[" else char)
        for kind, char in like_parts(pattern)
    )


# --- translation ------------------------------------------------------------------------------

_RUN_NAME = "mlflow_run_name"
_START_TIME = "mlflow_start_time"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_RUN_ID = 2**63  # a bigger "id" in an IN list would overflow PostgreSQL's bigint


class Like(Expression):
    """``expression LIKE pattern``, with the same case rules on PostgreSQL and SQLite.

    SQLite's LIKE ignores ASCII case, so the case-sensitive form is GLOB there; its
    case-insensitive form, like PostgreSQL's LIKE, folds ASCII letters only.
    """

    def __init__(self, expression: Any, pattern: str, *, case_sensitive: bool) -> None:
        super().__init__(output_field=BooleanField())
        self.expression = expression
        self.pattern = pattern
        self.case_sensitive = case_sensitive

    def get_source_expressions(self) -> list[Any]:
        return [self.expression]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.expression,) = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        sql, params = compiler.compile(self.expression)
        operator = "LIKE" if self.case_sensitive else "ILIKE"
        return f"{sql} {operator} %s", (*params, self.pattern)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> Any:
        sql, params = compiler.compile(self.expression)
        if self.case_sensitive:
            return f"{sql} GLOB %s", (*params, like_glob(self.pattern))
        return f"{sql} LIKE %s ESCAPE '\\'", (*params, self.pattern)


def runs_matching(
    jobs: QuerySet[Job], filter_string: str, order_by: Sequence[str], view: str = "ACTIVE_ONLY"
) -> QuerySet[Job]:
    """The jobs of ``jobs`` that MLflow's search would return, in its order, as one query.

    ``view`` is MLflow's run_view_type: ACTIVE_ONLY leaves out runs deleted through the MLflow
    API, DELETED_ONLY keeps only those, ALL keeps both.
    """
    in_view = _in_view(jobs, view)
    clauses = parse_filter(filter_string)
    orderings = parse_order_by(order_by)
    runs = in_view.alias(
        **{_RUN_NAME: _run_name(), _START_TIME: Coalesce("started_at", "created_at")}
    )
    return _ordered(runs.filter(*[_clause_q(clause) for clause in clauses]), orderings)


def _in_view(jobs: QuerySet[Job], view: str) -> QuerySet[Job]:
    views = {
        "ACTIVE_ONLY": Q(run_deletion__isnull=True),
        "DELETED_ONLY": Q(run_deletion__isnull=False),
        "ALL": Q(),
    }
    if view.upper() not in views:
        raise SearchError(f"Unknown run_view_type {view!r}: use {', '.join(views)}.")
    return jobs.filter(views[view.upper()])


def _run_name() -> Coalesce:
    named = Tag.objects.filter(job=OuterRef("pk"), key=RUN_NAME_TAG).values("value")[:1]
    return Coalesce(Subquery(named), Cast("number", TextField()))


def _clause_q(clause: Clause) -> Q:
    kind, name = clause.key.kind, clause.key.name
    if kind == "metric":
        return _entry_exists(MetricSeries, name, _number_q("latest_value", clause))
    if kind in ("param", "tag"):
        model = Param if kind == "param" else Tag
        if clause.comparator in _NULL_TESTS:
            exists = _entry_exists(model, name)
            return ~exists if clause.comparator == "IS NULL" else exists
        return _entry_exists(model, name, _string_q("value", clause))
    return _attribute_q(clause)


def _entry_exists(
    model: type[MetricSeries] | type[Param] | type[Tag], key: str, condition: Q | None = None
) -> Q:
    """The run has an entry ``key`` (meeting ``condition``): a run without it matches no
    comparison, as in MLflow."""
    entries = model.objects.filter(job=OuterRef("pk"), key=key).filter(condition or Q())
    return Q(Exists(entries))


def _attribute_q(clause: Clause) -> Q:
    name = clause.key.name
    if name == "run_id":
        return _run_id_q(clause)
    if name == "status":
        return Q(status__in=sorted(_job_statuses(clause)))
    if name == "start_time":
        return _time_q(_START_TIME, clause.comparator, clause.number())
    if name == "end_time":
        return _time_q("finished_at", clause.comparator, clause.number())
    field = _RUN_NAME if name == "run_name" else "created_by__username"
    return _string_q(field, clause)


def _present_and_not(field: str, value: object) -> Q:
    # `!=` in SQL is false where the value is missing; Django's exclude() would keep those.
    return Q(**{f"{field}__isnull": False}) & ~Q(**{field: value})


def _string_q(field: str, clause: Clause) -> Q:
    comparator, value = clause.comparator, clause.text()
    if comparator == "=":
        return Q(**{field: value})
    if comparator == "!=":
        return _present_and_not(field, value)
    return Q(Like(F(field), value, case_sensitive=comparator == "LIKE"))


_NUMBER_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def _number_q(field: str, clause: Clause) -> Q:
    """A metric comparison, which a NaN value satisfies only with `!=`, as in MLflow. NaN sorts
    above +Infinity in PostgreSQL (and SQLite stores none), so `<= +Infinity` leaves it out."""
    comparator, value = clause.comparator, clause.number()
    if comparator == "!=":
        return _present_and_not(field, value)
    lookup = _NUMBER_LOOKUPS[comparator]
    return Q(**{f"{field}__{lookup}": value}) & Q(**{f"{field}__lte": math.inf})


def _time_q(field: str, comparator: str, ms: float) -> Q:
    """MLflow's times are whole milliseconds, Ferry's are microseconds: compare the time cut
    down to its millisecond, as a range of datetimes (so that an index can serve it)."""
    if not math.isfinite(ms):
        raise _out_of_range(ms)
    if comparator == "!=":
        return Q(**{f"{field}__isnull": False}) & ~_time_q(field, "=", ms)
    if comparator == "=":
        if ms != math.floor(ms):
            return Q(pk__in=[])
        return _time_q(field, ">=", ms) & _time_q(field, "<", ms + 1)
    # floor(t) > ms and floor(t) <= ms turn on the next whole millisecond; >= and < on ceil(ms).
    above = comparator in (">", "<=")
    bound = _instant(math.floor(ms) + 1 if above else math.ceil(ms))
    lookup = "gte" if comparator in (">", ">=") else "lt"
    return Q(**{f"{field}__{lookup}": bound})


def _instant(ms: int) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise _out_of_range(ms) from None


def _out_of_range(ms: float) -> SearchError:
    return SearchError(f"The time {ms} is out of range: give milliseconds since 1970-01-01 UTC.")


def _run_id_q(clause: Clause) -> Q:
    """run_id is the job id as a string: only its canonical spelling ("12", not "012") names
    a job, as an exact string comparison would."""
    values = clause.texts() if clause.comparator in _LISTS else (clause.text(),)
    ids = [int(v) for v in values if re.fullmatch(r"0|[1-9]\d*", v) and int(v) < _MAX_RUN_ID]
    named = Q(pk__in=ids)
    return named if clause.comparator in ("=", "IN") else ~named


def _job_statuses(clause: Clause) -> set[str]:
    """The Ferry statuses of the MLflow statuses the clause accepts, worked out here over the
    five names, so that the query compares Ferry's own column."""
    return {
        job_status
        for run, job_statuses in RUN_STATUSES.items()
        if _status_matches(run, clause)
        for job_status in job_statuses
    }


def _status_matches(run: str, clause: Clause) -> bool:
    comparator = clause.comparator
    if comparator in _LISTS:
        return (run in clause.texts()) == (comparator == "IN")
    if comparator in ("=", "!="):
        return (run == clause.text()) == (comparator == "=")
    regex = like_regex(clause.text(), case_sensitive=comparator == "LIKE")
    return regex.fullmatch(run) is not None


# --- ordering ---------------------------------------------------------------------------------


def _ordered(runs: QuerySet[Job], orderings: Sequence[Ordering]) -> QuerySet[Job]:
    """MLflow's order: the orderings given, runs without a key last whichever the direction;
    then start_time, newest first (unless ordered by already); then the job id."""
    aliases: dict[str, Any] = {}
    terms: list[OrderBy] = []
    for index, ordering in enumerate(orderings):
        name = f"mlflow_order_{index}"
        aliases[name] = _sort_value(ordering.key)
        if ordering.key.kind == "metric":
            aliases[f"{name}_rank"] = _metric_rank(name)
            terms.append(F(f"{name}_rank").asc())
        value = F(name)
        terms.append(
            value.asc(nulls_last=True) if ordering.ascending else value.desc(nulls_last=True)
        )
    if Key("attribute", "start_time") not in [ordering.key for ordering in orderings]:
        terms.append(F(_START_TIME).desc())
    return runs.alias(**aliases).order_by(*terms, F("pk").asc())


def _metric_rank(value: str) -> Case:
    """Numbers first, then NaN, then runs without the metric, in either direction, as MLflow
    sorts them. (NaN is the only value above +Infinity in PostgreSQL.)"""
    return Case(
        When(**{f"{value}__isnull": True}, then=Value(2)),
        When(**{f"{value}__gt": math.inf}, then=Value(1)),
        default=Value(0),
    )


def _sort_value(key: Key) -> Any:
    if key.kind == "metric":
        return _entry_value(MetricSeries, key.name, "latest_value")
    if key.kind in ("param", "tag"):
        return _entry_value(Param if key.kind == "param" else Tag, key.name, "value")
    if key.name == "status":
        return _run_status_expression()
    columns = {
        "run_id": "pk",
        "run_name": _RUN_NAME,
        "start_time": _START_TIME,
        "end_time": "finished_at",
        "user_id": "created_by__username",
    }
    return F(columns[key.name])


def _entry_value(
    model: type[MetricSeries] | type[Param] | type[Tag], key: str, column: str
) -> Subquery:
    return Subquery(model.objects.filter(job=OuterRef("pk"), key=key).values(column)[:1])


def _run_status_expression() -> Case:
    return Case(
        *[
            When(status__in=sorted(statuses), then=Value(run))
            for run, statuses in RUN_STATUSES.items()
        ],
        output_field=CharField(),
    )
