import json

from django.core.management.base import BaseCommand, CommandError

from events.models import ApiKey
from events.services import api_key_create
from revvvs.models import Operator

from ._arguments import text_argument


class Command(BaseCommand):
    help = "Create another API key for an operator (for rotation); the key is shown once."

    def add_arguments(self, parser):
        parser.add_argument("--operator", required=True, type=int, help="The operator id.")
        parser.add_argument("--name", default="", help="A label for the key.")
        parser.add_argument("--json", action="store_true", help='Print {"api_key": ...}.')

    def handle(self, *args, **options):
        operator = Operator.objects.filter(pk=options["operator"]).first()
        if operator is None:
            raise CommandError(f"no operator with id {options['operator']}")
        name = text_argument(options["name"], model=ApiKey, field="name", flag="--name")
        _, key = api_key_create(operator=operator, name=name)
        if options["json"]:
            self.stdout.write(json.dumps({"api_key": key}))
            return
        self.stdout.write(f"API key for {operator.name} (shown once, store it now): {key}")
