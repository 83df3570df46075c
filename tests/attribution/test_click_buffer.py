"""Storing clicks in batches (attribution/clicks.py): clicks_insert, ClickBuffer, click_store.

The test settings turn the buffer off (CLICK_FLUSH_SECONDS = 0, every click is inserted in
its request); these tests build buffers of their own, or switch the process's buffer on for
one test and put it back afterwards.

ClickBuffer.add starts the buffer's background thread on its first click; the buffers built
here flush every hour (interval=3600), so their threads never flush during a test: only
the explicit flush() calls do.
"""

import atexit
import time
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, DataError, InterfaceError, OperationalError, connection
from django.test import override_settings
from django.utils import timezone

from attribution import clicks
from attribution.clicks import ClickBuffer, ClickRow, click_buffer, click_store, clicks_insert
from attribution.models import AffiliateStatus, Click
from attribution.services import affiliate_suspend
from revvvs.hashing import ip_hmac
from tests.factories import AffiliateFactory, BrandFactory, ClickFactory, TrackingLinkFactory

IP_A = ip_hmac("198.51.100.1")
IP_B = ip_hmac("198.51.100.2")
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36"


def click_row(link, *, ip_hash=IP_A, at=None, subs=("", "", "", "", ""), **fields) -> ClickRow:
    values = {
        "user_agent": CHROME,
        "referrer": "https://affiliate.example.net/review",
        "country": "GB",
        "is_bot": False,
    }
    values.update(fields)
    return ClickRow(
        id=uuid.uuid4(),
        link_id=link.pk,
        created_at=at or timezone.now(),
        subs=subs,
        ip_hash=ip_hash,
        **values,
    )


def stored_ids() -> list[uuid.UUID]:
    return list(Click.objects.order_by("created_at").values_list("id", flat=True))


def unique_flags(rows) -> list[bool]:
    flags = dict(Click.objects.filter(id__in=[r.id for r in rows]).values_list("id", "is_unique"))
    return [flags[r.id] for r in rows]


def new_buffer(*, limit=1000) -> ClickBuffer:
    return ClickBuffer(interval=3600, batch=1000, limit=limit)


@pytest.fixture
def other_link(tenant):
    """A link of another affiliate on another brand of the same operator."""
    return TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator),
        brand=BrandFactory(operator=tenant.operator),
    )


# --- clicks_insert ----------------------------------------------------------------------


def test_clicks_insert_stores_every_row_with_the_links_affiliate_and_brand(link, other_link):
    now = timezone.now()
    rows = [
        click_row(link, at=now - timedelta(seconds=2), subs=("google", "uk", "", "", "x")),
        click_row(other_link, at=now - timedelta(seconds=1), ip_hash=IP_B, is_bot=True),
        click_row(link, at=now, ip_hash="", user_agent="", referrer="", country=""),
    ]

    assert clicks_insert(rows=rows) == 3

    stored = {c.id: c for c in Click.objects.all()}
    assert set(stored) == {r.id for r in rows}
    for row in rows:
        click = stored[row.id]
        link_of_row = link if row.link_id == link.pk else other_link
        assert (click.link_id, click.affiliate_id, click.brand_id) == (
            link_of_row.pk,
            link_of_row.affiliate_id,
            link_of_row.brand_id,
        )
        assert click.created_at == row.created_at
        assert (click.sub1, click.sub2, click.sub3, click.sub4, click.sub5) == row.subs
        assert (click.ip_hash, click.user_agent, click.referrer, click.country) == (
            row.ip_hash,
            row.user_agent,
            row.referrer,
            row.country,
        )
        assert click.is_bot is row.is_bot
    assert link.affiliate_id != other_link.affiliate_id
    assert link.brand_id != other_link.brand_id


def test_clicks_insert_of_nothing_stores_nothing(db):
    assert clicks_insert(rows=[]) == 0
    assert Click.objects.count() == 0


def test_unique_flags_inside_one_batch(link, other_link):
    now = timezone.now()
    rows = [
        click_row(link, ip_hash=IP_A, at=now),
        click_row(link, ip_hash=IP_A, at=now + timedelta(seconds=1)),  # same IP, same link
        click_row(other_link, ip_hash=IP_A, at=now + timedelta(seconds=2)),  # another link
        click_row(link, ip_hash=IP_B, at=now + timedelta(seconds=3)),  # another IP
        click_row(link, ip_hash="", at=now + timedelta(seconds=4)),  # no IP: always unique
        click_row(link, ip_hash="", at=now + timedelta(seconds=5)),
        click_row(link, ip_hash=IP_A, at=now + timedelta(seconds=6)),  # third from IP_A
    ]

    assert clicks_insert(rows=rows) == len(rows)

    assert unique_flags(rows) == [True, False, True, True, True, True, False]


