from django.core.management.base import BaseCommand, CommandError

from commissions.services.booking import pending_fx_reprocess
from revvvs.models import Operator


class Command(BaseCommand):
    help = (
        "Apply the commission effect of pending-FX events whose rate now exists "
        "(exactly once; events still without a rate stay pending)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operator", type=int, help="Only this operator's events (id).")

    def handle(self, *args, operator=None, **options):
        scope = None
        if operator is not None:
            scope = Operator.objects.filter(pk=operator).first()
            if scope is None:
                raise CommandError(f"no operator with id {operator}")
        result = pending_fx_reprocess(operator=scope)
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.applied} pending-FX events applied, {result.still_pending} still "
                "waiting for a rate."
            )
        )
