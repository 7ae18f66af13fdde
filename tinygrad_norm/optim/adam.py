"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW): moment estimates with bias correction."""
from ..backend import get_array_module
from .optimizer import Optimizer, check_number, check_unsupported, zeros_like


class Adam(Optimizer):
    """m = β₁m + (1-β₁)g, v = β₂v + (1-β₂)g² (v = max(v_max, v) with amsgrad);
    w -= lr/(1-β₁ᵗ) · m / (√(v/(1-β₂ᵗ)) + eps). Weight decay adds wd·w to g, or with
    decoupled_weight_decay (AdamW) scales w by 1 - lr·wd first."""
    state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    required_state = ("step", "exp_avg", "exp_avg_sq")  # max_exp_avg_sq is made when amsgrad first needs it

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        betas = tuple(betas) if isinstance(betas, (tuple, list)) else betas  # anything else: check_group says so
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def check_group(self, group):
        check_number(self, "lr", group["lr"], "Invalid learning rate")
        check_number(self, "eps", group["eps"], "Invalid epsilon value")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair (beta1, beta2); got {betas!r}")
        for i, beta in enumerate(betas):
            check_number(self, f"betas[{i}]", beta, f"Invalid beta parameter at index {i}", high=1.0)
        check_number(self, "weight_decay", group["weight_decay"], "Invalid weight_decay value")
        check_unsupported(self, group, differentiable=(False,), capturable=(False,))

    def update(self, w, g, state, group):
        lr, (b1, b2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if weight_decay and group["decoupled_weight_decay"]:
            w *= 1 - lr * weight_decay
        elif weight_decay:
            g = g + weight_decay * w
        if not state:
            state.update(step=0, exp_avg=zeros_like(w), exp_avg_sq=zeros_like(w))
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = zeros_like(w)
        state["step"] += 1
        m, v, t = state["exp_avg"].data, state["exp_avg_sq"].data, state["step"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        if group["amsgrad"]:
            v = get_array_module(v).maximum(state["max_exp_avg_sq"].data, v, out=state["max_exp_avg_sq"].data)
        denom = (v / (1 - b2 ** t)) ** 0.5 + eps
        w -= (lr / (1 - b1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): w *= 1 - lr·wd before the Adam step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
