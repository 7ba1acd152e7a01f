import subprocess
import sys

import pytest

from sparse_zoo import __version__
from sparse_zoo.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name, cmd in COMMANDS.items():
        assert name in out and cmd.help.split()[0] in out


def test_version():
    out = subprocess.run([sys.executable, "-m", "sparse_zoo", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"sparse-zoo {__version__}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"sparse-zoo {name}" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "no_such_model_xyz"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "sparse-zoo report: error:" in err and "Traceback" not in err
