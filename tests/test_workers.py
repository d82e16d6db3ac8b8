import os
import time

import pytest

from mixmerge.verifiers import workers


def square(x):
    return x * x


def sleepy(seconds, value):
    time.sleep(seconds)
    return value


def crash():
    os._exit(3)


def boom():
    raise RuntimeError("bad item")


def worker_pid():
    return os.getpid()


def test_score_batch_in_order():
    assert workers.score_batch(square, [(i,) for i in range(20)], timeout_s=5) == [i * i for i in range(20)]
    assert workers.score_batch(square, [], timeout_s=5) == []


def test_slow_item_does_not_stall_batch(timer):
    items = [(0.0, 1.0)] * 6 + [(60.0, 1.0)] + [(0.0, 1.0)] * 6
    with timer:
        out = workers.score_batch(sleepy, items, timeout_s=1.0, workers=2)
    assert out == [1.0] * 6 + [0.0] + [1.0] * 6
    assert timer.elapsed < 2.0


def test_crash_and_exception_give_default_and_pool_recovers():
    pool = workers.get_pool(2)
    before = pool.replaced
    assert workers.score_batch(crash, [()], timeout_s=5, workers=2, default=-1.0) == [-1.0]
    assert pool.replaced == before + 1
    assert workers.score_batch(boom, [()], timeout_s=5, workers=2) == [0.0]
    assert workers.score_batch(square, [(3,)], timeout_s=5, workers=2) == [9]


def test_workers_are_warm_and_use_every_core():
    pids = set(workers.score_batch(sleepy, [(0.2, None)] * 4, timeout_s=5, workers=2))
    assert pids == {None}
    first = set(workers.score_batch(worker_pid, [()] * 8, timeout_s=5, workers=2))
    second = set(workers.score_batch(worker_pid, [()] * 8, timeout_s=5, workers=2))
    assert first == second and os.getpid() not in first and len(first) <= 2


def test_parallel_speedup(timer):
    with timer:
        workers.score_batch(sleepy, [(0.3, 1)] * 4, timeout_s=5, workers=2)
    assert timer.elapsed < 0.3 * 4 * 0.75


def test_call_with_timeout(timer):
    assert workers.call_with_timeout(square, (7,), 5) == 49
    with timer:
        assert workers.call_with_timeout(sleepy, (30, 1), 0.5, default="late") == "late"
    assert timer.elapsed < 1.5


def bad_verifier(i):
    from mixmerge.verifiers.errors import VerifierError

    if i == 3:
        raise VerifierError("tests", "empty")
    return float(i)


def test_data_errors_propagate_and_the_pool_recovers():
    """A malformed verifier is not the model's fault: it is raised in the caller with the item's index."""
    from mixmerge.verifiers.errors import VerifierError

    with pytest.raises(VerifierError) as err:
        workers.score_batch(bad_verifier, [(i,) for i in range(8)], timeout_s=5, workers=2)
    assert err.value.item_index == 3 and err.value.field == "tests"
    assert workers.score_batch(bad_verifier, [(0,), (1,)], timeout_s=5, workers=2) == [0.0, 1.0]
    assert workers.score_batch(boom, [()], timeout_s=5, workers=2) == [0.0]  # other errors: still the default
