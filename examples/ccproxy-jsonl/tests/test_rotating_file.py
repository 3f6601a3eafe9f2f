"""The rotating file on its own: sizes, renames, whole lines, restarts."""

from __future__ import annotations

from ccproxy_jsonl.rotating_file import RotatingFile


def numbered_lines(count: int) -> list[bytes]:
    return [f'{{"n":{number:05d},"pad":"{"x" * 20}"}}\n'.encode() for number in range(count)]


def test_rotates_before_passing_max_bytes_and_keeps_the_newest_lines(tmp_path):
    path = tmp_path / "logs" / "access.jsonl"
    lines = numbered_lines(200)
    target = RotatingFile(path, max_bytes=1024, backups=2)
    for line in lines:
        target.write_line(line)
    target.close()
    files = [path.with_name("access.jsonl.2"), path.with_name("access.jsonl.1"), path]
    assert not path.with_name("access.jsonl.3").exists()
    for file in files:
        assert 0 < file.stat().st_size <= 1024
    kept = b"".join(file.read_bytes() for file in files).splitlines(keepends=True)
    assert kept == lines[-len(kept) :]  # oldest to newest, nothing split, nothing reordered
    assert len(kept) < len(lines)


def test_zero_backups_keeps_only_the_current_file(tmp_path):
    path = tmp_path / "access.jsonl"
    target = RotatingFile(path, max_bytes=1024, backups=0)
    for line in numbered_lines(100):
        target.write_line(line)
    target.close()
    assert [p.name for p in tmp_path.iterdir()] == ["access.jsonl"]
    assert path.read_bytes().endswith(numbered_lines(100)[-1])


def test_a_restart_appends_and_counts_what_is_already_there(tmp_path):
    path = tmp_path / "access.jsonl"
    path.write_bytes(b"x" * 1010 + b"\n")  # 1011 bytes: the next 20-byte line does not fit
    target = RotatingFile(path, max_bytes=1024, backups=1)
    target.write_line(b'{"after":"restart"}\n')
    target.close()
    assert path.read_bytes() == b'{"after":"restart"}\n'
    assert path.with_name("access.jsonl.1").read_bytes() == b"x" * 1010 + b"\n"


def test_a_line_longer_than_max_bytes_gets_a_file_of_its_own(tmp_path):
    path = tmp_path / "access.jsonl"
    target = RotatingFile(path, max_bytes=1024, backups=3)
    target.write_line(b"small\n")
    target.write_line(b"y" * 3000 + b"\n")
    target.write_line(b"next\n")
    target.close()
    assert path.read_bytes() == b"next\n"
    assert path.with_name("access.jsonl.1").read_bytes() == b"y" * 3000 + b"\n"
    assert path.with_name("access.jsonl.2").read_bytes() == b"small\n"
