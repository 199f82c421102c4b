"""Optimizers and learning-rate schedules (nn.optim.SGD, nn.optim.Adam, nn.optim.lr_scheduler.StepLR...)."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR, WarmupCosine
from .optimizer import Optimizer
from .sgd import SGD
