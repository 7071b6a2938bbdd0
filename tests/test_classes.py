import numpy as np
import pytest

from semiland.data.classes import ClassTable
from semiland.errors import SemilandError

ROWS = [("a", (255, 0, 0)), ("b", (0, 255, 0)), ("c", (0, 0, 255)), ("void", (0, 0, 0))]


def test_rgb_decode_with_ignore_colour():
    table = ClassTable.from_rows(ROWS, ignore=["void"])
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [0, 0, 0]]], dtype=np.uint8)
    assert table.decode(rgb).tolist() == [[0, 1], [2, 255]]
    assert table.num_classes == 3


def test_unknown_colour_names_file_and_colour():
    table = ClassTable.from_rows(ROWS, ignore=["void"])
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(SemilandError, match=r"tile_9/m\.png.*#010203"):
        table.decode(rgb, "tile_9/m.png")


def test_index_mask_values_and_ignore():
    table = ClassTable(names=("dry", "water"), colors=((0, 0, 0), (0, 0, 255)), ignore_values=(-1,))
    values = np.array([[0, 1], [-1, 1]], dtype=np.int16)
    assert table.decode(values).tolist() == [[0, 1], [255, 1]]
    with pytest.raises(SemilandError, match=r"values \[7\]"):
        table.decode(np.array([[7]]))


def test_colorize_round_trip_and_dict():
    table = ClassTable.from_rows(ROWS, ignore=["void"])
    index = np.array([[0, 1, 2, 255]])
    assert table.decode(table.colorize(index)).tolist() == index.tolist()
    assert ClassTable.from_dict(table.to_dict()) == table


def test_unknown_ignore_name_is_an_error():
    with pytest.raises(SemilandError, match="not class names"):
        ClassTable.from_rows(ROWS, ignore=["nope"])
