"""`ixci.run.cancel.CancelToken`: the first trip interrupts a blocking wait once; later trips never
interrupt the cleanup; a real signal handler on the main thread does the same."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from ixci.errors import Cancelled
from ixci.run.cancel import CancelToken, interruptible, reason


def test_first_trip_inside_a_region_raises_once() -> None:
    token = CancelToken()
    with pytest.raises(Cancelled, match="cancelled by SIGINT"), token.interruptible():
        token.trip("cancelled by SIGINT")
    assert token.is_set() and reason(token) == "cancelled by SIGINT"
    token.trip("cancelled by SIGTERM")  # outside a region, and not the first: no raise
    assert reason(token) == "cancelled by SIGINT"  # the first cause is kept
    with pytest.raises(Cancelled), token.interruptible():  # already set: refuse to start waiting
        pass


def test_trip_outside_a_region_only_sets_the_flag() -> None:
    token = CancelToken()
    token.trip("cancelled by SIGHUP")
    assert token.wait(2.0), "Event.wait must wake up after a trip"
    assert interruptible(threading.Event()).__enter__() is None  # a plain Event: no-op region


def test_a_signal_interrupts_a_blocking_sleep_in_the_region() -> None:
    token = CancelToken()
    previous = signal.signal(signal.SIGUSR1, lambda *_: token.trip("cancelled by SIGUSR1"))
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled), token.interruptible():
            time.sleep(30)  # stands for a probe with a long timeout
        assert time.monotonic() - t0 < 5
        # a second signal during "cleanup" is absorbed
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
