from typing import Any

from rest_framework import pagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PageNumberPagination(pagination.PageNumberPagination):
    """Every list answers ``{count, next, previous, results}``; ``?page_size=`` up to 200."""

    page_size_query_param = "page_size"
    max_page_size = 200


class LargePagePagination(PageNumberPagination):
    """For lists a client reads to the end (a version's file manifest): pages of up to 1000.

    Fewer, larger pages mean fewer round trips for the 100,000 rows of a large version; the
    rows are small and fixed in shape, so a page stays well under a megabyte.
    """

    max_page_size = 1000
    page_size_query_description = "Rows per page, up to 1000."


def paginated(
    request: Request,
    view: APIView,
    queryset: Any,
    serializer: type,
    context: dict[str, Any] | None = None,
    paginator_class: type[PageNumberPagination] = PageNumberPagination,
) -> Response:
    """One page of ``queryset`` rendered with ``serializer``, in the paginated envelope."""
    paginator = paginator_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    data = serializer(page, many=True, context={"request": request, **(context or {})}).data
    return paginator.get_paginated_response(data)
