from django.core.management.base import BaseCommand, CommandError

from commissions.services.fx import FxImportError, fx_rates_import


class Command(BaseCommand):
    help = (
        "Import ECB reference rates (1 EUR = rate) from eurofxref.csv or eurofxref-hist.csv. "
        "Idempotent: importing the same file again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the ECB CSV (unzipped).")

    def handle(self, *args, file, **options):
        try:
            with open(file, encoding="utf-8-sig") as handle:
                text = handle.read()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        except ValueError as exc:
            if not isinstance(exc, UnicodeDecodeError):  # open(): "embedded null byte"
                raise CommandError(f"cannot read {file!r}: {exc}") from None
            raise CommandError(
                f"{file} is not a UTF-8 CSV file (unzip eurofxref-hist.zip or eurofxref.zip "
                "first and give the .csv)"
            ) from None
        try:
            result = fx_rates_import(text=text)
        except FxImportError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.created} rates created, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.skipped} N/A cells skipped."
            )
        )
