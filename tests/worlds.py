"""Process worlds played by one process, for the synchronized-statistics tests."""
import numpy as np


class IdenticalProcesses:
    """`size` processes that all hold the same batch: what a real world's gather and all-reduce return then."""
    def __init__(self, size):
        self.size, self.rank = size, 0

    def gather(self, a):
        return np.stack([a] * self.size)

    def all_reduce(self, a):
        return a * self.size
