"""The README's Python examples run as written (with fewer iterations and a temp output)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3, "README lost its python examples"
    monkeypatch.chdir(ROOT)
    for code in blocks:
        code = code.replace("iterations=100", "iterations=2")
        code = code.replace('"out/speech_as_cello.wav"',
                            repr(str(tmp_path / "speech_as_cello.wav")))
        exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "speech_as_cello.wav").stat().st_size > 10_000
