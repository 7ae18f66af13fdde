"""Optimizers with PyTorch's update rules, parameter groups and state dicts; schedules in `lr_scheduler`."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD
