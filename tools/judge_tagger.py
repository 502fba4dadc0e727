"""The instrument tagger of ``tools/judge.py``: musicnn (MagnaTagATune), in its own process.

    TAGGER_PYTHON tools/judge_tagger.py < files.json > tags.json

Reads a JSON list of audio file paths on stdin and writes ``{"labels": [...], "tags":
{path: [mean probability of each label over the file's 3-s patches]}}`` on stdout.

musicnn (Pons & Serra 2019; ISC licence) ships its trained weights inside its pip package, so
nothing is downloaded. It is a TensorFlow-1 graph: it runs on TensorFlow 2 through
``tensorflow.compat.v1`` with the legacy Keras layers (``tf_keras``), which is why it lives in
its own environment (its metadata also pins ``numpy<1.17``, which it does not need)::

    python3 -m venv .venv-tagger
    .venv-tagger/bin/pip install tensorflow-cpu tf_keras librosa
    .venv-tagger/bin/pip install --no-deps musicnn

The graph is built and the weights restored once for all files (musicnn's own ``extractor``
rebuilds them per file: about a minute each on this machine), and the input patches are made
by :func:`patches` (musicnn's own overflow under NumPy 2, see there).
"""

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def patches(path, n_frames, config, librosa, np):
    """musicnn's input: log-compressed 96-band mel patches of 3 s, ``(patches, frames, 96)``.

    As ``musicnn.extractor.batch_data``, except that ``log10(10000 * mel + 1)`` is computed in
    float32: musicnn casts the mel to float16 first, and under NumPy 2's promotion rules
    ``10000 * float16`` stays float16 and overflows to inf on any loud frame, which makes
    every file look the same to the net (the sanity check caught it). A clip shorter than one
    patch is padded with silence.
    """
    audio, sr = librosa.load(path, sr=config.SR)
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=config.FFT_HOP,
                                         n_fft=config.FFT_SIZE, n_mels=config.N_MELS).T
    rep = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    if rep.shape[0] < n_frames:
        rep = np.pad(rep, ((0, n_frames - rep.shape[0]), (0, 0)))
    starts = range(0, rep.shape[0] - n_frames + 1, n_frames)
    return np.stack([rep[t:t + n_frames] for t in starts])


def main() -> int:
    import contextlib
    import io

    import numpy as np
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    tf.logging.set_verbosity(tf.logging.ERROR)
    sys.modules["tensorflow"] = tf              # musicnn calls the TF-1 API by its old name
    import librosa
    from musicnn import configuration as config
    from musicnn import models

    files = json.load(sys.stdin)
    model = "MTT_musicnn"
    labels = config.MTT_LABELS
    n_frames = librosa.time_to_frames(3, sr=config.SR, n_fft=config.FFT_SIZE,
                                      hop_length=config.FFT_HOP) + 1
    tf.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.placeholder(tf.float32, [None, n_frames, config.N_MELS])
        is_training = tf.placeholder(tf.bool)
        y = models.define_model(x, is_training, model, len(labels))[0]
        prob = tf.nn.sigmoid(y)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    tf.train.Saver().restore(sess, os.path.join(os.path.dirname(models.__file__), model) + "/")
    out = {}
    for path in files:
        with contextlib.redirect_stdout(io.StringIO()):      # librosa may warn on stdout
            batch = patches(path, n_frames, config, librosa, np)
        p = sess.run(prob, feed_dict={x: batch, is_training: False})
        out[path] = np.asarray(p, dtype=np.float64).mean(axis=0).round(5).tolist()
    sess.close()
    json.dump({"labels": list(labels), "tags": out}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
