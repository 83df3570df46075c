import json

from django.core.management.base import BaseCommand, CommandError

from revvvs.demo import DemoConflict, seed_demo


class Command(BaseCommand):
    help = "Load idempotent demo data (operator, brands, API key, logins, affiliates, events)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print what was seeded as JSON.")

    def handle(self, *args, **options):
        try:
            result = seed_demo()
        except DemoConflict as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  API key:  {result['api_key']}")
        for brand in result["brands"]:
            self.stdout.write(f"  brand:    {brand['name']}  brand_id={brand['brand_id']}")
        manager, admin = result["manager"], result["admin"]
        self.stdout.write(
            f"  manager:  {manager['username']} / {manager['password']}  (http://127.0.0.1:8000/admin/)"
        )
        self.stdout.write(f"  superuser: {admin['username']} / {admin['password']}")
        for affiliate in result.get("affiliates", []):
            self.stdout.write(
                f"  affiliate: {affiliate['email']} / {affiliate['password']}"
                f"  ({affiliate['status']})"
            )
