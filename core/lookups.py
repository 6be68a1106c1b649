"""``field__any_of=[ids]``: a list of ids as one parameter.

``__in`` writes a placeholder per value, each prepared by Django and parsed again by the driver:
for the thousand runs of a search page, three such queries cost more than the database's work.
On PostgreSQL ``= ANY(%s)`` sends the list as one array; elsewhere it is an IN list as before.
"""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import ForeignKey, Lookup
from django.db.models.sql.compiler import SQLCompiler


class AnyOf(Lookup[Any]):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[int]:
        return [int(value) for value in self.rhs]

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        values: list[int] = self.rhs
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*params, values]
        if not values:
            return "1 = 0", list(params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*params, *values]


def register() -> None:
    ForeignKey.register_lookup(AnyOf)
