#!/usr/bin/python3
"""Makes the format fixtures with the reference writers: .npy files written by numpy.save,
which the unit tests read and must write back byte for byte.

    /usr/bin/python3 tests/data/formats/make-fixtures.py
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

arrays = {
    "f4-2x3": np.arange(6, dtype="<f4").reshape(2, 3) / 4,
    "f8-5": np.linspace(-1, 1, 5, dtype="<f8"),
    "i4-3x1x2": np.arange(-3, 3, dtype="<i4").reshape(3, 1, 2),
    "i8-4": np.array([0, -1, 2**40, 7], dtype="<i8"),
    "u1-2x2": np.array([[0, 255], [1, 2]], dtype="|u1"),
    "u2-3": np.array([0, 65535, 50256], dtype="<u2"),
    "u4-2": np.array([0, 4000000000], dtype="<u4"),
    "f4-scalar": np.array(3.5, dtype="<f4"),
    "f4-0x7": np.zeros((0, 7), dtype="<f4"),
}
for name, array in arrays.items():
    np.save(os.path.join(HERE, name + ".npy"), array)
