"""Checkpoints: safetensors (weights and Adam's moments) + JSON (everything else). Never pickle.

A checkpoint folder holds ``checkpoint.json`` and the ``step-NNNNNNN.safetensors`` it names.
The JSON carries the step, the run's settings, the data generator's state (numpy PCG64: plain
integers), Adam's step counts and hyper-parameters, the validation history and the elapsed
time, so ``--resume`` continues the same trajectory. Writing is atomic and ordered: the new
weights file first, then the JSON that names it, then older weights files are removed; a kill at
any moment leaves a consistent checkpoint.
"""

from __future__ import annotations

import json
import pathlib

from ..errors import ModelError
from ..io.files import atomic_output
from ..nn._weights import read_safetensors

__all__ = ["save_checkpoint", "load_checkpoint", "restore_checkpoint", "CHECKPOINT_JSON",
           "CHECKPOINT_FORMAT"]

CHECKPOINT_JSON = "checkpoint.json"
CHECKPOINT_FORMAT = "rtstyle-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(folder, *, step: int, net, optimizer, state: dict) -> pathlib.Path:
    """Write a checkpoint of ``net`` and ``optimizer`` (torch Adam) at ``step``.

    Parameters
    ----------
    folder : path
        Created if missing.
    state : dict
        JSON-able extras (settings, RNG state, history...), stored in ``checkpoint.json``.

    Returns
    -------
    path : pathlib.Path
        The ``checkpoint.json`` written.
    """
    import torch
    from safetensors.torch import save_file

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = f"step-{step:07d}.safetensors"
    tensors, adam_steps = {}, {}
    for key, t in net.state_dict().items():
        tensors[f"net.{key}"] = t
    for name, p in net.named_parameters():
        st = optimizer.state.get(p)
        if st:
            tensors[f"adam.exp_avg.{name}"] = st["exp_avg"]
            tensors[f"adam.exp_avg_sq.{name}"] = st["exp_avg_sq"]
            adam_steps[name] = int(float(st["step"]))
    tensors = {k: t.detach().to("cpu", torch.float32).contiguous().clone()
               for k, t in tensors.items()}
    group = optimizer.param_groups[0]
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": int(step),
            "weights": weights,
            "adam": {"steps": adam_steps, "lr": float(group["lr"]),
                     "betas": [float(b) for b in group["betas"]], "eps": float(group["eps"])},
            **state}
    text = json.dumps(meta, indent=1, allow_nan=False) + "\n"
    with atomic_output(folder / weights, overwrite=True) as tmp:
        save_file(tensors, str(tmp), metadata={"format": CHECKPOINT_FORMAT, "step": str(step)})
    with atomic_output(folder / CHECKPOINT_JSON, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    for old in folder.glob("step-*.safetensors"):
        if old.name != weights:
            old.unlink(missing_ok=True)
    return folder / CHECKPOINT_JSON


def load_checkpoint(folder) -> tuple[dict, dict] | None:
    """Read a checkpoint folder: ``(meta, tensors)``, or None when it holds no checkpoint.

    Raises
    ------
    ModelError
        A broken ``checkpoint.json``, a missing or invalid weights file (one line naming it).
    """
    folder = pathlib.Path(folder)
    path = folder / CHECKPOINT_JSON
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an rtstyle checkpoint")
        if int(meta.get("version", 0)) > CHECKPOINT_VERSION:
            raise ValueError(f"version {meta['version']} is newer than this rtstyle reads")
        weights = folder / meta["weights"]
        int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelError(f"{path}: not a valid checkpoint ({err})") from None
    tensors = read_safetensors(weights, what="checkpoint weights")
    return meta, tensors


def restore_checkpoint(meta: dict, tensors: dict, *, net, optimizer) -> int:
    """Load the weights and Adam's state into ``net`` and ``optimizer``; return the step."""
    import torch

    where = meta["weights"]
    state = {k[4:]: t for k, t in tensors.items() if k.startswith("net.")}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{where}: does not fit the net ({str(err).splitlines()[0]})") from None
    device = next(net.parameters()).device
    steps = meta["adam"]["steps"]
    for name, p in net.named_parameters():
        if name not in steps:
            continue
        optimizer.state[p] = {
            "step": torch.tensor(float(steps[name])),
            "exp_avg": tensors[f"adam.exp_avg.{name}"].to(device),
            "exp_avg_sq": tensors[f"adam.exp_avg_sq.{name}"].to(device),
        }
    for group in optimizer.param_groups:
        group["lr"] = meta["adam"]["lr"]
    return int(meta["step"])
