"""Threads for the race tests: a transaction held open until released, a call in the background."""

import threading
import time

from django.db import connection, transaction


class Held:
    """Run `fn` in a thread inside a transaction that stays open until `release()`."""

    def __init__(self, fn):
        self.fn = fn
        self.ready = threading.Event()
        self.go = threading.Event()
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            with transaction.atomic():
                self.result = self.fn()
                self.ready.set()
                self.go.wait(timeout=30)
        except Exception as exc:  # noqa: BLE001
            self.error = exc
            self.ready.set()
        finally:
            connection.close()

    def start(self):
        self.thread.start()
        assert self.ready.wait(timeout=30)
        if self.error:
            raise self.error
        return self

    def release(self):
        self.go.set()
        self.thread.join(timeout=30)
        if self.error:
            raise self.error
        return self.result


class Bg:
    """Run `fn` in a thread (own connection)."""

    def __init__(self, fn):
        self.fn = fn
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        try:
            self.result = self.fn()
        except Exception as exc:  # noqa: BLE001
            self.error = exc
        finally:
            connection.close()

    def blocked(self, seconds=0.4):
        time.sleep(seconds)
        return self.thread.is_alive()

    def join(self):
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "thread hung"
        return self
