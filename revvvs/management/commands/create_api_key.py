import json

from django.core.management.base import BaseCommand, CommandError

from events.services import api_key_create
from revvvs.models import Operator


class Command(BaseCommand):
    help = "Create another API key for an operator (for rotation); the key is shown once."

    def add_arguments(self, parser):
        parser.add_argument("--operator", required=True, type=int, help="The operator id.")
        parser.add_argument("--name", default="", help="A label for the key.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, operator: int, name: str, json: bool = False, **options):
        try:
            operator_obj = Operator.objects.get(pk=operator)
        except Operator.DoesNotExist:
            raise CommandError(f"no operator with id {operator}") from None
        api_key, key = api_key_create(operator=operator_obj, name=name)
        if json:
            self.stdout.write(_json.dumps({"api_key": key}))
        else:
            self.stdout.write(f"API key (shown once, store it now): {key}")


_json = json
