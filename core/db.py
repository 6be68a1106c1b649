"""SQL functions Django lacks, for the two databases Ferry runs on (PostgreSQL and SQLite)."""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Aggregate, Func, IntegerField, TextField
from django.db.models.sql.compiler import SQLCompiler

SqlParams = tuple[str, Any]  # the SQL, and its parameters as Django's compiler gives them


class JsonArrayLength(Func):
    """How many items a JSON array column holds."""

    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        return self.as_sql(compiler, connection, function="json_array_length", **extra)


class JsonArrays(Aggregate):
    """A group's JSON values as one JSON array, as text: ``[[0, 1], [3]]``."""

    function = "jsonb_agg"
    template = "%(function)s(%(expressions)s)::text"
    output_field = TextField()

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        # json(): the column's text is taken as JSON, not quoted as a string.
        template = "json_group_array(json(%(expressions)s))"
        return self.as_sql(compiler, connection, template=template, **extra)
