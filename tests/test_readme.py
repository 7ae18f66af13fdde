"""The README's Python examples run as written (in one namespace, in order)."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    from tinygrad_norm import norms
    before = set(norms.available())
    namespace = {}
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
    finally:
        for name in set(norms.available()) - before:  # plugins the README registers at runtime
            norms.unregister(name)
