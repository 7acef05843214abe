"""Bad settings, interrupted runs and odd values given to the local runner."""

from __future__ import annotations

from plant2edge import runner, settings

ECHO_PIPELINE = """\
inputs:
  text: hello
jobs:
  echo:
    type: command
    component: {components}/echo/component.yaml
    inputs:
      text: ${{parent.inputs.text}}
"""


def test_runner_rejects_home_that_is_a_file(
    p2e_home, tmp_path, monkeypatch, capsys, write_pipeline
):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv(settings.HOME_ENV, str(home))

    code = runner.main([str(write_pipeline(ECHO_PIPELINE)), "--quiet"])

    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert f"Cannot create the run folder under {home / 'runs'}" in err
    assert "PLANT2EDGE_HOME" in err
    assert home.read_text() == "not a folder"
