import errno
import os

import pytest

from seq2seq.core.atomic import atomic_dir, atomic_path, sha256_file, write_json, write_text


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left behind


def test_written_files_have_normal_permissions(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    mode = os.stat(tmp_path / "a.json").st_mode & 0o777
    assert mode & 0o044  # readable by others under the usual umask (mkstemp alone gives 0600)


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path):
    folder = tmp_path / "model"
    with atomic_dir(folder) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(KeyError):
        with atomic_dir(folder) as tmp:
            (tmp / "b").write_text("2")
            raise KeyError("boom")
    assert sorted(p.name for p in folder.iterdir()) == ["a"]
    with atomic_dir(folder) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in folder.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_sha256_file(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_leftovers_of_a_killed_write_are_removed_by_the_next(tmp_path):
    from seq2seq.core.atomic import atomic_dir, write_text

    (tmp_path / ".out.abc123.tmp").mkdir()
    (tmp_path / ".out.abc123.tmp" / "half.bin").write_bytes(b"x")
    (tmp_path / ".f.txt.xyz.tmp").write_text("half")
    (tmp_path / ".other.q.tmp").write_text("not ours")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done.txt").write_text("ok")
    write_text(tmp_path / "f.txt", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.q.tmp", "f.txt", "out"]


def test_a_failed_write_names_the_output_not_the_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(OSError) as info:
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")  # what a full disk's write() raises
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            raise OSError(errno.EFBIG, "File too large", str(tmp))
    assert info.value.filename == str(target)
    with pytest.raises(FileNotFoundError) as info:  # an input's error keeps the input's name
        with atomic_path(target):
            open(tmp_path / "missing.tsv", encoding="utf-8")
    assert info.value.filename == str(tmp_path / "missing.tsv")
    with pytest.raises(OSError) as info:
        with atomic_dir(tmp_path / "folder") as tmp:
            raise OSError(errno.EROFS, "Read-only file system", str(tmp / "a.bin"))
    assert info.value.filename == str(tmp_path / "folder")
    assert not list(tmp_path.glob(".*"))
