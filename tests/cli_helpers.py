"""Shared helpers for tests that drive the real CLI in-process (through edgemv.cli.run_cli)."""

from edgemv.cli import cli, run_cli


def call(args, capsys):
    """Run `edgemv ARGS`: (exit code, stdout, stderr)."""
    code = run_cli(cli, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    """A non-zero exit with exactly one 'error:' line (library errors; Click usage errors print 'Error:' plus
    'Usage'/'Try' lines), no traceback, and every fragment somewhere in stderr."""
    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in err, err
