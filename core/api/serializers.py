"""Serializer bases shared by every app's API."""

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class InputSerializer(serializers.Serializer):
    """Validates a request body and refuses fields it does not know.

    A misspelt field silently ignored is a setting the client believes it made; naming it in a
    400 tells them at once.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in known)
            if unknown:
                allowed = ", ".join(sorted(known)) or "none"
                raise serializers.ValidationError(
                    {name: [f"Unknown field. Allowed fields: {allowed}."] for name in unknown}
                )
            not_text = _non_text_values(self, data)
            if not_text:
                raise serializers.ValidationError(not_text)
        return super().to_internal_value(data)

    # Input serializers only validate; services do the writing.
    def create(self, validated_data: Any) -> Any:
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:
        raise NotImplementedError


def _non_text_values(serializer: serializers.Serializer, data: Mapping[Any, Any]) -> dict[str, Any]:
    # DRF's CharField quietly turns 123 into "123". A number sent where text belongs is a client's
    # mistake (a name read from the wrong variable), and guessing would store it; refuse it instead.
    return {
        name: [field.error_messages["invalid"]]
        for name, field in serializer.fields.items()
        if isinstance(field, serializers.CharField)
        and data.get(name) is not None
        and not isinstance(data[name], str)
    }


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> Any:
    """Validate ``data`` with ``serializer_class`` and return the validated data (or raise 400)."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
