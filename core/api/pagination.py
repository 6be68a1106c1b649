from typing import Any

from rest_framework import pagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PageNumberPagination(pagination.PageNumberPagination):
    """Every list answers ``{count, next, previous, results}``; ``?page_size=`` up to 200."""

    page_size_query_param = "page_size"
    max_page_size = 200


def paginated(
    request: Request,
    view: APIView,
    queryset: Any,
    serializer: type,
    context: dict[str, Any] | None = None,
) -> Response:
    """One page of ``queryset`` rendered with ``serializer``, in the paginated envelope."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    data = serializer(page, many=True, context={"request": request, **(context or {})}).data
    return paginator.get_paginated_response(data)
