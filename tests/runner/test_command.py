from __future__ import annotations

from pathlib import Path

import pytest

from plant2edge.local.command import CommandRenderError, render

COMMAND = (
    "python run.py --n ${{inputs.n}} $[[--ratio ${{inputs.ratio}}]] "
    "--flag ${{inputs.flag}} --out ${{outputs.out}}"
)


def test_render_keeps_block_with_value():
    text = render(COMMAND, {"n": 5, "ratio": 0.5, "flag": True}, {"out": "/o"})

    assert text == "python run.py --n 5 --ratio 0.5 --flag True --out /o"


def test_render_drops_block_without_value():
    text = render(COMMAND, {"n": 5, "ratio": None, "flag": False}, {"out": "/o"})

    assert text == "python run.py --n 5  --flag False --out /o"


def test_render_drops_block_if_any_missing():
    command = "go $[[--pair ${{inputs.a}} ${{inputs.b}}]] end"

    assert render(command, {"a": "x", "b": None}, {}) == "go  end"
    assert render(command, {"a": "x", "b": "y"}, {}) == "go --pair x y end"


def test_render_writes_numbers_as_given():
    command = "run ${{inputs.a}} ${{inputs.b}} ${{inputs.c}}"

    assert (
        render(command, {"a": 1e-3, "b": "1e-3", "c": 300}, {}) == "run 0.001 1e-3 300"
    )


def test_render_quotes_paths_with_spaces():
    text = render("cat ${{inputs.f}}", {"f": Path("/tmp/a b/c.txt")}, {})

    assert text == "cat '/tmp/a b/c.txt'"


def test_render_rejects_unwrapped_missing_input():
    with pytest.raises(CommandRenderError, match=r"Input 'ratio' has no value"):
        render("run --ratio ${{inputs.ratio}}", {"ratio": None}, {})


def test_render_rejects_undeclared_input():
    with pytest.raises(
        CommandRenderError, match=r"no input 'nope'. Declared inputs: n"
    ):
        render("run ${{inputs.nope}}", {"n": 1}, {})


def test_render_rejects_undeclared_output():
    with pytest.raises(
        CommandRenderError, match=r"no output 'model'. Declared outputs: out"
    ):
        render("run ${{outputs.model}}", {}, {"out": "/o"})


def test_render_rejects_unbalanced_block():
    with pytest.raises(CommandRenderError, match=r"Unbalanced optional block"):
        render("run $[[--a ${{inputs.a}}", {"a": 1}, {})


def test_render_leaves_bash_test_brackets_alone():
    text = render("[[ -f ${{inputs.f}} ]] && cat ${{inputs.f}}", {"f": "x"}, {})

    assert text == "[[ -f x ]] && cat x"
