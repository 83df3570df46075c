"""import_fx_rates and the admin's FX import at their edges: every bad file is refused with
its line (a CommandError, a form error), never a traceback or a 500, never a half import."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from commissions.models import FxRate
from tests.factories import UserFactory


def _run(tmp_path, content, name="rates.csv"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, newline="")
    call_command("import_fx_rates", str(path), stdout=StringIO())


def test_non_utf8_file_is_a_command_error(db, tmp_path):
    # eurofxref-hist.zip not unzipped, or a Latin-1 file: UnicodeDecodeError is not an OSError.
    with pytest.raises(CommandError):
        _run(tmp_path, b"Date,USD\n2026-01-01,1.1\n\xff\xfe\x00garbage\n")
    assert FxRate.objects.count() == 0


def test_a_zip_file_is_a_command_error(db, tmp_path):
    with pytest.raises(CommandError):
        _run(tmp_path, b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x9c\x8a" + bytes(range(256)))


def test_huge_rate_is_a_command_error_not_invalid_operation(db, tmp_path):
    # Decimal('1e20').quantize(1E-10) overflows the 28-digit context: decimal.InvalidOperation.
    with pytest.raises(CommandError, match="line 2"):
        _run(tmp_path, "Date,USD\n2026-01-01,1e20\n")
    assert FxRate.objects.count() == 0


def test_rate_over_the_column_precision_is_a_command_error(db, tmp_path):
    # FxRate.rate is max_digits=20, decimal_places=10: 11 integer digits overflow the column
    # (PostgreSQL "numeric field overflow" DataError, a traceback).
    with pytest.raises(CommandError, match="line 2"):
        _run(tmp_path, "Date,USD\n2026-01-01,12345678901\n")
    assert FxRate.objects.count() == 0


def test_a_positive_rate_that_quantizes_to_zero_is_refused(db, tmp_path):
    # 0.00000000001 > 0 passes the check, then quantizes to 0E-10: the DB check constraint
    # fx_rate_positive raises IntegrityError (a traceback); a zero rate would also divide by 0.
    with pytest.raises(CommandError, match="line 2"):
        _run(tmp_path, "Date,USD\n2026-01-01,0.00000000001\n")
    assert FxRate.objects.count() == 0


def test_a_cell_over_the_csv_field_limit_is_a_command_error(db, tmp_path):
    # _csv.Error: field larger than field limit (131072)
    with pytest.raises(CommandError):
        _run(tmp_path, "Date,USD\n2026-01-01," + "1" * 200_000 + "\n")
    assert FxRate.objects.count() == 0


def test_duplicate_date_with_conflicting_rates_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="line 3"):
        _run(tmp_path, "Date,USD\n2026-01-01,1.1\n2026-01-01,1.2\n")
    assert FxRate.objects.count() == 0


def test_duplicate_currency_column_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="line 1"):
        _run(tmp_path, "Date,USD,USD\n2026-01-01,1.1,1.2\n")
    assert FxRate.objects.count() == 0


def test_error_line_number_counts_blank_lines(db, tmp_path):
    with pytest.raises(CommandError, match="line 4"):
        _run(tmp_path, "Date,USD\n\n\n2026-01-01,abc\n")


def test_a_row_with_missing_cells_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="line 2"):
        _run(tmp_path, "Date,USD,JPY,GBP\n2026-01-01,1.1\n")
    assert FxRate.objects.count() == 0


def test_identical_duplicate_rows_import_once(db, tmp_path):
    _run(tmp_path, "Date,USD\n2026-01-01,1.1\n2026-01-01,1.10\n")
    assert list(FxRate.objects.values_list("currency", "rate")) == [("USD", Decimal("1.1"))]


def test_the_ecb_trailing_empty_column_is_not_a_truncated_row(db, tmp_path):
    _run(tmp_path, "Date, USD, JPY, \n25 November 2026, 1.0500, N/A, \n")
    assert list(FxRate.objects.values_list("currency", "rate")) == [("USD", Decimal("1.05"))]


def test_cr_only_line_ends_import_like_any_other(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/commissions/fxrate/import/",
        {"file": SimpleUploadedFile("eurofxref.csv", b"Date,USD\r2026-01-01,1.1\r")},
    )
    assert response.status_code == 302
    assert list(FxRate.objects.values_list("currency", "rate")) == [("USD", Decimal("1.1"))]


@pytest.mark.parametrize(
    "content",
    [
        b"Date,USD\n2026-01-01," + b"1" * 200_000 + b"\n",  # _csv.Error: field limit
        b"Date,USD\n2026-01-01,1e20\n",  # decimal.InvalidOperation on quantize
        b"Date,USD\n2026-01-01,12345678901\n",  # DataError: numeric field overflow
        b"Date,USD\n2026-01-01,0.00000000001\n",  # IntegrityError: fx_rate_positive
    ],
    ids=["huge-cell", "1e20", "11-digits", "rounds-to-zero"],
)
@pytest.mark.django_db
def test_the_admin_import_answers_a_bad_file_with_a_form_error(client, content):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/commissions/fxrate/import/",
        {"file": SimpleUploadedFile("eurofxref.csv", content, content_type="text/csv")},
    )
    assert response.status_code == 200  # the form again, with the error
    assert FxRate.objects.count() == 0
