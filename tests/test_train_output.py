"""``rtstyle train -o``: a bad output is refused before training, and a resume may rename it
(issue 14, "Data lost")."""

import json

from rtstyle import cli
from rtstyle.train.checkpoint import CHECKPOINT_JSON
from test_train import TINY_ARGS, corpus, settings, style_args  # noqa: F401 - corpus: a fixture


def test_a_pickle_output_name_is_refused_before_training(corpus, tmp_path, capsys):
    (tmp_path / "mdl").mkdir()
    ck = tmp_path / "ck"
    code = cli.main(["train", *style_args(corpus), "--corpus", str(corpus), "-o",
                     str(tmp_path / "mdl" / "tiny.pt"), "--steps", "2", "--checkpoint-dir",
                     str(ck), *TINY_ARGS])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "--output" in lines[0] and "tiny.pt" in lines[0] and "never pickles" in lines[0]
    assert not ck.exists()                         # refused before any training step
    assert list((tmp_path / "mdl").iterdir()) == []


def test_the_output_name_is_not_a_setting_a_resume_compares(corpus):
    a = settings(corpus)
    b = settings(corpus, name="renamed")
    assert a.differences(b) == []
    assert settings(corpus, lr=1e-2).differences(a)      # real settings still count


def test_resume_with_a_renamed_output_continues(corpus, tmp_path, capsys):
    ck, out = tmp_path / "ck", tmp_path / "models"
    out.mkdir()
    common = ["train", *style_args(corpus), "--corpus", str(corpus), "--checkpoint-dir", str(ck),
              *TINY_ARGS]
    assert cli.main([*common, "-o", str(out / "first"), "--steps", "2"]) == 0, \
        capsys.readouterr().err
    assert json.loads((ck / CHECKPOINT_JSON).read_text())["step"] == 2
    code = cli.main([*common, "-o", str(out / "second"), "--steps", "3", "--resume"])
    assert code == 0, capsys.readouterr().err
    card = json.loads((out / "second.json").read_text())
    assert card["name"] == "second" and card["training"]["steps"] == 3
    assert json.loads((ck / CHECKPOINT_JSON).read_text())["step"] == 3
