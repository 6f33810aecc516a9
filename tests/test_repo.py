"""Repository promises: the README's two commands, CI running the test command, layout."""
import re

from conftest import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.+?)\n```", head, flags=re.S)


def test_readme_has_exactly_two_commands_at_the_top():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    assert "edgefill inpaint" in cmds[0] and "pip install ." in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (REPO / ".ci" / "run").read_text()
    assert readme_commands()[1].strip() in ci


def test_layout_and_dependency_direction():
    for name in ("pyproject.toml", "README.md", "train", "export", "runtime", "tests", "samples"):
        assert (REPO / name).exists(), name
    offenders = []
    for path in (REPO / "runtime").rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if re.match(r"(import|from)\s+(torch|onnx)\b", stripped) and not line.startswith((" ", "\t")):
                offenders.append(f"{path.name}:{n}: {stripped}")
            # lazy imports of train/export inside CLI command bodies are fine (they need the
            # `train` extra); a module-level one would drag torch into every runtime import
            if re.match(r"(import|from)\s+edgefill\.(train|export)\b", stripped) and not line.startswith((" ", "\t")):
                offenders.append(f"{path.name}:{n}: {stripped}")
    assert not offenders, offenders


def test_every_source_package_is_installed_by_pip_install_dot():
    """pyproject lists its packages by hand (three folders map onto edgefill.*): a new folder with an
    __init__.py that is missing there works in the editable install the tests use and is absent
    from `pip install .`, the README's first command. Every such folder must be listed."""
    import tomllib

    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    missing = []
    for package, folder in setup["package-dir"].items():
        for init in sorted((REPO / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(REPO / folder).parts
            name = ".".join((package, *rel))
            if "__pycache__" not in rel and name not in listed:
                missing.append(name)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
