"""Near-duplicate groups against a brute-force reference, input checks, pHash, incremental batches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import imagehash
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from scipy.fft import dctn

from curation.config import CurationConfig, DedupConfig
from curation.dedup import dedup_clips, duplicate_groups
from curation.dedup_store import dedup_batch
from curation.embedding import perceptual_hashes
from curation.near_duplicates import EmbeddingInputError, hash_codes, hash_pairs


def _reference_groups(x: np.ndarray, max_distance: float) -> np.ndarray:
    """Brute force: dense cosine distances, union-find, groups numbered by first row."""
    unit = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    close = 1.0 - unit @ unit.T <= max_distance
    parent = list(range(len(x)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(close), strict=True):
        parent[find(int(i))] = find(int(j))
    roots = [find(i) for i in range(len(x))]
    numbering: dict[int, int] = {}
    return np.array([numbering.setdefault(r, len(numbering)) for r in roots], np.int64)


def _planted(n_originals: int, n_copies: int, dim: int, seed: int) -> np.ndarray:
    """Originals around a few concept centres, plus copies at cosine distance ≲ 0.06 of one original."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    originals = centres[rng.integers(0, 8, n_originals)] + rng.standard_normal(
        (n_originals, dim)
    ) * 0.8 / np.sqrt(dim)
    originals /= np.linalg.norm(originals, axis=1, keepdims=True)
    noise = rng.standard_normal((n_copies, dim))
    noise *= rng.uniform(0.1, 0.35, (n_copies, 1)) / np.linalg.norm(noise, axis=1, keepdims=True)
    copies = originals[rng.integers(0, n_originals, n_copies)] + noise
    return rng.permutation(np.concatenate([originals, copies])).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_path_matches_brute_force_on_random_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 4)).astype(np.float32)  # low dimension: many close pairs and chains
    groups = duplicate_groups(x, 0.03)
    assert groups.dtype == np.int64 and groups.shape == (300,)
    np.testing.assert_array_equal(groups, _reference_groups(x, 0.03))
    assert 1 < groups.max() + 1 < 300  # neither all merged nor all alone: the test can fail both ways


def test_ivf_path_matches_brute_force_on_planted_duplicates() -> None:
    x = _planted(1500, 500, 32, seed=3)
    expected = _reference_groups(x, 0.1)
    assert np.bincount(expected).max() >= 3  # the planted groups are there
    np.testing.assert_array_equal(duplicate_groups(x, 0.1, exact_max_rows=100), expected)
    np.testing.assert_array_equal(duplicate_groups(x, 0.1), expected)


def test_groups_are_transitive() -> None:
    # a–b and b–c are 0.08 apart, a–c is ~0.31 apart: one group through b; d is far from all.
    angles = np.array([0.0, 0.4, 0.8, 2.5])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    assert 1 - np.cos(0.8) > 0.1 >= 1 - np.cos(0.4)
    np.testing.assert_array_equal(duplicate_groups(x, 0.1), [0, 0, 0, 1])
    np.testing.assert_array_equal(duplicate_groups(x, 0.1, exact_max_rows=1), [0, 0, 0, 1])


def test_scale_of_a_row_does_not_matter_and_boundary_distance_counts() -> None:
    x = np.array([[1.0, 0.0], [100.0, 0.0], [0.0, 3.0]], np.float32)
    np.testing.assert_array_equal(duplicate_groups(x, 0.0), [0, 0, 1])
    np.testing.assert_array_equal(duplicate_groups(x, 1.0), [0, 0, 0])  # orthogonal: distance exactly 1


def test_empty_and_one_row_inputs() -> None:
    empty = duplicate_groups(np.zeros((0, 8), np.float32), 0.1)
    assert empty.shape == (0,) and empty.dtype == np.int64
    np.testing.assert_array_equal(duplicate_groups(np.ones((1, 8), np.float32), 0.1), [0])


@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        (np.ones((4, 8), np.float64), "float32"),
        (np.ones(8, np.float32), "2-D"),
        (np.ones((2, 3, 4), np.float32), "2-D"),
        (np.ones((4, 0), np.float32), "zero dimensions"),
        (np.array([[1.0, np.nan]], np.float32), "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), r"rows \[1\] are all zero"),
        ([[1.0, 0.0]], "numpy array"),
    ],
)
def test_bad_embeddings_raise_clear_errors(embeddings: np.ndarray, message: str) -> None:
    with pytest.raises(EmbeddingInputError, match=message):
        duplicate_groups(embeddings, 0.1)


@pytest.mark.parametrize("max_distance", [-0.1, 2.5, float("nan")])
def test_bad_max_distance_raises(max_distance: float) -> None:
    with pytest.raises(EmbeddingInputError, match="max_distance"):
        duplicate_groups(np.ones((2, 4), np.float32), max_distance)


def test_perceptual_hashes_match_a_scipy_dct_reference_and_imagehash_on_photos() -> None:
    from curation.democorpus.photo_pool import skimage_data_dir

    photos = [
        cv2.cvtColor(cv2.imread(str(skimage_data_dir() / name)), cv2.COLOR_BGR2RGB)
        for name in ("astronaut.png", "chelsea.png", "coffee.png", "camera.png")
    ]
    ours = perceptual_hashes(photos)
    for photo, hashed in zip(photos, ours, strict=True):
        small = cv2.resize(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
        low = dctn(small.astype(np.float64), type=2)[:8, :8]
        bits = (low > np.median(low)).ravel()
        assert hashed == np.packbits(bits).tobytes().hex()
        # Natural photos: the same bits as imagehash (its resize filter differs only on fine texture).
        assert imagehash.phash(Image.fromarray(photo)) - imagehash.hex_to_hash(hashed) <= 2
    assert len(set(ours)) == 4 and perceptual_hashes([]) == []


def test_hash_pairs_find_exactly_the_codes_within_the_bit_budget() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (400, 8), dtype=np.uint8)
    codes[200:260] = codes[:60] ^ np.packbits(rng.random((60, 64)) < 0.08, axis=1)  # ~5 flipped bits
    bits = np.unpackbits(codes, axis=1).astype(np.int64)
    hamming = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    q, b = hash_pairs(codes, codes, 6)
    assert set(zip(q.tolist(), b.tolist(), strict=True)) == set(zip(*np.nonzero(hamming <= 6), strict=True))
    assert len(q) > 400  # the planted pairs are among them
    np.testing.assert_array_equal(hash_codes(["00000000000000ff"]), [[0, 0, 0, 0, 0, 0, 0, 255]])


