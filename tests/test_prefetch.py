import threading
import time

import pytest

from seq2seq.data.prefetch import made_ahead


def test_items_come_in_order_made_on_another_thread():
    made_on = []

    def items():
        for i in range(20):
            made_on.append(threading.current_thread().name)
            yield i

    assert list(made_ahead(items(), ahead=3)) == list(range(20))
    assert set(made_on) == {"made_ahead"}


def test_ahead_zero_makes_each_item_when_taken_on_this_thread():
    made_on = []

    def items():
        for i in range(3):
            made_on.append(threading.current_thread())
            yield i

    assert list(made_ahead(items(), ahead=0)) == [0, 1, 2]
    assert made_on == [threading.current_thread()] * 3


def test_an_error_while_making_an_item_is_raised_when_that_item_is_due():
    def items():
        yield 1
        yield 2
        raise ValueError("bad line 3")

    got = made_ahead(items(), ahead=2)
    assert next(got) == 1 and next(got) == 2
    with pytest.raises(ValueError, match="bad line 3"):
        next(got)


def test_closing_early_stops_the_thread_and_makes_no_more_than_ahead_extra():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    got = made_ahead(items(), ahead=2)
    assert next(got) == 0
    time.sleep(0.2)  # the thread fills the queue, then waits
    got.close()
    time.sleep(0.2)
    assert len(made) <= 4  # the one taken, two waiting, one being put
    assert not any(t.name == "made_ahead" for t in threading.enumerate())
