"""Making items ahead of their use, on a background thread: a GPU's batches are padded and pinned
while it computes the step before, instead of waiting for the host between steps."""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_END = object()


def made_ahead(items: Iterable[T], ahead: int) -> Iterator[T]:
    """The items of ``items`` in order, each made on a background thread while up to ``ahead``
    earlier ones wait to be taken (0: each made when it is taken, on this thread). An error
    raised while making an item is raised here when that item is due; closing the iterator
    (or leaving a ``for`` loop early) stops the thread."""
    if ahead <= 0:
        yield from items
        return
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def make() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put((_END, None))
        except BaseException as err:  # handed to the consumer, raised there
            ready.put((_END, err))

    worker = threading.Thread(target=make, name="made_ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, err = ready.get()
            if err is not None:
                raise err
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a put waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)