def _signals(ids: list[str], vectors: np.ndarray, aesthetic: list[float]) -> pa.Table:
    return pa.table(
        {
            "clip_id": ids,
            "embedding": pa.array([v.tolist() for v in vectors], pa.list_(pa.float32())),
            "phash": [hashlib.sha256(i.encode()).hexdigest()[:16] for i in ids],  # far apart
            "aesthetic": aesthetic,
            "sharpness": [1.0] * len(ids),
            "duration_s": [2.0] * len(ids),
        }
    )


def test_second_batch_dedups_against_the_first_without_recomputing_it(tmp_path: Path) -> None:
    config = DedupConfig(n_clusters=2)
    x = _planted(12, 0, 64, seed=5)
    one = _signals([f"one_{i:02d}" for i in range(12)], x, [5.0] * 12)
    first = dedup_batch(one, "b1", tmp_path, config)
    assert first.num_rows == 12 and all(first.column("keep").to_pylist())
    # Batch 2: a prettier near-copy of one_03, a distinct clip, and a copy of one_07 with its pHash.
    rng = np.random.default_rng(9)
    copy = x[3] + 0.15 * rng.standard_normal(64).astype(np.float32) / 8
    two = _signals(
        ["two_a", "two_b", "two_c"], np.stack([copy, -x[0], rng.standard_normal(64)]), [9.0, 5.0, 1.0]
    )
    two = two.set_column(
        2, "phash", pa.array(["ffffffffffffffff", "0000000000000000", one["phash"][7].as_py()])
    )
    second = {r["clip_id"]: r for r in dedup_batch(two, "b2", tmp_path, config).to_pylist()}
    assert len(second) == 15
    assert second["two_a"]["keep"] and second["one_03"]["duplicate_of"] == "two_a"
    assert second["one_03"]["group_size"] == 2 and second["two_a"]["nearest_distance"] < 0.1
    assert second["one_07"]["keep"] and second["two_c"]["duplicate_of"] == "one_07"  # pHash pair
    assert second["two_b"]["keep"] and second["two_b"]["group_size"] == 1
    stored = pq.read_table(tmp_path / "dedup_pairs" / "b2.parquet").to_pylist()
    assert {(p["clip_a"], p["clip_b"]) for p in stored} == {("two_a", "one_03"), ("two_c", "one_07")}
    # The whole-table dedup of both batches at once gives the same groups.
    together = dedup_clips(pa.concat_tables([one, two]), config).to_pylist()
    assert {r["clip_id"]: r["group_id"] for r in together} == {k: r["group_id"] for k, r in second.items()}
    # Re-adding batch 2 is idempotent.
    again = dedup_batch(two, "b2", tmp_path, config).to_pylist()
    assert {r["clip_id"]: r["group_id"] for r in again} == {k: r["group_id"] for k, r in second.items()}


def test_dedup_batch_reads_old_embeddings_from_the_store(tmp_path: Path) -> None:
    config = CurationConfig.preset("tiny").dedup
    x = _planted(6, 0, 32, seed=1)
    dedup_batch(_signals([f"old_{i}" for i in range(6)], x, [1.0] * 6), "b1", tmp_path, config)
    # Rewrite the stored vector of old_2 to equal a new clip's: the new clip must now pair with it,
    # which only happens when the old embeddings come from the store.
    stored = pq.read_table(tmp_path / "dedup_vectors" / "b1.parquet")
    vectors = [list(v) for v in stored.column("embedding").to_pylist()]
    vectors[2] = (-x[5]).tolist()
    stored = stored.set_column(1, "embedding", pa.array(vectors, pa.list_(pa.float32())))
    pq.write_table(stored, tmp_path / "dedup_vectors" / "b1.parquet")
    new = dedup_batch(_signals(["new_0"], -x[5:6], [9.0]), "b2", tmp_path, config).to_pylist()
    assert {r["clip_id"]: r["duplicate_of"] for r in new}["old_2"] == "new_0"


def test_a_clip_id_seen_in_two_batches_is_one_clip(tmp_path: Path) -> None:
    x = _planted(4, 0, 16, seed=2)
    ids = ["c0", "c1", "c2", "c3"]
    config = DedupConfig(n_clusters=1)
    dedup_batch(_signals(ids[:3], x[:3], [1.0] * 3), "b1", tmp_path, config)
    # The same bytes ingested again give the same clip_id: it stays one row, not a duplicate pair.
    table = dedup_batch(_signals(ids[2:], x[2:], [1.0] * 2), "b2", tmp_path, config).to_pylist()
    assert [r["clip_id"] for r in table] == ids and all(r["keep"] and r["group_size"] == 1 for r in table)
    together = dedup_clips(_signals(ids + ["c1"], np.concatenate([x, x[1:2]]), [1.0] * 5), config)
    assert together.column("clip_id").to_pylist() == ids