@pytest.mark.parametrize(
    ("gap", "unique"),
    [(timedelta(hours=23), False), (timedelta(hours=24, minutes=1), True)],
    ids=["23h", "24h01"],
)
def test_unique_against_the_clicks_already_stored(link, gap, unique):
    now = timezone.now()
    ClickFactory(link=link, ip_hash=IP_A, created_at=now - gap)
    row = click_row(link, ip_hash=IP_A, at=now)

    assert clicks_insert(rows=[row]) == 1

    assert unique_flags([row]) == [unique]


@pytest.mark.parametrize(
    ("gap", "unique"),
    [(timedelta(hours=23), False), (timedelta(hours=24, minutes=1), True)],
    ids=["23h", "24h01"],
)
def test_unique_against_an_earlier_row_of_the_same_batch(link, gap, unique):
    now = timezone.now()
    rows = [click_row(link, ip_hash=IP_A, at=now - gap), click_row(link, ip_hash=IP_A, at=now)]

    assert clicks_insert(rows=rows) == 2

    assert unique_flags(rows) == [True, unique]


def test_an_empty_ip_hash_is_unique_even_after_a_stored_click_without_ip(link):
    ClickFactory(link=link, ip_hash="", created_at=timezone.now() - timedelta(minutes=1))
    row = click_row(link, ip_hash="")

    clicks_insert(rows=[row])

    assert unique_flags([row]) == [True]


@pytest.mark.parametrize(
    "status", [AffiliateStatus.SUSPENDED, AffiliateStatus.PENDING, AffiliateStatus.REJECTED]
)
def test_rows_of_an_affiliate_who_is_not_approved_are_not_stored(link, other_link, status):
    other_link.affiliate.status = status
    other_link.affiliate.save()
    refused = click_row(other_link)

    assert clicks_insert(rows=[refused]) == 0
    assert Click.objects.count() == 0

    kept_before, kept_after = click_row(link), click_row(link, ip_hash=IP_B)
    assert clicks_insert(rows=[kept_before, click_row(other_link), kept_after]) == 2
    assert set(stored_ids()) == {kept_before.id, kept_after.id}


def test_rows_of_a_link_that_no_longer_exists_are_not_stored(link):
    gone = TrackingLinkFactory(affiliate=link.affiliate, brand=link.brand)
    gone_row = click_row(gone)
    gone.delete()
    kept = click_row(link)

    assert clicks_insert(rows=[gone_row, kept]) == 1
    assert stored_ids() == [kept.id]


def test_a_retried_insert_stores_each_click_once(link):
    rows = [click_row(link), click_row(link, ip_hash=IP_B)]
    assert clicks_insert(rows=rows) == 2

    # The flush's answer was lost and it runs again, this time with one more click.
    late = click_row(link, ip_hash="")
    assert clicks_insert(rows=[*rows, late]) == 1

    assert sorted(stored_ids()) == sorted(r.id for r in [*rows, late])
    assert unique_flags(rows) == [True, True]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_clicks_insert_returns_how_many_were_stored(tenant):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    assert not connection.in_atomic_block

    stored = clicks_insert(rows=[click_row(link), click_row(link, ip_hash=IP_B)])

    assert Click.objects.count() == 2
    assert stored == 2


# --- ClickBuffer ------------------------------------------------------------------------


def test_add_does_not_write_and_flush_stores_the_clicks(link, django_assert_num_queries):
    buffer = new_buffer()
    rows = [click_row(link), click_row(link, ip_hash=IP_B), click_row(link, ip_hash="")]

    with django_assert_num_queries(0):
        for row in rows:
            buffer.add(row)
    assert Click.objects.count() == 0
    assert buffer.pending() == 3

    with django_assert_num_queries(1):
        assert buffer.flush() == 3

    assert buffer.pending() == 0
    assert sorted(stored_ids()) == sorted(r.id for r in rows)
    assert buffer.flush() == 0  # nothing left


