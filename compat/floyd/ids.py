"""floyd-cli's ids, which it only stores and sends back, as Ferry's rows.

Projects, datasets (the CLI's ``family_id``) and jobs (experiments, and their one task
instance) go by their plain ids. A module or resource id names its kind first:

  code-<tree id>     code uploaded for a run, before the run exists
  jobcode-<job id>   a job's code (``floyd clone``)
  log-<job id>       a job's log
  output-<job id>    a job's output, which --data and ``data add`` can take
  data-<version id>  a dataset version
  upload-<id>        a dataset version on its way in (``floyd data upload``)
"""

import re
from typing import NamedTuple

from core.errors import NotFound

# Served by compat.floyd.jobs; the others by compat.floyd.data.
JOB_KINDS = ("code", "jobcode", "log")
DATA_KINDS = ("output", "data", "upload")
KINDS = JOB_KINDS + DATA_KINDS
_ID = re.compile(rf"^({'|'.join(KINDS)})-([0-9]{{1,18}})$")


class ModuleId(NamedTuple):
    kind: str
    number: int

    def __str__(self) -> str:
        return f"{self.kind}-{self.number}"


def module_id(kind: str, number: int) -> str:
    return str(ModuleId(kind, number))


def parse_module_id(value: str, *kinds: str) -> ModuleId:
    """The id ``value`` names, which must be of one of ``kinds``; NotFound otherwise."""
    found = _ID.match(value)
    if found is None or found.group(1) not in kinds:
        raise NotFound(f"Nothing here is called {value!r}.")
    return ModuleId(found.group(1), int(found.group(2)))


def plain_id(value: str, what: str) -> int:
    """A project's, dataset's or job's id."""
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise NotFound(f"No {what} has the id {value!r}.")
    return int(value)
