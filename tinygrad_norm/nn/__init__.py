"""Modules, layers, recurrent layers, losses (functions in `functional`, modules here), initialisers and
gradient clipping (`utils`)."""
from . import functional, init, utils
from .layers import (GELU, AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, Dropout, Embedding, Flatten, Identity,
                     LeakyReLU, Linear, MaxPool2d, ReLU, Sigmoid, Tanh)
from ..module import CheckpointError, IncompatibleKeys, Module, ModuleList, Parameter, Sequential, StateDictError
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .norm_layers import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
                          InstanceNorm3d, LayerNorm, LocalResponseNorm, Norm, RMSNorm, SyncBatchNorm,
                          spectral_norm, weight_norm)
from .losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
                     SmoothL1Loss)
