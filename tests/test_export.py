"""`semiland export`: one ONNX file, normalisation folded in, whose map equals `predict`'s; refusals in one line."""

import json

import numpy as np
import onnx
import onnxruntime as ort

import semiland
from semiland.cli import main


def test_the_exported_model_maps_like_predict(trained, tmp_path, capsys):
    ckpt = trained / "checkpoints" / "best.ckpt"
    out = tmp_path / "deploy" / "model.onnx"
    assert main(["export", "--ckpt", str(ckpt), "-o", str(out)]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["classes"]) == ["building", "land", "road", "vegetation", "water"]
    assert meta["tile_multiple"] == "32" and len(json.loads(meta["band_mean"])) == 3

    model = semiland.load(ckpt)
    image = np.random.default_rng(1).integers(0, 255, (3, 64, 64)).astype(np.float32)  # raw values, one eval tile
    image[:, :4, :4] = np.nan  # no data
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probs, classes = session.run(None, {"image": image[None]})
    assert probs.shape == (1, 5, 64, 64) and classes.shape == (1, 64, 64) and classes.dtype == np.uint8
    want = model.predict(image)  # the same model through semiland's own path
    assert (classes[0][:4, :4] == 255).all()
    assert (classes[0] == want).mean() > 0.999
    np.testing.assert_allclose(probs[0][:, 4:, 4:], model.predict(image, probabilities=True)[:, 4:, 4:], atol=1e-4)
    # a batch of two tiles of another size
    two = np.concatenate([image, image], 2)[None].repeat(2, 0)[:, :, :32]  # (2, 3, 32, 128)
    assert session.run(["classes"], {"image": two})[0].shape == (2, 32, 128)


def test_export_refuses_bad_targets_in_one_line(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "best.ckpt")
    foreign = tmp_path / "theirs.onnx"
    foreign.write_bytes(b"not ours")
    for out, message in [(tmp_path / "model.pt", "ends in .onnx"), (foreign, "already exists")]:
        assert main(["export", "--ckpt", ckpt, "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0
    assert main(["export", "--ckpt", ckpt, "-o", str(foreign), "--overwrite"]) == 2
    assert "not written by semiland" in capsys.readouterr().err and foreign.read_bytes() == b"not ours"
    ours = tmp_path / "ours.onnx"
    assert semiland.load(ckpt).export(ours) == ours and ours.stat().st_size > 1000
    assert main(["export", "--ckpt", ckpt, "-o", str(ours), "--overwrite"]) == 0  # its own file: replaced
