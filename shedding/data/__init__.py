"""Dataset registry. A new dataset is one module here plus its import line below.

A dataset builder takes a :class:`shedding.config.DataConfig` and returns a :class:`DataBundle`.
"""

from shedding.data.datasets import DATASETS, DataBundle, DataBuilder, build_data

from shedding.data import cifar
from shedding.data import digits
from shedding.data import imagefolder
from shedding.data import synthetic
