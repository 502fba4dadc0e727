"""The training loop: :func:`train` reads top to bottom.

1. settings, device, threads, the checkpoint folder (and what it holds, for ``resume``);
2. the loss, exactly as :func:`rtstyle.transfer.transfer` builds it: the seeded
   :class:`~rtstyle.nn.encoder.ShallowEncoder` on the configured features, and one
   :class:`~rtstyle.nn.losses.StyleContentLoss` per style whose Gram target is the mean Gram of
   the style's reference files (every channel of every file counts equally);
3. the corpus: train and val spectrograms, decoded and analysed once, kept in memory;
4. the net (:class:`~rtstyle.nn.transform.TransformNet`, one embedding per style), Adam, the
   data generator, fixed validation chunks; restored from the checkpoint when resuming;
5. the loop: random chunks (each with a random style) -> net -> ``expm1`` -> features ->
   encoder -> loss; Adam with a cosine learning-rate decay; losses on a progress bar (or a log
   line every ``log_every`` steps without a terminal); validation every ``val_every`` steps;
   a checkpoint every ``checkpoint_every`` steps, at the end, on Ctrl-C and on SIGTERM;
6. the model card.

The net sees each chunk with its receptive field of real left context (zeros before the start
of a file, as a stream that starts there) and ``lookahead`` frames of right context, so the
frames the loss sees are computed as the stream will compute them.
"""

from __future__ import annotations

import logging
import math
import pathlib
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .._progress import progress_bar
from ..errors import ParameterError
from .checkpoint import CHECKPOINT_JSON, load_checkpoint, restore_checkpoint, save_checkpoint
from .data import Corpus, SpectrogramBank, check_reference, load_reference
from .options import TrainSettings, default_checkpoint_dir

__all__ = ["train", "TrainResult", "STREAM_DEFAULTS"]

log = logging.getLogger("rtstyle")

