"""Your own style from a clip in seconds: ``rtstyle train --from MODEL --style NAME=CLIP``.

The bundled styles are the band-statistics match alone (docs/quality.md, "Does it keep the words
and the melody?": Gram-trained curves on top cost the words). So adapting a bundled model to a
new sound needs no gradient steps: the new style is the clip's band statistics in a net with the
source model's analysis (rate, STFT, bands, statistics window and spread), and its output level
trim (:mod:`rtstyle.style_level`) measured on the demo content shipped in ``examples/`` when it
is there. Several ``--style`` options make one model whose styles morph into each other (one
embedding axis per style, so a morph mixes their statistics and trims).
"""

from __future__ import annotations

from .config import StftConfig
from .errors import ParameterError

__all__ = ["adapt_styles"]

def adapt_styles(source, styles, *, name: str, models_dir=None, progress: bool = False):
    """A statistics model with ``source``'s analysis and one style per ``styles`` entry.

    Parameters
    ----------
    source : str or os.PathLike
        A model (bundled name, user name or path) built with band statistics.
    styles : list of rtstyle.train.options.StyleSpec
        Names and reference clips (each at least 10 s, any rate and channel count; several
        clips of one style are pooled).
    name : str
        The new model's name.
    models_dir : optional
        The user models folder (where ``source`` may be).
    progress : bool
        A progress bar (with its ETA) over the styles' level trims, the part that takes time
        (the statistics of a clip take a fraction of a second, and are checked before it).

    Returns
    -------
    net : rtstyle.nn.transform.TransformNet
    card : dict
        Its model card (for :func:`rtstyle.models.save_model`).

    Raises
    ------
    ModelError
        ``source`` is missing or invalid.
    ParameterError
        ``source`` has no band statistics; a reference is too short or silent.
    AudioFileError
        A reference is missing or unreadable.
    """
    import torch

    from .models import load_model
    from ._progress import progress_bar
    from .style_level import demo_content, set_level_trims
    from .style_ref import clip_stats, statistics_net

    src = load_model(source, models_dir=models_dir)
    cfg = src.net.config
    if not cfg.stats:
        raise ParameterError(f"--from {source}: this model has no band statistics to adapt "
                             "(a net trained before them); train with --corpus instead")
    stft = StftConfig(sr=src.sr, n_fft=src.n_fft, hop_length=src.hop_length)
    n = len(styles)
    net = statistics_net(bins=cfg.bins, sr=cfg.sr, hop_length=stft.hop_length, n_styles=n,
                         embed_dim=n, bands=cfg.bands,
                         stats_seconds=cfg.stats_frames * stft.hop_length / stft.sr,
                         stats_spread=float(cfg.stats_spread), level=True)
    with torch.no_grad():
        net.style_embedding.weight.copy_(torch.eye(n))
    seconds = {}
    for k, spec in enumerate(styles):      # every clip checked (one-line errors) before the bar
        mean, spread, seconds[spec.name] = clip_stats(spec.references, net, stft)
        net.set_style_stats(k, mean, spread)
    net.eval().requires_grad_(False)
    content = demo_content(stft.sr)
    bar = progress_bar(n if content else 0, desc=f"{name}: level trims", unit="style",
                       enabled=progress)
    levels = (set_level_trims(net, [s.name for s in styles], content, sr=stft.sr,
                              n_fft=stft.n_fft, hop_length=stft.hop_length,
                              on_style=None if bar is None else (lambda *_: bar.update()))
              if content else {})
    if bar is not None:
        bar.close()
    net.reset()
    card = {"name": name,
            "styles": [{"name": s.name, "references": [str(r) for r in s.references]}
                       for s in styles],
            "sr": stft.sr,
            "stft": {"n_fft": stft.n_fft, "hop_length": stft.hop_length,
                     "win_length": stft.win_length},
            "features": dict(src.card.get("features", {})),
            "encoder": dict(src.card.get("encoder", {})),
            "defaults": dict(src.card.get("defaults", {})),
            "training": {"method": "adapted from a statistics model: each style is its "
                                   "references' band statistics (rtstyle.style_adapt), no "
                                   "gradient training",
                         "from": src.name,
                         "seconds": {k: round(v, 2) for k, v in seconds.items()},
                         "level_trim_db": levels or None,
                         "level_trim": ("measured on the demo clips in examples/"
                                        if levels else "none: the demo clips were not found")},
            "quality": {},
            "licence": "the reference recordings' own"}
    return net, card
