"""edgemv.atomic: files are written whole or not at all, and end up with the mode a plain open() would give."""

import os

import pytest

from edgemv.atomic import creation_mode, write_bytes_atomic, write_json_atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_written_files_get_the_umask_mode_not_tempfiles_0600(tmp_path, umask_027):
    path = write_json_atomic(tmp_path / "sub" / "a.json", {"x": 1})
    assert open(path).read() == '{\n  "x": 1\n}\n'
    assert os.stat(path).st_mode & 0o777 == 0o640 == creation_mode(0o666)
    assert creation_mode(0o777) == 0o750
    assert os.listdir(tmp_path / "sub") == ["a.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "b.bin"
    write_bytes_atomic(target, b"old")

    with pytest.raises(TypeError):
        write_bytes_atomic(target, object())  # not bytes: the write fails after the temporary file exists
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["b.bin"]
