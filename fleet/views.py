from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import paginated
from fleet.models import Host
from fleet.serializers import HostOutput


class HostListView(APIView):
    """The machines that run jobs: what each has, how it runs jobs, whether it is online."""

    @extend_schema(responses=HostOutput(many=True))
    def get(self, request: Request) -> Response:
        return paginated(request, self, Host.objects.order_by("name"), HostOutput)
