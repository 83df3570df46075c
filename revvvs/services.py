from dataclasses import dataclass

from django.db import transaction

from .models import Brand, Operator


@dataclass(frozen=True)
class OperatorCreated:
    operator: Operator
    brands: list[Brand]
    api_key: str


@transaction.atomic
def operator_create(*, name: str, brand_names: list[str]) -> OperatorCreated:
    """Create an operator with its brands and a first API key (returned in clear, once)."""
    from events.services import api_key_create

    operator = Operator.objects.create(name=name)
    brands = [
        Brand.objects.create(operator=operator, name=brand_name) for brand_name in brand_names
    ]
    _, key = api_key_create(operator=operator, name="initial")
    return OperatorCreated(operator=operator, brands=brands, api_key=key)
