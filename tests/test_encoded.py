"""Encoded splits on disk: flat arrays written chunk by chunk, read memory-mapped, the same sequences."""
import numpy as np
import pytest

from seq2seq.core.errors import DataError
from seq2seq.data.encoded import EncodedSplit, IdsOnDisk, Sequences, SplitWriter, load_encoded, save_encoded


def test_a_split_written_in_chunks_reads_back_memory_mapped_as_written(tmp_path):
    rng = np.random.default_rng(0)
    src = [rng.integers(4, 900, rng.integers(0, 12)).tolist() for _ in range(257)]
    tgt = [rng.integers(4, 900, rng.integers(0, 12)).tolist() for _ in range(257)]
    with SplitWriter(tmp_path / "train") as split:
        for start in range(0, 257, 50):
            split.append(src[start:start + 50], tgt[start:start + 50])
    loaded = load_encoded(tmp_path / "train")
    assert isinstance(loaded.src.ids, IdsOnDisk) and loaded.src[0].dtype == np.int32
    assert loaded.src.lengths_of([3, 0]).tolist() == [len(src[3]), len(src[0])]
    assert [a.tolist() for a in loaded.src] == src and [a.tolist() for a in loaded.tgt] == tgt
    assert loaded.tgt.lengths.tolist() == [len(t) for t in tgt]
    whole = tmp_path / "whole"
    save_encoded(whole, src, tgt)
    for name in ("src_ids", "src_offsets", "tgt_ids", "tgt_offsets"):  # the same bytes as one np.save each
        np.save(tmp_path / "plain.npy", np.load(whole / f"{name}.npy"))
        assert np.array_equal(np.load(tmp_path / "plain.npy"), np.load(tmp_path / "train" / f"{name}.npy"))


def test_sequences_index_slice_and_hold_lists():
    seqs = Sequences.of([[5, 6, 7], [], [9]])
    assert len(seqs) == 3 and seqs[-1].tolist() == [9] and seqs[1].tolist() == []
    assert [s.tolist() for s in seqs[1:]] == [[], [9]] and len(seqs[3:]) == 0
    assert seqs[2:].compact().ids.tolist() == [9] and seqs[2:].compact().offsets.tolist() == [0, 1]
    with pytest.raises(IndexError):
        seqs[3]
    split = EncodedSplit([[1], [2, 3]], [[4, 5], []])
    assert len(split) == 2 and split.tgt[0].tolist() == [4, 5]
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        EncodedSplit([[1], [2]], [[3]])


def test_an_error_while_writing_leaves_the_old_split(tmp_path):
    save_encoded(tmp_path / "train", [[5]], [[6]])
    with pytest.raises(RuntimeError):
        with SplitWriter(tmp_path / "train") as split:
            split.append([[7, 7]], [[8]])
            raise RuntimeError("killed")
    assert [a.tolist() for a in load_encoded(tmp_path / "train").src] == [[5]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]


def test_a_slice_of_a_split_is_saved_as_its_own_split(tmp_path):
    split = EncodedSplit([[5, 6], [7], [8, 9, 10]], [[1], [2, 3], [4]])
    save_encoded(tmp_path / "valid", split.src[1:], split.tgt[1:])
    loaded = load_encoded(tmp_path / "valid")
    assert [a.tolist() for a in loaded.src] == [[7], [8, 9, 10]] and [a.tolist() for a in loaded.tgt] == [[2, 3], [4]]


def test_a_damaged_split_says_to_rerun_tokenize(tmp_path):
    save_encoded(tmp_path / "train", [[5, 6]], [[6]])
    np.save(tmp_path / "train" / "tgt_offsets.npy", np.array([0, 1, 1], dtype=np.int64))
    with pytest.raises(DataError, match=r"train: 1 sources but 2 targets; rerun the tokenize stage"):
        load_encoded(tmp_path / "train")
    np.save(tmp_path / "train" / "src_offsets.npy", np.array([0, 9], dtype=np.int64))
    with pytest.raises(DataError, match=r"src_offsets.npy: does not match src_ids.npy"):
        load_encoded(tmp_path / "train")
    (tmp_path / "train" / "tgt_ids.npy").unlink()
    with pytest.raises(DataError, match=r"tgt_ids.npy: not a readable encoded split \(missing\)"):
        load_encoded(tmp_path / "train")
    save_encoded(tmp_path / "cut", [[5, 6], [7]], [[6], [8]])
    ids = tmp_path / "cut" / "src_ids.npy"
    ids.write_bytes(ids.read_bytes()[:-4])  # the last id lost: found when the split is opened, not mid-training
    with pytest.raises(DataError, match=r"src_ids.npy: not a readable encoded split \(cut short: its header says 3 "):
        load_encoded(tmp_path / "cut")
