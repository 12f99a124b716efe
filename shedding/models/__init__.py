"""Model registry. A new model is one module here plus its import line below.

A model factory takes ``(in_channels, num_classes, image_size)`` and returns an ``nn.Module``.
Prunable tensors are the weights of Conv and Linear layers (see :mod:`shedding.models.prunable`);
a model class may list ``default_dense_layers`` (parameter names) to leave dense.
"""

from shedding.models.factories import MODELS, ModelFactory, build_model

from shedding.models import cifar_resnet
from shedding.models import cifar_vgg
from shedding.models import digits_family
from shedding.models import small
from shedding.models import torchvision_models
