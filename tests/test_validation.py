"""``mtl_plugin.validation``, ``mtl_plugin.io`` and ``mtl_plugin.progress``: the shared helpers."""
import math
import os

import numpy as np
import pytest

from mtl_plugin.io import atomic_write
from mtl_plugin.progress import collated_batches
from mtl_plugin.validation import (check_choice, check_finite, check_int,
                                   check_positive_finite, did_you_mean, is_finite_real, is_int,
                                   is_real, non_negative_property, suggest)


def test_type_predicates():
    assert is_int(3) and is_int(np.int64(3)) and not is_int(True) and not is_int(3.0)
    assert is_real(2.5) and is_real(np.float32(1)) and is_real(math.inf) and not is_real('1')
    assert is_finite_real(0) and not is_finite_real(math.nan) and not is_finite_real(False)


def test_checks_and_their_messages():
    assert check_finite(2, 'w', 'Owner') == 2.0
    with pytest.raises(ValueError, match=r'^Owner: w must be a finite float >= 0, but got -1.0$'):
        check_finite(-1, 'w', 'Owner')
    with pytest.raises(TypeError, match=r"^w must be a finite float >= 0, but got '1' \(str\)$"):
        check_finite('1', 'w', '')
    with pytest.raises(ValueError, match='must be a finite float > 0, but got 0.0'):
        check_positive_finite(0, 'w', 'Owner')
    assert check_int(None, 'n', optional=True) is None
    with pytest.raises(KeyError, match=r'O: n must be an int >= 1 or None, but got 0'):
        check_int(0, 'n', 'O', minimum=1, optional=True, error=KeyError)
    with pytest.raises(ValueError, match=r"must be one of \['avg', 'max'\], but got 'mx'; "
                                         r"did you mean 'max'\?"):
        check_choice('mx', ['avg', 'max'], 'mode', 'Pool')


def test_suggestions():
    assert suggest('persn', ['person', 'animal']) == ['person']
    assert did_you_mean('zzz', ['person']) == ''
    assert did_you_mean(1, ['1', '2']) == "; did you mean '1'?"


def test_non_negative_property():
    class Thing:
        weight = non_negative_property('weight', 'Thing.weight', 'A weight.')

        def __init__(self):
            self.weight = 1

    thing = Thing()
    assert thing.weight == 1.0 and thing._weight == 1.0 and Thing.weight.__doc__ == 'A weight.'
    with pytest.raises(ValueError, match='Thing.weight must be a finite float >= 0'):
        thing.weight = math.inf


def test_atomic_write(tmp_path):
    path = str(tmp_path / 'a' / 'b.txt')
    atomic_write(path, 'text')
    atomic_write(str(tmp_path / 'c.bin'), b'\x00\x01')
    atomic_write(str(tmp_path / 'd.txt'), lambda tmp: open(tmp, 'w').write('by callable'))
    assert open(path).read() == 'text' and open(tmp_path / 'd.txt').read() == 'by callable'
    assert (tmp_path / 'c.bin').read_bytes() == b'\x00\x01'

    def fail(tmp):
        raise RuntimeError('boom')
    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert open(path).read() == 'text'
    assert not [n for n in os.listdir(tmp_path / 'a') if n.endswith('.tmp')]


def test_collated_batches():
    data = [dict(inputs=i, data_samples=str(i)) for i in range(5)]
    got = list(collated_batches(data, 2, indices=[4, 0, 1], disable=True))
    assert [c for c, _ in got] == [[4, 0], [1]]
    assert got[0][1] == dict(inputs=[4, 0], data_samples=['4', '0'])
