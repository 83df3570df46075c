import json

from django.core.management.base import BaseCommand, CommandError

from revvvs.models import Brand, Operator
from revvvs.services import operator_create

from ._arguments import text_argument


class Command(BaseCommand):
    help = "Create an operator with its brands and a first API key (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The operator's name.")
        parser.add_argument(
            "--brand",
            action="append",
            required=True,
            dest="brands",
            help="A brand name (repeatable).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help='Print {"operator_id", "api_key", "brands": [{"brand_id", "name"}]}.',
        )

    def handle(self, *args, **options):
        name = text_argument(options["name"], model=Operator, field="name", flag="--name")
        brands = [
            text_argument(b, model=Brand, field="name", flag="--brand") for b in options["brands"]
        ]
        if not name or not all(brands):
            raise CommandError("the operator and brand names must not be empty")
        if Operator.objects.filter(name=name).exists():
            raise CommandError(f"an operator named {name!r} exists already")
        if len(set(brands)) != len(brands):
            raise CommandError("brand names must differ")
        created = operator_create(name=name, brand_names=brands)
        result = {
            "operator_id": created.operator.pk,
            "api_key": created.api_key,
            "brands": [{"brand_id": str(b.id), "name": b.name} for b in created.brands],
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(f"Operator {created.operator.name} (id {created.operator.pk})")
        for brand in result["brands"]:
            self.stdout.write(f"  brand {brand['name']}: {brand['brand_id']}")
        self.stdout.write(f"API key (shown once, store it now): {created.api_key}")
