import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from commissions.period_selectors import statement_as_dict
from commissions.services.periods import PeriodError, month_parse, period_close
from revvvs.models import Operator


def _month(value: str) -> date:
    try:
        return month_parse(value)
    except ValueError as exc:
        raise CommandError(f"{exc} (close_period YYYY-MM)") from None


class Command(BaseCommand):
    help = (
        "Close a month (YYYY-MM, UTC) into statements: tier adjustments, sub-affiliate "
        "earnings, one statement per affiliate with activity or carryover. Running it again "
        "changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("month", help="The month to close, YYYY-MM.")
        parser.add_argument(
            "--operator", type=int, help="The operator id (required with several operators)."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print every statement's totals as JSON."
        )

    def handle(self, *args, month: str, operator: int | None, json: bool = False, **options):
        first_day = _month(month)
        operator_obj = self._operator(operator)
        progress = self._progress if self.stdout.isatty() else None
        try:
            result = period_close(operator=operator_obj, month=first_day, progress=progress)
        except PeriodError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if progress:
                self.stderr.write("")
        if json:
            self.stdout.write(
                _json.dumps(
                    {
                        "period": f"{first_day:%Y-%m}",
                        "operator_id": operator_obj.pk,
                        "already_closed": not result.created,
                        "statements": [
                            statement_as_dict(statement)
                            for statement in result.statements.order_by("affiliate_id").iterator()
                        ],
                    },
                    indent=2,
                )
            )
            return
        count = result.statements.count()
        if result.created:
            self.stdout.write(
                f"Closed {first_day:%Y-%m} for {operator_obj}: {count} statements, "
                f"{result.tier_adjustments} tier adjustments, "
                f"{result.sub_affiliate_entries} sub-affiliate entries."
            )
        else:
            self.stdout.write(
                f"{first_day:%Y-%m} was already closed for {operator_obj} on "
                f"{result.period.closed_at:%Y-%m-%d %H:%M} UTC ({count} statements); "
                "nothing changed."
            )

    def _operator(self, operator_id: int | None) -> Operator:
        if operator_id is not None:
            try:
                return Operator.objects.get(pk=operator_id)
            except Operator.DoesNotExist:
                raise CommandError(f"no operator with id {operator_id}") from None
        operators = list(Operator.objects.order_by("pk")[:11])
        if len(operators) == 1:
            return operators[0]
        if not operators:
            raise CommandError("there is no operator yet")
        listed = ", ".join(f"{o.pk} ({o.name})" for o in operators[:10])
        raise CommandError(f"several operators: pass --operator ID, one of {listed}")

    def _progress(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        self.stderr.write(f"\rclosing: {percent:3d} % ({done}/{total} affiliate steps)", ending="")
        self.stderr.flush()


_json = json
