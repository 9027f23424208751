"""Tests for sumtree.py against brute-force references built from np.cumsum and np.searchsorted."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from sumtree import SumTree


def reference_find(priorities, values):
    """Leaf i owns [c[i-1], c[i]) with c = cumsum: searchsorted(side="right") returns the first i
    with c[i] > v, so a value on a boundary goes to the next leaf and a zero leaf (c[i] == c[i-1])
    is never chosen for v below the total. Values are clamped into [0, total) as find does."""
    c = np.cumsum(priorities)
    return np.searchsorted(c, np.clip(values, 0.0, np.nextafter(c[-1], 0.0)), side="right")


def write_sequentially(capacity, batches):
    """One write at a time in plain Python, so the last write to an index wins by construction."""
    priorities, written = np.zeros(capacity), set()
    for indices, batch_priorities in batches:
        for i, p in zip(indices, batch_priorities, strict=True):
            priorities[i] = p
            written.add(i)
    return priorities, written


def build(capacity, batches):
    tree = SumTree(capacity)
    for indices, priorities in batches:
        tree.update(indices, priorities)
    return tree


# Integers and multiples of 1/8 keep every sum and every v - left_sum exact, so find must match
# the reference exactly, boundaries included.
exact_priorities = st.one_of(st.integers(0, 20).map(float), st.integers(0, 64).map(lambda k: k / 8))
float_priorities = st.one_of(st.just(0.0), st.floats(0.0, 1e6, allow_subnormal=False))
extreme_priorities = st.one_of(
    st.sampled_from([0.0, 5e-324, 1e-300, 1e-12, 0.1, 1.0, 3.0, 1e12, 1e300]), st.floats(0.0, 1.0)
)


@st.composite
def update_batches(draw, priorities, capacity=None, max_writes=12):
    """(capacity, [(indices, priorities), ...]); small capacities make repeated indices common."""
    capacity = capacity or draw(st.integers(1, 40))
    write = st.tuples(st.integers(0, capacity - 1), priorities)
    batch = st.lists(write, min_size=1, max_size=max_writes)
    batches = draw(st.lists(batch, min_size=1, max_size=6))
    return capacity, [([i for i, _ in b], [p for _, p in b]) for b in batches]


@settings(deadline=None, max_examples=200)
@given(update_batches(float_priorities))
def test_aggregates_follow_sequential_writes(case):
    capacity, batches = case
    tree = build(capacity, batches)
    priorities, written = write_sequentially(capacity, batches)
    positive = priorities[priorities > 0]
    assert tree.total == pytest.approx(math.fsum(priorities), rel=1e-12, abs=0.0)
    assert tree.max_priority == max(priorities[sorted(written)], default=0.0)
    assert tree.min_priority == (positive.min() if positive.size else math.inf)
    assert len(tree) == len(written)
    assert tree.capacity == capacity


def test_repeated_index_keeps_last_write():
    tree = SumTree(4)
    tree.update([2, 0, 2, 2], [5.0, 1.0, 0.5, 3.0])
    assert (tree.total, tree.max_priority, tree.min_priority, len(tree)) == (4.0, 3.0, 1.0, 2)
    tree.update(np.array([2, 2]), np.array([7.0, 0.0]))
    assert (tree.total, tree.max_priority, len(tree)) == (1.0, 1.0, 2)


@settings(deadline=None, max_examples=200)
@given(update_batches(exact_priorities), st.lists(st.floats(-0.1, 1.2), max_size=20))
def test_find_matches_reference_exactly(case, fractions):
    capacity, batches = case
    priorities, _ = write_sequentially(capacity, batches)
    if priorities.sum() == 0:
        return
    tree = build(capacity, batches)
    c = np.cumsum(priorities)
    values = np.concatenate(
        [c, c - 0.5, np.nextafter(c, -np.inf), np.nextafter(c, np.inf), np.array(fractions) * c[-1]]
    )
    np.testing.assert_array_equal(tree.find(values), reference_find(priorities, values))


@settings(deadline=None, max_examples=50)
@given(
    update_batches(exact_priorities, capacity=4097, max_writes=40),
    st.lists(st.floats(-0.1, 1.2), max_size=20),
)
def test_find_matches_reference_exactly_below_the_search_level(case, fractions):
    """Deeper than 10 levels, find searches level 10 and walks the rest of the way."""
    test_find_matches_reference_exactly.hypothesis.inner_test(case, fractions)


def test_dense_deep_tree_matches_reference_at_every_boundary():
    rng = np.random.default_rng(3)
    priorities = rng.integers(0, 4, 3000).astype(float)  # a quarter of them zero
    tree = SumTree(3000)
    tree.update(np.arange(3000), priorities)
    c = np.cumsum(priorities)
    values = np.concatenate([[0.0], c, c - 0.5, np.nextafter(c, -np.inf), [2 * c[-1]]])
    found = tree.find(values)
    np.testing.assert_array_equal(found, reference_find(priorities, values))
    assert (priorities[found] > 0).all()


@settings(deadline=None, max_examples=200)
@given(update_batches(float_priorities), st.lists(st.floats(0.0, 1.0), max_size=20))
def test_find_matches_reference_away_from_boundaries(case, fractions):
    capacity, batches = case
    priorities, _ = write_sequentially(capacity, batches)
    c = np.cumsum(priorities)
    if c[-1] == 0:
        return
    tree = build(capacity, batches)
    # The tree adds in another order than cumsum, so keep clear of boundaries by far more than
    # the rounding of either: then the owner is the same whichever order added the prefixes.
    margin = 1e-9 * c[-1]
    owned = np.flatnonzero(priorities > 2 * margin)
    midpoints = c[owned] - priorities[owned] / 2
    np.testing.assert_array_equal(tree.find(midpoints), owned)
    values = np.array(fractions) * c[-1]
    clear = np.abs(values[:, None] - np.concatenate([[0.0], c])[None, :]).min(axis=1) > margin
    values = values[clear & (values < c[-1] - margin)]
    np.testing.assert_array_equal(tree.find(values), reference_find(priorities, values))


# 1000 and below: find is one searchsorted over the leaves; 1025 and 5000 also walk below it.
@pytest.mark.parametrize("capacity", [1, 3, 5, 7, 1000, 1025, 5000])
@settings(deadline=None, max_examples=100)
@given(data=st.data())
def test_never_returns_zero_or_unwritten_leaf(capacity, data):
    _, batches = data.draw(update_batches(extreme_priorities, capacity=capacity, max_writes=30))
    priorities, written = write_sequentially(capacity, batches)
    if priorities.sum() == 0:
        return
    tree = build(capacity, batches)
    c = np.cumsum(priorities)
    total = tree.total
    edges = [0.0, -0.0, -1.0, -np.inf, total, np.nextafter(total, np.inf), 2 * total, np.inf]
    values = np.concatenate(
        [edges, c, np.nextafter(c, -np.inf), np.nextafter(c, np.inf), np.linspace(0, total, 50)]
    )
    found = tree.find(values)
    assert set(found.tolist()) <= written
    assert (priorities[found] > 0).all()
    indices, sampled = tree.sample(64, np.random.default_rng(1))
    assert set(indices.tolist()) <= written
    np.testing.assert_array_equal(sampled, priorities[indices])
    assert (sampled > 0).all()


def test_hand_drawn_tree_at_boundaries():
    tree = SumTree(4)
    tree.update([0, 1, 2, 3], [1.0, 2.0, 0.0, 3.0])
    queries = {0: 0, 0.999: 0, 1: 1, 2.999: 1, 3: 3, 3.5: 3, 5.999: 3, 6: 3, 100: 3, -1: 0}
    assert tree.find(list(queries)).tolist() == list(queries.values())
    assert (tree.total, tree.max_priority, tree.min_priority) == (6.0, 3.0, 1.0)
    tree.update(3, 0.5)  # lowering the largest leaf lowers the max; the min skips the zero leaf
    assert (tree.total, tree.max_priority, tree.min_priority) == (3.5, 2.0, 0.5)
    assert tree.find(3.0) == 3 and tree.find(np.nextafter(3.5, 4.0)) == 3


@pytest.mark.parametrize(
    "capacity, indices, priorities, queries",
    [
        (1, [0], [2.0], {0: 0, 1.999: 0, 2: 0}),
        (3, [0, 1, 2], [0.0, 2.0, 0.0], {0: 1, 1.999: 1, 2: 1, 50: 1}),  # padding leaf 3 is 0
        (5, [4], [4.0], {0: 4, 3.999: 4, 4: 4}),  # leaves 0-3 unwritten, 5-7 padding
        (7, [0, 6], [1.0, 1.0], {0.999: 0, 1: 6, 2: 6}),
        # Rounding: at the root 0.9999999999999999 - 0.3 gives 0.7, which equals the left sum of
        # node 3, whose right child is padding; only the positive-mass rule keeps find off it.
        (3, [0, 1, 2], [0.3, 0.0, 0.7], {0.29999999999999993: 0, 0.3: 2, 0.9999999999999999: 2}),
        # The total rounds to 1.0, so no float below it reaches leaf 1; a value at or past the
        # total is treated as the largest float below it, as [0, total) says.
        (2, [0, 1], [1.0, 2.0**-60], {0.5: 0, 1.0: 0, 2.0: 0}),
    ],
)
def test_small_trees_at_boundaries(capacity, indices, priorities, queries):
    tree = build(capacity, [(indices, priorities)])
    assert tree.find(list(queries)).tolist() == list(queries.values())


def test_empty_tree():
    tree = SumTree(5)
    assert (tree.total, tree.max_priority, tree.min_priority, len(tree)) == (0.0, 0.0, math.inf, 0)
    tree.update([1, 3], 0.0)  # written, but still nothing to sample
    assert (tree.total, tree.max_priority, tree.min_priority, len(tree)) == (0.0, 0.0, math.inf, 2)
    with pytest.raises(ValueError, match="empty"):
        tree.sample(4, np.random.default_rng(1))
    with pytest.raises(ValueError, match="empty"):
        tree.find(0.0)


def test_scalars_broadcast_and_shapes():
    tree = SumTree(6)
    tree.update(5, 2.0)
    tree.update([0, 1, 2], 1.5)
    tree.update(np.array([[3], [4]]), np.array([[0.25], [0.25]]))
    assert (tree.total, len(tree)) == (7.0, 6)
    assert tree.find(6.9).shape == () and tree.find(6.9) == 5
    assert tree.find(np.array([[0.0, 5.0]])).tolist() == [[0, 5]]
    indices, priorities = tree.sample(3, np.random.default_rng(1))
    assert indices.dtype == np.int64 and priorities.dtype == np.float64
    assert indices.shape == priorities.shape == (3,)


def test_small_integer_dtypes_do_not_overflow():
    tree = SumTree(1000)  # node numbers reach 2047, past int8
    tree.update(np.array([100, 120], dtype=np.int8), 2.0)
    assert (tree.total, len(tree)) == (4.0, 2)
    assert tree.find([1.0, 3.0]).tolist() == [100, 120]


def test_sampling_frequencies_follow_priorities():
    priorities = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 5.0, 6.0, 7.0, 0.0])
    tree = SumTree(10)
    tree.update(np.arange(9), priorities[:9])  # leaf 9 is never written
    rng = np.random.default_rng(1)
    counts = np.bincount(
        np.concatenate([tree.sample(1000, rng)[0] for _ in range(200)]), minlength=10
    )
    positive = priorities > 0
    assert (counts[~positive] == 0).all()
    expected = counts.sum() * priorities[positive] / priorities.sum()
    assert chisquare(counts[positive], expected).pvalue > 1e-3
    assert chisquare(counts[positive]).pvalue < 1e-6  # and far from uniform


@pytest.mark.parametrize("segments, leaves_per_segment", [(8, 16), (5, 7), (1, 3)])
def test_stratified_sample_draws_one_leaf_per_segment(segments, leaves_per_segment):
    tree = SumTree(segments * leaves_per_segment)
    tree.update(np.arange(tree.capacity), 1.0)
    rng = np.random.default_rng(1)
    for _ in range(200):
        indices, priorities = tree.sample(segments, rng)
        np.testing.assert_array_equal(indices // leaves_per_segment, np.arange(segments))
        np.testing.assert_array_equal(priorities, 1.0)


def test_total_does_not_drift_over_many_updates():
    rng = np.random.default_rng(1)
    tree, priorities = SumTree(1000), np.zeros(1000)
    for _ in range(1000):  # 100,000 writes whose magnitudes span 11 decades
        indices = rng.permutation(1000)[:100]
        batch = 10.0 ** rng.uniform(-3, 8, size=100)
        tree.update(indices, batch)
        priorities[indices] = batch
    # End small: a tree that adds deltas would keep the rounding of the large past totals.
    priorities = rng.random(1000)
    tree.update(np.arange(1000), priorities)
    assert abs(tree.total - math.fsum(priorities)) / math.fsum(priorities) < 1e-9
    assert tree.max_priority == priorities.max() and tree.min_priority == priorities.min()


@pytest.mark.parametrize("capacity", [0, -3, 2.5, "10", True, None])
def test_bad_capacity(capacity):
    with pytest.raises(ValueError, match=f"capacity must be a positive integer, got {capacity!r}"):
        SumTree(capacity)


@pytest.mark.parametrize(
    "indices, priorities, error, match",
    [
        ([0, 1], [1.0, -1.0], ValueError, r"finite and >= 0, got -1.0 for index 1"),
        ([2], [np.nan], ValueError, r"got nan for index 2"),
        ([0, 3], [np.inf, 1.0], ValueError, r"got inf for index 0"),
        ([1, 4], [1.0, 1.0], IndexError, r"index 4 is out of range for SumTree capacity 4"),
        ([-1], [1.0], IndexError, r"index -1 is out of range for SumTree capacity 4"),
        ([0.0, 1.0], [1.0, 1.0], IndexError, r"indices must be integers, got dtype float64"),
        ([0, 1, 2], [1.0, 2.0], ValueError, r"shape \(2,\) do not broadcast to .* shape \(3,\)"),
    ],
)
def test_bad_update_raises_and_writes_nothing(indices, priorities, error, match):
    tree = SumTree(4)
    tree.update([0, 1], [1.0, 2.0])
    with pytest.raises(error, match=match):
        tree.update(indices, priorities)
    assert (tree.total, tree.max_priority, tree.min_priority, len(tree)) == (3.0, 2.0, 1.0, 2)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True])
def test_bad_batch_size(batch_size):
    tree = SumTree(4)
    tree.update(0, 1.0)
    with pytest.raises(
        ValueError, match=f"batch_size must be a positive integer, got {batch_size}"
    ):
        tree.sample(batch_size, np.random.default_rng(1))


def test_find_rejects_nan():
    tree = SumTree(4)
    tree.update(0, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        tree.find([0.5, np.nan])


def test_priorities_reads_back_leaves():
    tree = SumTree(5)
    tree.update([0, 3, 3], [2.0, 1.0, 4.0])
    np.testing.assert_array_equal(tree.priorities(np.arange(5)), [2.0, 0.0, 0.0, 4.0, 0.0])
    assert tree.priorities(3) == 4.0
    with pytest.raises(IndexError, match="index 5 is out of range for SumTree capacity 5"):
        tree.priorities([1, 5])


@settings(deadline=None, max_examples=100)
@given(update_batches(extreme_priorities, max_writes=1))
def test_one_leaf_updates_leave_every_node_as_the_vectorized_walk_does(case):
    capacity, batches = case
    single = build(capacity, batches)  # each batch writes one leaf: the scalar walk
    # the same write twice in one batch takes the vectorized walk (the last of equal writes wins)
    doubled = build(capacity, [(i * 2, p * 2) for i, p in batches])
    for name in ["_sum", "_min", "_max"]:
        assert np.array_equal(getattr(single, name), getattr(doubled, name))
    assert np.array_equal(single._written, doubled._written) and len(single) == len(doubled)
