"""Model registry: every model builds and classifies; CIFAR models match the published
architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shedding.models import MODELS, build_model
from shedding.models.prunable import all_prunable_names, prunable_parameters
from shedding.models.torchvision_models import TORCHVISION_NAMES

# Input sizes that keep every forward pass quick; anything not listed gets 32x32.
IMAGE_SIZE = {"small_cnn": (8, 8), "mlp": (8, 8), **{n: (64, 64) for n in TORCHVISION_NAMES}}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cifar_resnet_params(depth: int, num_classes: int = 10, in_channels: int = 3) -> int:
    """Closed-form parameter count of the OpenLTH CIFAR ResNet (1x1-conv shortcuts, BN, fc with
    bias)."""
    n = (depth - 2) // 6
    total = in_channels * 16 * 9 + 2 * 16  # stem conv + BN
    f_in = 16
    for f in (16, 32, 64):
        for _ in range(n):
            total += f_in * f * 9 + f * f * 9 + 2 * (2 * f)  # two 3x3 convs + two BNs
            if f_in != f:
                total += f_in * f + 2 * f  # 1x1 shortcut conv + BN
            f_in = f
    return total + 64 * num_classes + num_classes


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_builds_and_gives_logits(name: str) -> None:
    torch.manual_seed(0)
    size = IMAGE_SIZE.get(name, (32, 32))
    in_channels = 1 if name in ("small_cnn", "mlp") else 3
    model = build_model(name, in_channels, 7, size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, *size))
    assert out.shape == (2, 7)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert prunable_parameters(model), f"{name} has no prunable weights"


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet110", "vgg16_bn"])
def test_cifar_models_accept_cifar_and_larger_inputs(name: str) -> None:
    model = build_model(name, 3, 100, (32, 32)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
        assert model(torch.randn(1, 3, 48, 40)).shape == (1, 100)  # global pooling: any size


def test_resnet_parameter_counts_match_published_figures() -> None:
    # Published counts for these CIFAR ResNets (10 classes), e.g. imgclsmob's CIFAR-10 table:
    # ResNet-20 272,474 and ResNet-56 855,770; ResNet-110 1,730,714 follows from the same formula.
    published = {"resnet20": 272_474, "resnet56": 855_770, "resnet110": 1_730_714}
    for name, expected in published.items():
        depth = int(name.removeprefix("resnet"))
        assert _cifar_resnet_params(depth) == expected
        assert _count(build_model(name, 3, 10, (32, 32))) == expected
    assert abs(_count(build_model("resnet20", 3, 10, (32, 32))) - 272_474) <= 0.01 * 272_474
    assert _count(build_model("resnet20", 3, 100, (32, 32))) == _cifar_resnet_params(20, 100)
    assert _count(build_model("resnet20", 1, 10, (32, 32))) == _cifar_resnet_params(
        20, in_channels=1
    )


def test_resnet_depth_counts_layers_on_the_3x3_path() -> None:
    for name, depth in (("resnet20", 20), ("resnet56", 56), ("resnet110", 110)):
        model = build_model(name, 3, 10, (32, 32))
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        three = [m for m in convs if m.kernel_size == (3, 3)]
        one = [m for m in convs if m.kernel_size == (1, 1)]
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        assert len(three) == depth - 1  # e.g. ResNet-56: 55 3x3 convs + fc = 56 layers
        assert len(one) == 2  # the two downsampling shortcuts
        assert len(linears) == 1 and linears[0] is model.fc
        k = (depth - 2) // 3  # 3x3 convs per stage
        assert [c.out_channels for c in three] == [16] * (1 + k) + [32] * k + [64] * k


def test_vgg16_bn_architecture() -> None:
    model = build_model("vgg16_bn", 3, 10, (32, 32))
    assert _count(model) == 14_728_266  # 13 conv(+bias)+BN layers and Linear(512, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256] + [512] * 6
    assert all(c.kernel_size == (3, 3) and c.bias is not None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 13
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 512
    with pytest.raises(ValueError, match="16x16"):
        build_model("vgg16_bn", 3, 10, (8, 8))


def test_openlth_initialisation() -> None:
    torch.manual_seed(0)
    model = build_model("resnet56", 3, 10, (32, 32))
    # Kaiming normal (fan_in, ReLU gain): std sqrt(2 / fan_in) for the 32->32 3x3 convs.
    w = torch.cat(
        [
            m.weight.flatten()
            for m in model.modules()
            if isinstance(m, nn.Conv2d) and m.in_channels == 32 and m.out_channels == 32
        ]
    )
    assert w.std().item() == pytest.approx((2 / (32 * 9)) ** 0.5, rel=0.03)
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight.detach() for m in bn])
    assert 0 <= scales.min() and scales.max() < 1 and scales.std() > 0.2  # uniform [0, 1)
    assert all((m.bias == 0).all() for m in bn)


def test_prunable_parameters_exclude_biases_and_bn_and_honour_dense_layers() -> None:
    model = build_model("resnet20", 3, 10, (32, 32))
    names = list(prunable_parameters(model))
    assert len(names) == 19 + 2 + 1  # 3x3 convs, 1x1 shortcut convs, fc
    assert names[0] == "conv.weight" and names[-1] == "fc.weight"
    assert all(n.endswith(".weight") and not n.startswith("bn") and ".bn" not in n for n in names)
    params = dict(model.named_parameters())
    assert all(params[n].dim() in (2, 4) for n in names)
    assert all(p is params[n] for n, p in prunable_parameters(model).items())
    # Everything not prunable is a BN scale/shift or the fc bias.
    rest = set(params) - set(names)
    assert rest == {
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.BatchNorm2d)
        for n in (f"{n}.weight", f"{n}.bias")
    } | {"fc.bias"}
    assert sum(p.numel() for p in prunable_parameters(model).values()) == 272_474 - 10 - sum(
        params[n].numel() for n in rest if n != "fc.bias"
    )
    for dense in (["fc.weight"], ["fc"]):
        kept = prunable_parameters(model, dense)
        assert "fc.weight" not in kept and list(kept) == names[:-1]
    assert "blocks.0.conv1.weight" not in prunable_parameters(model, ["blocks.0.conv1"])
    assert all_prunable_names(model) == names
    model.default_dense_layers = ["conv.weight"]
    assert list(prunable_parameters(model, ["fc"])) == names[1:-1]


def test_vgg_prunable_weights_include_conv_weights_not_biases() -> None:
    model = build_model("vgg16_bn", 3, 10, (32, 32))
    names = list(prunable_parameters(model))
    assert len(names) == 14 and names[-1] == "fc.weight"
    assert not any(n.endswith("bias") for n in names)


def test_torchvision_models_take_other_channel_counts() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", 1, 5, (64, 64)).eval()
    assert model.conv1.in_channels == 1 and model.conv1.out_channels == 64
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert model.fc.out_features == 5
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 5)
    # Same architecture as the 3-channel model apart from the first conv.
    ref = build_model("resnet18", 3, 5, (64, 64))
    assert _count(ref) - _count(model) == 2 * 64 * 7 * 7
    small = build_model("mobilenet_v3_small", 4, 3, (64, 64)).eval()
    assert small.features[0][0].in_channels == 4
    with torch.no_grad():
        assert small(torch.randn(2, 4, 64, 64)).shape == (2, 3)