def test_a_full_buffer_keeps_the_newest_clicks_and_counts_the_dropped(link):
    buffer = new_buffer(limit=3)
    now = timezone.now()
    rows = [click_row(link, ip_hash="", at=now + timedelta(seconds=i)) for i in range(5)]

    for row in rows:
        buffer.add(row)

    assert buffer.pending() == 3
    assert buffer.dropped == 2
    assert buffer.flush() == 3
    assert stored_ids() == [r.id for r in rows[2:]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_flush_that_cannot_reach_the_database_keeps_the_clicks_for_the_next(
    tenant, monkeypatch, error
):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    buffer = new_buffer()
    now = timezone.now()
    # Same IP: only the first in order is unique, so the stored flags show the order.
    rows = [click_row(link, ip_hash=IP_A, at=now + timedelta(seconds=i)) for i in range(3)]
    for row in rows:
        buffer.add(row)

    def unreachable(*, rows):
        raise error("server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr(clicks, "clicks_insert", unreachable)
        with pytest.raises(error):
            buffer.flush()

    assert buffer.pending() == 3
    assert [r.id for r in buffer._rows] == [r.id for r in rows]
    assert Click.objects.count() == 0
    assert buffer.dropped == 0

    # The database is back: the next flush stores them, in their order.
    buffer.flush()
    assert buffer.pending() == 0
    assert stored_ids() == [r.id for r in rows]
    assert unique_flags(rows) == [True, False, False]


@pytest.mark.django_db(transaction=True)
def test_clicks_put_back_after_a_failure_do_not_overflow_the_buffer(tenant, monkeypatch):
    """Clicks that arrived during the failed flush are newer: the oldest failed ones go."""
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    buffer = new_buffer(limit=3)
    now = timezone.now()
    failed = [click_row(link, ip_hash="", at=now + timedelta(seconds=i)) for i in range(2)]
    arrived = [click_row(link, ip_hash="", at=now + timedelta(seconds=5 + i)) for i in range(2)]
    for row in failed:
        buffer.add(row)

    def unreachable(*, rows):
        for row in arrived:  # the redirect keeps adding while the insert hangs
            buffer.add(row)
        raise OperationalError("timeout")

    monkeypatch.setattr(clicks, "clicks_insert", unreachable)
    with pytest.raises(OperationalError):
        buffer.flush()

    assert buffer.pending() == 3
    assert [r.id for r in buffer._rows] == [failed[1].id, *(r.id for r in arrived)]
    assert buffer.dropped == 1


def test_a_batch_the_database_refuses_is_stored_one_by_one(link, monkeypatch, caplog):
    buffer = new_buffer()
    good_first, bad, good_last = click_row(link), click_row(link, ip_hash=IP_B), click_row(link)
    for row in (good_first, bad, good_last):
        buffer.add(row)
    real_insert = clicks.clicks_insert
    calls = []

    def refusing(*, rows):
        calls.append([r.id for r in rows])
        if len(rows) > 1:
            raise DatabaseError("invalid input syntax")
        if rows[0].id == bad.id:
            raise DataError("value too long")
        return real_insert(rows=rows)

    monkeypatch.setattr(clicks, "clicks_insert", refusing)

    assert buffer.flush() == 2

    assert calls == [
        [good_first.id, bad.id, good_last.id],
        [good_first.id],
        [bad.id],
        [good_last.id],
    ]
    assert sorted(stored_ids()) == sorted([good_first.id, good_last.id])
    assert buffer.pending() == 0  # the refused click is not retried forever
    # One by one, the uniqueness still follows the order: the second IP_A click is not.
    assert unique_flags([good_first, good_last]) == [True, False]
    assert "one by one" in caplog.text


def test_the_database_lost_during_the_one_by_one_inserts_keeps_the_rest(link, monkeypatch):
    buffer = new_buffer()
    rows = [click_row(link, ip_hash=""), click_row(link, ip_hash=""), click_row(link, ip_hash="")]
    for row in rows:
        buffer.add(row)
    real_insert = clicks.clicks_insert
    second_id = rows[1].id

    def failing(*, rows):
        if len(rows) > 1:
            raise DatabaseError("refused")
        if rows[0].id == second_id:
            raise OperationalError("server closed the connection unexpectedly")
        return real_insert(rows=rows)

    monkeypatch.setattr(clicks, "clicks_insert", failing)

    with pytest.raises(OperationalError):
        buffer.flush()

    assert stored_ids() == [rows[0].id]
    assert [r.id for r in buffer._rows] == [rows[1].id, rows[2].id]
    monkeypatch.undo()
    assert buffer.flush() == 2
    assert sorted(stored_ids()) == sorted(r.id for r in rows)


@pytest.mark.django_db(transaction=True)
def test_a_click_with_a_nul_character_does_not_hold_back_its_batch(tenant):
    """A row the database refuses (here a NUL, which PostgreSQL text cannot hold and which
    click_record strips from what a visitor sends) makes the batch go in one by one: only
    that click is lost."""
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    buffer = new_buffer()
    good_first, good_last = click_row(link), click_row(link, ip_hash=IP_B)
    buffer.add(good_first)
    buffer.add(click_row(link, ip_hash="", subs=("a\x00b", "", "", "", "")))
    buffer.add(good_last)

    buffer.flush()

    assert sorted(stored_ids()) == sorted([good_first.id, good_last.id])
    assert buffer.pending() == 0


def test_close_flushes_what_is_pending(link):
    buffer = new_buffer()
    rows = [click_row(link), click_row(link, ip_hash=IP_B)]
    for row in rows:
        buffer.add(row)

    buffer.close()

    assert buffer.pending() == 0
    assert sorted(stored_ids()) == sorted(r.id for r in rows)


@pytest.mark.django_db(transaction=True)
def test_close_with_the_database_down_logs_instead_of_raising(tenant, monkeypatch, caplog):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    buffer = new_buffer()
    buffer.add(click_row(link))

    def unreachable(*, rows):
        raise OperationalError("connection refused")

    monkeypatch.setattr(clicks, "clicks_insert", unreachable)

    buffer.close()  # at the process's exit: must not raise

    assert "clicks lost at exit: 1 could not be stored" in caplog.text


# --- the process's buffer: click_buffer, click_store ------------------------------------


@pytest.fixture
def no_process_buffer(monkeypatch):
    """The process's buffer starts unset for the test and is put back afterwards."""
    monkeypatch.setattr(clicks, "_buffer", None)


@override_settings(CLICK_FLUSH_SECONDS=0)
def test_without_a_flush_interval_clicks_are_stored_in_their_request(link, no_process_buffer):
    assert click_buffer() is None
    row = click_row(link)

    click_store(row)

    assert stored_ids() == [row.id]


@override_settings(CLICK_FLUSH_SECONDS=3600, CLICK_FLUSH_ROWS=50, CLICK_BUFFER_LIMIT=70)
def test_with_a_flush_interval_clicks_wait_in_the_process_buffer(
    link, no_process_buffer, monkeypatch
):
    registered = []
    monkeypatch.setattr(atexit, "register", registered.append)

    buffer = click_buffer()

    assert isinstance(buffer, ClickBuffer)
    assert (buffer.interval, buffer.batch, buffer.limit) == (3600, 50, 70)
    assert registered == [buffer.close]  # flushed at the process's exit
    assert click_buffer() is buffer
    assert registered == [buffer.close]  # registered once

    row = click_row(link)
    click_store(row)
    assert Click.objects.count() == 0
    assert buffer.pending() == 1
    buffer.flush()
    assert stored_ids() == [row.id]


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_flushes_on_its_own(tenant, monkeypatch):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    monkeypatch.setattr(clicks, "_buffer", None)
    monkeypatch.setattr(atexit, "register", lambda function: None)
    row = click_row(link)
    with override_settings(CLICK_FLUSH_SECONDS=0.02):
        buffer = click_buffer()
        try:
            click_store(row)
            deadline = time.monotonic() + 2
            while not Click.objects.filter(id=row.id).exists():
                assert time.monotonic() < deadline, "the click was not flushed within 2 s"
                time.sleep(0.01)
        finally:
            # The thread cannot be stopped: make it sleep for the rest of the session.
            buffer.interval = 3600
            buffer.close()
    assert buffer.pending() == 0
    assert stored_ids() == [row.id]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_flush_returns_how_many_were_stored(tenant):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    buffer = new_buffer()
    buffer.add(click_row(link))
    buffer.add(click_row(link, ip_hash=IP_B))

    assert buffer.flush() == 2


def test_a_click_recorded_before_a_suspension_is_dropped_at_the_flush(link):
    """The redirect (its link cache may lag) buffered a click; the affiliate is suspended
    before the flush: the click is not stored."""
    buffer = new_buffer()
    buffer.add(click_row(link))
    affiliate_suspend(affiliate=link.affiliate)

    assert buffer.flush() == 0
    assert Click.objects.count() == 0
