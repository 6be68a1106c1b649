"""Who may do what with a dataset: the owner, or the owning team's members by role.

The same shape as ``projects.policy``: whoever may not see a private dataset gets 404.
"""

from enum import StrEnum

from accounts.policy import AnyUser, owner_role, require_role
from accounts.roles import Role
from datasets.models import Dataset


class DatasetAction(StrEnum):
    VIEW = "view"
    WRITE = "write"  # commit new versions
    MANAGE = "manage"  # settings, deleting versions
    DELETE = "delete"  # the dataset itself


_NEEDS = {
    DatasetAction.VIEW: Role.VIEWER,
    DatasetAction.WRITE: Role.MEMBER,
    DatasetAction.MANAGE: Role.ADMIN,
    DatasetAction.DELETE: Role.OWNER,
}


def dataset_role(user: AnyUser, dataset: Dataset) -> Role | None:
    return owner_role(
        user, owner_user_id=dataset.owner_user_id, owner_team_id=dataset.owner_team_id
    )


def authorize_dataset(user: AnyUser, dataset: Dataset, action: DatasetAction) -> None:
    if action == DatasetAction.VIEW and dataset.is_public:
        return
    role = dataset_role(user, dataset)
    require_role(
        user,
        role=role,
        needed=_NEEDS[action],
        visible=dataset.is_public or role is not None,
        what=f"dataset {dataset.full_name}",
    )
