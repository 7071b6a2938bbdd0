import math

import numpy as np

from semiland.engine.metrics import confusion_metrics, format_table


def test_against_hand_computed_confusion_matrix():
    # rows truth, cols prediction
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 0]])
    m = confusion_metrics(cm, ["a", "b", "c"])
    # class a: TP 5, FP 2, FN 1 → IoU 5/8; class b: TP 3, FP 1, FN 3 → 3/7; class c: TP 0, FP 1, FN 0 → 0
    assert math.isclose(m["per_class"]["a"]["IoU"], 5 / 8)
    assert math.isclose(m["per_class"]["b"]["IoU"], 3 / 7)
    assert m["per_class"]["c"]["IoU"] == 0.0
    assert math.isclose(m["mIoU"], (5 / 8 + 3 / 7 + 0) / 3)
    assert math.isclose(m["per_class"]["a"]["precision"], 5 / 7)
    assert math.isclose(m["per_class"]["b"]["recall"], 3 / 6)
    assert math.isclose(m["OA"], 8 / 12)
    pe = (6 * 7 + 6 * 4 + 0 * 1) / 144
    assert math.isclose(m["kappa"], (8 / 12 - pe) / (1 - pe))
    assert m["pixels"] == 12


def test_absent_class_is_excluded_from_miou():
    cm = np.array([[4, 0, 0], [0, 4, 0], [0, 0, 0]])  # class c never appears, never predicted
    m = confusion_metrics(cm, ["a", "b", "c"])
    assert m["per_class"]["c"]["IoU"] is None
    assert m["mIoU"] == 1.0
    assert "mIoU" in format_table(m)


def test_empty_matrix_gives_none_not_nan():
    m = confusion_metrics(np.zeros((2, 2)), ["a", "b"])
    assert m["mIoU"] is None and m["OA"] is None


def test_class_indices_is_argmax_with_ties_and_nan():
    import torch

    from semiland.engine.sliding import class_indices

    logits = torch.randn(2, 5, 31, 17)
    logits[:, 3] = logits[:, 1]  # exact ties: the first maximum wins, as argmax
    logits[0, 2, :4] = float("nan")
    assert torch.equal(class_indices(logits), logits.argmax(1))
    assert torch.equal(class_indices(logits[1], 0), logits[1].argmax(0))


def test_the_unchecked_confusion_matrix_counts_as_the_checked_one():
    import torch
    from torchmetrics.classification import MulticlassConfusionMatrix

    pred, target = torch.randint(0, 4, (2, 40, 40)), torch.randint(0, 4, (2, 40, 40))
    target[:, :5] = 255  # ignored pixels (nodata, unknown classes)
    fast, checked = (MulticlassConfusionMatrix(4, ignore_index=255, validate_args=v) for v in (False, True))
    assert torch.equal(fast(pred, target), checked(pred, target))
    assert int(fast.compute().sum()) == 2 * 35 * 40
