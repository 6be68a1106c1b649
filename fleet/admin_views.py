"""The fleet as site admins run it: hosts and what they hold, draining, the queue, quotas.

Everyone else is refused (``accounts.policy.authorize_site_admin``, in each selector and
service): these show and change what every user's jobs get.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import current_user
from core.api.pagination import paginated
from core.api.serializers import validated
from fleet import selectors, services
from fleet.serializers import HostAdminOutput, QueueEntryOutput, QuotaInput, QuotaOutput
from fleet.services import QuotaKind


class AdminHostListView(APIView):
    @extend_schema(responses=HostAdminOutput(many=True))
    def get(self, request: Request) -> Response:
        """Every host: inventory, state, what each job's replica holds there and what is free."""
        hosts = selectors.hosts_with_allocations(current_user(request))
        return paginated(request, self, hosts, HostAdminOutput)


class AdminHostDrainView(APIView):
    @extend_schema(request=None, responses=HostAdminOutput)
    def post(self, request: Request, name: str) -> Response:
        """Place nothing new on an online host; what runs there finishes."""
        services.host_drain(actor=current_user(request), name=name)
        return Response(_host(request, name))


class AdminHostUndrainView(APIView):
    @extend_schema(request=None, responses=HostAdminOutput)
    def post(self, request: Request, name: str) -> Response:
        """Let a draining host take new work again."""
        services.host_undrain(actor=current_user(request), name=name)
        return Response(_host(request, name))


def _host(request: Request, name: str) -> Any:
    host = selectors.hosts_with_allocations(current_user(request)).get(name=name)
    return HostAdminOutput(host).data


class AdminQueueView(APIView):
    @extend_schema(responses=QueueEntryOutput(many=True))
    def get(self, request: Request) -> Response:
        """Queued jobs in the scheduler's last order, then those outside it (position null):
        jobs no host could run, and jobs no pass has seen yet."""
        return paginated(
            request, self, selectors.queue_listing(current_user(request)), QueueEntryOutput
        )


class AdminQuotaListView(APIView):
    @extend_schema(responses=QuotaOutput(many=True))
    def get(self, request: Request) -> Response:
        """Every quota set: users' by name, then teams'."""
        return paginated(request, self, selectors.quotas(current_user(request)), QuotaOutput)


class AdminQuotaView(APIView):
    kind: QuotaKind = "user"

    @extend_schema(responses=QuotaOutput)
    def get(self, request: Request, name: str) -> Response:
        """The quota in force: with no limits (and share 1) if none is set."""
        quota = selectors.quota_get(current_user(request), self.kind, name)
        return Response(QuotaOutput(quota).data)

    @extend_schema(request=QuotaInput, responses=QuotaOutput)
    def put(self, request: Request, name: str) -> Response:
        """Set the whole quota; a limit left out or null is no limit."""
        data = validated(QuotaInput, request.data)
        quota = services.quota_set(actor=current_user(request), kind=self.kind, name=name, **data)
        return Response(QuotaOutput(quota).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        """Remove the quota: no limits, and a user's share back to 1."""
        services.quota_delete(actor=current_user(request), kind=self.kind, name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AdminUserQuotaView(AdminQuotaView):
    kind = "user"


class AdminTeamQuotaView(AdminQuotaView):
    kind = "team"
