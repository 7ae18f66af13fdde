"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (torch.optim.SGD)."""
from ..tensor import Tensor
from .optimizer import Optimizer, check_number, check_unsupported


class SGD(Optimizer):
    """g += wd·w; buf = momentum·buf + (1 - dampening)·g (buf = g at the first step);
    w -= lr·(g + momentum·buf if nesterov else buf). With maximize, g is negated first."""
    state_keys = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def check_group(self, group):
        check_number(self, "lr", group["lr"], "Invalid learning rate")
        check_number(self, "momentum", group["momentum"], "Invalid momentum value")
        check_number(self, "weight_decay", group["weight_decay"], "Invalid weight_decay value")
        check_number(self, "dampening", group["dampening"], "Invalid dampening value", low=-float("inf"))
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        check_unsupported(self, group, differentiable=(False,))

    def update(self, w, g, state, group):
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if weight_decay:
            g = g + weight_decay * w
        if momentum:
            if "momentum_buffer" not in state:
                buf = g.copy()
                state["momentum_buffer"] = Tensor._from_array(buf)
            else:
                buf = state["momentum_buffer"].data
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        w -= lr * g