#: The card's ``defaults``: streaming settings for the live engine (``rtstyle render``'s).
STREAM_DEFAULTS = {"lookahead": 1, "phase_init": "input"}
#: Smoothing of the training losses shown and stored (exponential moving average).
EMA = 0.05


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    net : TransformNet
        The trained net (eval mode, on the CPU).
    card : dict
        The model card for :func:`rtstyle.models.save_model` (``format_version`` and
        ``architecture`` are filled in by it).
    history : list of dict
        Validation entries: ``step``, ``seconds`` and per style ``style``, ``content``,
        ``s_content``.
    steps : int
        Steps done (fewer than ``settings.steps`` after a time limit).
    checkpoint_dir : pathlib.Path
    """

    net: object
    card: dict
    history: list = field(default_factory=list)
    steps: int = 0
    checkpoint_dir: pathlib.Path | None = None


def train(settings: TrainSettings, *, checkpoint_dir=None, resume: bool = False,
          overwrite: bool = False, time_limit: float | None = None, progress: bool = False,
          callback=None) -> TrainResult:
    """Train a feed-forward style net against the transfer's loss.

    Parameters
    ----------
    settings : TrainSettings
    checkpoint_dir : path, optional
        Default :func:`~rtstyle.train.options.default_checkpoint_dir` of the model's name.
    resume : bool
        Continue from the checkpoint there (its settings must match, except
        :data:`~rtstyle.train.options.RUN_KEYS`); without one, start from step 0 with a warning.
    overwrite : bool
        Without ``resume``, replace a checkpoint found there (else that is an error).
    time_limit : float, optional
        Stop once the training's wall time (all resumed runs together) passes this many minutes
        (a checkpoint and the card say how far it got).
    progress : bool
        Show a tqdm progress bar; else log a line every ``log_every`` steps.
    callback : callable, optional
        ``callback(step, info)`` after every step (``info``: ``loss`` and per-style losses).

    Returns
    -------
    TrainResult

    Raises
    ------
    ParameterError
        Bad corpus, bad settings, a checkpoint that does not match, a loss that is not finite.
    AudioFileError
        An unreadable reference or corpus file (one line naming it).
    KeyboardInterrupt
        Ctrl-C or SIGTERM, after a checkpoint of the last finished step was written.
    """
    import torch

    from ..dsp.features import features as to_features
    from ..nn.device import resolve_device
    from ..nn.encoder import ShallowEncoder
    from ..nn.losses import StyleContentLoss
    from ..nn.transform import TransformNet

    t_run = time.perf_counter()
    s = settings
    if not isinstance(s, TrainSettings):
        raise ParameterError(f"settings must be a TrainSettings, got {type(s).__name__}")

    # --- 1. device, threads, checkpoint folder ------------------------------------------------
    device = resolve_device(s.device)
    if s.threads is not None:
        torch.set_num_threads(s.threads)
    ckpt_dir = pathlib.Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(s.name)
    found = None
    if (ckpt_dir / CHECKPOINT_JSON).exists():
        if resume:
            found = load_checkpoint(ckpt_dir)
            saved = TrainSettings.from_dict(found[0]["settings"])
            diffs = saved.differences(s)
            if diffs:
                raise ParameterError(f"--resume: the checkpoint in {ckpt_dir} was made with other "
                                     f"settings: {'; '.join(diffs[:3])}")
        elif not overwrite:
            raise ParameterError(f"--checkpoint-dir {ckpt_dir}: holds a checkpoint; pass --resume "
                                 "to continue it or --overwrite to start again")
    elif resume:
        log.warning("--resume: no checkpoint in %s; starting from step 0", ckpt_dir)

    stft_cfg, feat_cfg = s.stft_config(), s.feature_config()
    enc_cfg, net_cfg = s.encoder_config(), s.transform_config()
    T, L = s.chunk_frames, s.lookahead
    left = net_cfg.context

    # --- 2. the loss: encoder and per-style Gram targets, as transfer builds them -----------
    for spec in s.styles:
        for ref in spec.references:
            _named(check_reference, ref, spec.name)
    encoder = ShallowEncoder(feat_cfg.n_channels(stft_cfg), enc_cfg).to(device)
    losses, ref_frames = [], []
    for spec in s.styles:
        grams, weights, loss_k = [], [], None
        ref_frames.append([])
        for ref in spec.references:
            S = _named(load_reference, ref, spec.name, stft_cfg)
            if net_cfg.stats:       # (channels, bins, frames), pooled by reference_stats
                ref_frames[-1].append(S)
            X = to_features(S, stft=stft_cfg, features=feat_cfg)
            if X.shape[-1] < encoder.min_frames:
                raise ParameterError(f"--style {spec.name}: {ref} is too short: {X.shape[-1]} "
                                     f"frames, the encoder needs {encoder.min_frames}")
            part = StyleContentLoss(encoder, torch.as_tensor(X, device=device),
                                    content_weight=s.content_weight, style_weight=s.style_weight)
            grams.append(part.style_gram)
            weights.append(X.shape[0])
            loss_k = part if loss_k is None else loss_k
        if len(grams) > 1:
            w = torch.tensor(weights, dtype=grams[0].dtype, device=device) / sum(weights)
            loss_k.style_gram.copy_(sum(wi * g for wi, g in zip(w, grams)))
        losses.append(loss_k)
    log.info("loss: %s features, encoder %d filters (width %d, %s, seed %d), content weight %g, "
             "style weight %g; %d style(s): %s", feat_cfg.kind, enc_cfg.n_filters,
             enc_cfg.kernel_size, enc_cfg.activation, enc_cfg.seed, s.content_weight,
             s.style_weight, len(s.styles), ", ".join(x.name for x in s.styles))

    def analyse(x_log: torch.Tensor) -> torch.Tensor:
        """log1p magnitudes -> the loss's features (as transfer analyses audio)."""
        return to_features(torch.expm1(x_log), stft=stft_cfg, features=feat_cfg)

    # --- 3. the corpus ------------------------------------------------------------------------
    t0 = time.perf_counter()
    corpus = Corpus.open(s.corpus)
    train_bank = SpectrogramBank(corpus.split("train"), stft_cfg)
    val_files = corpus.split("val")
    if not val_files:
        log.warning("--corpus %s: no held-out (val) files; validating on training files",
                    s.corpus)
    val_bank = SpectrogramBank(val_files, stft_cfg) if val_files else train_bank
    hop_s = stft_cfg.hop_length / stft_cfg.sr
    log.info("corpus %s: %d train files (%.1f min), %d val files (%.1f min), %.0f MB of "
             "spectrograms, read in %.1f s", s.corpus, len(train_bank.paths),
             train_bank.total_frames * hop_s / 60, len(val_files),
             val_bank.total_frames * hop_s / 60 if val_files else 0.0,
             (train_bank.nbytes + (val_bank.nbytes if val_files else 0)) / 1e6,
             time.perf_counter() - t0)

    # --- 4. net, optimiser, data generator, validation chunks; resume -------------------------
    torch.manual_seed(s.seed)
    net = TransformNet(net_cfg).to(device).train()
    if net_cfg.stats:           # each style reference's band statistics, stored in the net
        for k, (spec, frames) in enumerate(zip(s.styles, ref_frames)):
            try:
                mean, spread = net.reference_stats(frames)
            except ValueError:
                raise ParameterError(f"--style {spec.name}: the reference is silent") from None
            net.set_style_stats(k, mean, spread)
        del ref_frames
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    rng = np.random.Generator(np.random.PCG64(s.seed))
    val_rng = np.random.Generator(np.random.PCG64([s.seed, 1]))
    val_x = torch.from_numpy(val_bank.chunks(val_bank.draw(val_rng, s.val_chunks, T), T,
                                             left=left, right=L)).to(device)
    step, history, elapsed_before = 0, [], 0.0
    ema = {x.name: {"style": None, "content": None} for x in s.styles}
    if found is not None:
        meta, tensors = found
        step = restore_checkpoint(meta, tensors, net=net, optimizer=opt)
        rng.bit_generator.state = meta["rng"]
        history, ema = meta["history"], meta["ema"]
        elapsed_before = float(meta["elapsed_s"])
        log.info("resumed from %s at step %d", ckpt_dir, step)
    start_step = step

    def lr_at(i: int) -> float:
        """Cosine decay from lr to lr * lr_final over the run's steps."""
        frac = min(i / s.steps, 1.0)
        return s.lr * (s.lr_final + (1 - s.lr_final) * 0.5 * (1 + math.cos(math.pi * frac)))

    def batch_loss(x: torch.Tensor, styles: np.ndarray):
        """Mean loss per chunk, and per style its mean style and content terms."""
        y = net(x, torch.as_tensor(styles, device=device))[..., left:left + T]
        X_out, X_c = analyse(y), analyse(x[..., left:left + T])
        total, parts = 0.0, {}
        for k in np.unique(styles):
            idx = torch.as_tensor(np.flatnonzero(styles == k), device=device)
            loss_k = losses[int(k)]
            p = loss_k(X_out[idx], loss_k.target_features(X_c[idx]))
            total = total + p["total"]
            parts[s.styles[int(k)].name] = {"style": float(p["style"].detach()) / len(idx),
                                            "content": float(p["content"].detach()) / len(idx)}
        return total / len(styles), parts

    with torch.no_grad():
        X_val_c = analyse(val_x[..., left:left + T])
        val_targets = [loss_k.target_features(X_val_c) for loss_k in losses]
        s_content = [float(loss_k(X_val_c, tgt)["style"]) / len(val_x)
                     for loss_k, tgt in zip(losses, val_targets)]

    @torch.no_grad()
    def validate() -> dict:
        net.eval()
        entry = {"step": step, "seconds": round(elapsed(), 1), "styles": {}}
        for k, (spec, loss_k) in enumerate(zip(s.styles, losses)):
            p = loss_k(analyse(net(val_x, k)[..., left:left + T]), val_targets[k])
            entry["styles"][spec.name] = {"style": float(p["style"]) / len(val_x),
                                          "content": float(p["content"]) / len(val_x),
                                          "s_content": s_content[k]}
        net.train()
        return entry

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t_run

    def checkpoint() -> None:
        save_checkpoint(ckpt_dir, step=step, net=net, optimizer=opt, state={
            "settings": s.to_dict(), "rng": rng.bit_generator.state, "history": history,
            "ema": ema, "elapsed_s": elapsed(), "seed": s.seed})

    # --- 5. the loop --------------------------------------------------------------------------
    bar = progress_bar(s.steps, desc="train", unit="step", initial=step, enabled=progress)
    say = (lambda msg: bar.write(f"rtstyle: {msg}")) if bar is not None else log.info
    restore_signal = _sigterm_as_interrupt()
    t_loop, steps_timed = time.perf_counter(), 0
    stopped_by_time = False
    try:
        while step < s.steps:
            if time_limit is not None and elapsed() > 60.0 * time_limit:
                say(f"time limit of {time_limit:g} min reached at step {step}")
                stopped_by_time = True
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            positions = train_bank.draw(rng, s.batch_size, T)
            styles = rng.integers(0, len(s.styles), size=s.batch_size)
            x = torch.from_numpy(train_bank.chunks(positions, T, left=left, right=L)).to(device)
            loss, parts = batch_loss(x, styles)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise ParameterError(f"the loss became {loss_value} at step {step + 1}; lower "
                                     f"--lr={s.lr} (the last checkpoint is in {ckpt_dir})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            steps_timed += 1
            for name, p in parts.items():
                for key, value in p.items():
                    old = ema[name][key]
                    ema[name][key] = value if old is None else (1 - EMA) * old + EMA * value
            if callback is not None:
                callback(step, {"loss": loss_value, **parts})
            if bar is not None:
                bar.set_postfix(_postfix(loss_value, ema), refresh=False)
                bar.update(1)
            elif step % s.log_every == 0:
                rate = (time.perf_counter() - t_loop) / steps_timed
                say(f"step {step}/{s.steps}  loss {loss_value:.4g}  {_ema_text(ema)}  "
                    f"{rate:.2f} s/step, {rate * (s.steps - step) / 60:.0f} min left")
            if step % s.val_every == 0 or step == s.steps:
                history.append(validate())
                say(f"val @ {step}: {_val_text(history[-1])}")
            if step % s.checkpoint_every == 0 or step == s.steps:
                checkpoint()
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
            bar = None
        if step > start_step:
            checkpoint()
            log.warning("interrupted at step %d; checkpoint in %s (continue with --resume)",
                        step, ckpt_dir)
        raise
    finally:
        restore_signal()
        if bar is not None:
            bar.close()
    if not history or history[-1]["step"] != step:
        history.append(validate())
        say(f"val @ {step}: {_val_text(history[-1])}")
    if stopped_by_time or step == start_step:
        checkpoint()

    # --- 6. the model card --------------------------------------------------------------------
    net = net.to("cpu").eval()
    card = _card(s, corpus, train_bank, val_bank if val_files else None, stft_cfg, feat_cfg,
                 enc_cfg, history, ema, step=step, wall_s=elapsed(), device=device,
                 threads=torch.get_num_threads(), torch_version=torch.__version__)
    return TrainResult(net=net, card=card, history=history, steps=step, checkpoint_dir=ckpt_dir)


# ----------------------------------------------------------------------------------------------
# helpers


def _named(fn, ref, style, *args):
    """Call ``fn(ref, *args)``, prefixing an error with the style it belongs to."""
    from ..errors import RtStyleError

    try:
        return fn(ref, *args)
    except RtStyleError as err:
        raise type(err)(f"--style {style}: {err}") from None


def _sigterm_as_interrupt():
    """In the main thread, turn SIGTERM into KeyboardInterrupt (so a kill checkpoints)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, old)


def _postfix(loss: float, ema: dict) -> dict:
    out = {"loss": f"{loss:.4g}"}
    for name, p in ema.items():
        if p["style"] is not None:
            out[name] = f"s {p['style']:.3g} c {p['content']:.3g}"
    return out


def _ema_text(ema: dict) -> str:
    return "  ".join(f"{n}: s {p['style']:.3g} c {p['content']:.3g}" for n, p in ema.items()
                     if p["style"] is not None)


def _val_text(entry: dict) -> str:
    return "  ".join(f"{n}: style {p['style']:.4g} (content itself {p['s_content']:.4g}) "
                     f"content {p['content']:.4g}" for n, p in entry["styles"].items())


def _reference_label(ref: str, corpus: Corpus) -> str:
    """A reference as the card names it: relative to the corpus if inside it, else its name."""
    p = pathlib.Path(ref).resolve()
    try:
        return str(p.relative_to(corpus.root.resolve()))
    except ValueError:
        return p.name


def _card(s: TrainSettings, corpus: Corpus, train_bank, val_bank, stft_cfg, feat_cfg, enc_cfg,
          history: list, ema: dict, *, step: int, wall_s: float, device: str, threads: int,
          torch_version: str) -> dict:
    from .. import __version__

    hop_s = stft_cfg.hop_length / stft_cfg.sr
    styles = []
    for spec in s.styles:
        entry = {"name": spec.name,
                 "references": [_reference_label(r, corpus) for r in spec.references]}
        sources = [corpus.reference_entry(r) for r in spec.references]
        if any(sources):
            entry["sources"] = [e.get("source") if e else None for e in sources]
        styles.append(entry)
    final = history[-1]
    quality = {"measured_on": (f"{s.val_chunks} {'held-out' if val_bank is not None else 'training'}"
                               f" chunks of {s.chunk_frames} frames "
                               f"({s.chunk_frames * hop_s:.2f} s), fixed by the seed"),
               "definitions": {"s_content": "style loss of the untouched content",
                               "s_ff": "style loss of the net's output",
                               "content_loss": "content loss of the net's output"},
               "step": final["step"], "styles": {}}
    for name, p in final["styles"].items():
        quality["styles"][name] = {
            "s_content": p["s_content"], "s_ff": p["style"], "content_loss": p["content"],
            "log_s_content_over_s_ff": math.log(max(p["s_content"], 1e-30) / max(p["style"], 1e-30)),
        }
    lic = corpus.licence_lines([r for spec in s.styles for r in spec.references])
    if s.licence:
        lic.append(s.licence)
    if not lic:
        lic = [f"Training audio from {corpus.root.name} (no manifest: its licence is unknown)."]
    licence = ("Trained on: " + " ".join(lic) + " The model weights are released under the MIT "
               "licence with rtstyle.")
    training = {
        "corpus": corpus.describe(train_bank.total_frames,
                                  val_bank.total_frames if val_bank is not None else 0, hop_s),
        "steps": step, "planned_steps": s.steps, "batch_size": s.batch_size,
        "chunk_frames": s.chunk_frames, "chunk_seconds": round(s.chunk_frames * hop_s, 3),
        "optimizer": "adam", "lr": s.lr, "lr_final": s.lr * s.lr_final, "lr_schedule": "cosine",
        "loss": "content_weight * content + style_weight * Gram style loss through the encoder "
                "(rtstyle.nn.losses.StyleContentLoss, as rtstyle transfer), per chunk",
        "content_weight": s.content_weight, "style_weight": s.style_weight, "seed": s.seed,
        "final_train_losses": ema, "final_val_losses": final["styles"],
        "wall_time_s": round(wall_s, 1), "device": device, "threads": threads,
        "torch": torch_version, "rtstyle": __version__,
        "validation": [{"step": h["step"], **{n: {"style": round(p["style"], 6),
                                                   "content": round(p["content"], 6)}
                                               for n, p in h["styles"].items()}}
                       for h in history],
    }
    if s.extra.get("note"):
        training["note"] = s.extra["note"]
    return {
        "name": s.name, "styles": styles, "sr": stft_cfg.sr,
        "stft": {"n_fft": stft_cfg.n_fft, "hop_length": stft_cfg.hop_length,
                 "win_length": stft_cfg.win_length},
        "features": feat_cfg.to_dict(), "encoder": enc_cfg.to_dict(),
        "defaults": dict(STREAM_DEFAULTS), "training": training, "quality": quality,
        "licence": licence,
    }
