r"""Sum tree for proportional prioritized replay, vectorized over whole batches with NumPy.

Prioritized replay (Schaul et al., 2016, https://arxiv.org/abs/1511.05952) draws transition i with
probability p_i / sum_j p_j. In a sum tree every internal node holds the sum of its two children, so
the root holds the total, and the leaf that owns a value v in [0, total) is found by one walk from
the root down. Leaf i owns the half-open interval [prefix_i, prefix_i + p_i), where
prefix_i = p_0 + ... + p_{i-1}, so a leaf of priority 0 owns nothing and is never found.

Priorities [1, 2, 0, 3] in a tree of capacity 4 (node number: sum of its subtree):

                    1: 6
                 /        \
             2: 3          3: 3
            /    \        /    \
         4: 1   5: 2   6: 0   7: 3       leaves 0, 1, 2, 3 are nodes 4, 5, 6, 7
        [0, 1) [1, 3)  empty  [3, 6)     the values each leaf owns

    find(3.5): node 1, 3.5 >= 3 (left sum) -> go right with 3.5 - 3 = 0.5;
               node 3, 0.5 >= 0 (left sum) -> go right with 0.5; leaf 3 (node 7).

Layout: one flat array per aggregate, of size 2P, where P is the smallest power of two >= capacity.
The root is node 1 (slot 0 is unused), the children of node k are 2k and 2k + 1, and leaf i is
node P + i. Leaves P + capacity .. 2P - 1 pad the tree to a power of two; they are never written,
so they keep priority 0 and are never returned. Besides the sums, a min tree (where zero and
unwritten leaves count as +inf) and a max tree give the smallest positive and the largest priority.

Every operation takes a whole batch and loops in Python only over the log2(P) levels, each level a
few vectorized NumPy calls; an update of a single leaf walks up in scalar steps instead. Parents
are recomputed from their children, never adjusted by a delta, so no rounding error accumulates
however many updates are made.
"""

import numpy as np

_SEARCH_LEVEL = 10
"""find() locates values among this level's 1024 nodes with one searchsorted, then walks down."""


def _is_positive_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0


class SumTree:
    """Sum, min and max trees over `capacity` non-negative float64 priorities, all 0 at first.

    Attributes:
        capacity: the number of leaves; leaf indices run from 0 to capacity - 1.
    """

    def __init__(self, capacity: int):
        """Creates a tree of `capacity` leaves, all of priority 0 and none written yet.

        Args:
            capacity: number of leaves, any positive integer (not only powers of two).

        Raises:
            ValueError: if capacity is not a positive integer.

        Cost: O(capacity) time and memory (three float64 arrays of 2P entries).
        """
        if not _is_positive_int(capacity):
            raise ValueError(f"SumTree capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._depth = (self.capacity - 1).bit_length()  # edges from the root down to a leaf
        self._first_leaf = 1 << self._depth  # P
        self._sum = np.zeros(2 * self._first_leaf)
        self._min = np.full(2 * self._first_leaf, np.inf)
        self._max = np.zeros(2 * self._first_leaf)
        self._written = np.zeros(self.capacity, dtype=bool)
        self._size = 0

    def __len__(self) -> int:
        """Number of distinct leaves written so far, whatever their priority. Cost: O(1)."""
        return self._size

    @property
    def total(self) -> float:
        """Sum of all priorities; 0.0 for an empty tree. Cost: O(1)."""
        return float(self._sum[1])

    @property
    def max_priority(self) -> float:
        """Largest priority written; 0.0 when none is positive, so a buffer inserting new
        transitions at max priority picks its own start value, e.g. max(tree.max_priority, 1.0).
        Cost: O(1)."""
        return float(self._max[1])

    @property
    def min_priority(self) -> float:
        """Smallest positive priority written (to normalise importance weights); inf when none is
        positive. Cost: O(1)."""
        return float(self._min[1])

    def priorities(self, indices) -> np.ndarray:
        """The priorities of a batch of leaves (0 for a leaf never written).

        Args:
            indices: int or array of ints in [0, capacity).

        Returns:
            float64 array of the shape of `indices`.

        Raises:
            IndexError: if an index is not in [0, capacity).

        Cost: O(k) for k indices.
        """
        indices = np.asarray(indices)
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            bad = indices[(indices < 0) | (indices >= self.capacity)].flat[0]
            raise IndexError(f"index {bad} is out of range for SumTree capacity {self.capacity}")
        return self._sum[indices + self._first_leaf]

    def update(self, indices, priorities) -> None:
        """Sets the priorities of a batch of leaves, then recomputes all their ancestors.

        Args:
            indices: int or array of ints in [0, capacity). When an index repeats, its last
                priority wins, as if the writes were made one after another.
            priorities: float or array of floats broadcastable to the shape of `indices`,
                each finite and >= 0.

        Raises:
            IndexError: if an index is not an integer in [0, capacity).
            ValueError: if a priority is negative, NaN or infinite, or the shapes do not match.
            Nothing is written when an error is raised.

        Cost: O(k log k + k log capacity) for k indices.
        """
        indices = np.asarray(indices)
        try:
            priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), indices.shape)
        except ValueError:
            raise ValueError(
                f"priorities of shape {np.shape(priorities)} do not broadcast to indices of shape "
                f"{indices.shape}"
            ) from None
        indices, priorities = indices.ravel(), priorities.ravel()
        if indices.size == 0:
            return
        if not np.issubdtype(indices.dtype, np.integer):
            raise IndexError(f"SumTree indices must be integers, got dtype {indices.dtype}")
        if indices.min() < 0 or indices.max() >= self.capacity:
            bad = indices[(indices < 0) | (indices >= self.capacity)][0]
            raise IndexError(f"index {bad} is out of range for SumTree capacity {self.capacity}")
        indices = indices.astype(np.int64, copy=False)  # int8 + P would overflow
        # min() is NaN when any priority is NaN, and NaN >= 0 is False.
        if not (priorities.min() >= 0 and priorities.max() < np.inf):
            j = np.flatnonzero(~(priorities >= 0) | (priorities == np.inf))[0]
            raise ValueError(
                f"priorities must be finite and >= 0, got {priorities[j]} for index {indices[j]}"
            )
        if indices.size == 1:
            self._set_leaf(int(indices[0]), float(priorities[0]))
            return
        # Fancy assignment with a repeated index keeps an unspecified one of its writes. np.unique
        # on the reversed batch gives each index's first position there, its last one here.
        leaves, last = np.unique(indices[::-1], return_index=True)
        priorities = priorities[::-1][last]
        self._size += int(np.count_nonzero(~self._written[leaves]))
        self._written[leaves] = True

        node = leaves + self._first_leaf
        self._sum[node] = priorities
        self._min[node] = np.where(priorities > 0, priorities, np.inf)
        self._max[node] = priorities
        for level in reversed(range(self._depth)):
            first = 1 << level  # this level's parents are nodes first .. 2 * first - 1
            if first <= len(leaves):
                # Near the root a level holds no more nodes than the batch touches: recompute it
                # whole with slices, cheaper than gathers, and O(capacity) for a bulk fill. Every
                # level above is smaller still, so `node` stays a slice from here up.
                node = slice(first, 2 * first)
                left, right = slice(2 * first, 4 * first, 2), slice(2 * first + 1, 4 * first, 2)
            else:
                # Siblings share a parent, so `node` now repeats; each repeat writes the same value.
                node = node >> 1
                left = 2 * node
                right = left + 1
            self._sum[node] = self._sum[left] + self._sum[right]
            self._min[node] = np.minimum(self._min[left], self._min[right])
            self._max[node] = np.maximum(self._max[left], self._max[right])

    def _set_leaf(self, index: int, priority: float) -> None:
        """update() for one leaf, as a replay buffer makes for each new transition: the walk up in
        scalar steps costs a fraction of the vectorized walk's dozen NumPy calls a level, and gives
        the same nodes, since a sum, min or max of two float64s rounds the same way either way."""
        if not self._written[index]:
            self._written[index] = True
            self._size += 1
        node = index + self._first_leaf
        self._sum[node] = self._max[node] = priority
        self._min[node] = priority if priority > 0 else np.inf
        while node > 1:
            node >>= 1
            left, right = 2 * node, 2 * node + 1
            self._sum[node] = self._sum[left] + self._sum[right]
            self._min[node] = min(self._min[left], self._min[right])
            self._max[node] = max(self._max[left], self._max[right])

    def find(self, values) -> np.ndarray:
        """Finds the leaf that owns each value: i with prefix_i <= v < prefix_i + p_i.

        Args:
            values: float or array of floats. Values outside [0, total) are first clamped into
                it: below 0 to 0, at or past the total to the largest float below the total,
                which belongs to the last leaf of positive priority (up to rounding).

        Returns:
            int64 array of leaf indices, the shape of `values`, each of positive priority.

        Raises:
            ValueError: if the tree is empty (total is 0) or a value is NaN.

        Cost: O(k log capacity) for k values.
        """
        total = self.total
        if total == 0:
            raise ValueError("the SumTree is empty (total priority is 0); update it first")
        values = np.asarray(values, dtype=np.float64)
        if np.isnan(values).any():
            raise ValueError("SumTree.find got NaN among its values")
        # A draw can land on the total, or past it after rounding, and the total owns no leaf.
        v = np.clip(values.ravel(), 0.0, np.nextafter(total, 0.0))
        # The top levels hold few nodes, so one searchsorted over a level's running sums replaces
        # the walk down to it. searchsorted(side="right") picks the first node whose running sum
        # exceeds v: a node the running sum steps up at, so of positive mass. Rounding can leave
        # the last running sum below v; then the last node of positive mass owns it.
        top = min(self._depth, _SEARCH_LEVEL)
        level = self._sum[1 << top : 2 << top]
        running = np.cumsum(level)
        found = np.searchsorted(running, v, side="right")
        found = np.minimum(found, np.flatnonzero(level)[-1])
        v -= np.concatenate(([0.0], running))[found]
        node = found + (1 << top)
        right_sum = self._sum[1:]  # right_sum[left] is the sum of node left + 1, with no add
        for _ in range(self._depth - top):
            # Invariant: node has positive mass, so one of its children has. Rounding (in parent
            # sums, in v - left_sum, or the clamp) can leave v >= left_sum above a right subtree
            # of zeros, so go right only into positive mass. Going left is safe too: either
            # v < left_sum (and v >= 0, so left_sum > 0) or the right child is empty.
            left = 2 * node
            left_sum = self._sum[left]
            go_right = (v >= left_sum) & (right_sum[left] > 0)
            v -= left_sum * go_right
            node = left + go_right
        return (node - self._first_leaf).reshape(values.shape)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draws leaves with probability proportional to priority, stratified: [0, total) is cut
        into `batch_size` equal segments and one value is drawn uniformly in each, which spreads
        a batch over the buffer more evenly than independent draws.

        Args:
            batch_size: number of leaves to draw, a positive integer.
            rng: source of the uniform draws.

        Returns:
            (indices, priorities): int64 and float64 arrays of shape (batch_size,); the i-th
            index comes from the i-th segment, so indices are non-decreasing.

        Raises:
            ValueError: if batch_size is not a positive integer or the tree is empty.

        Cost: O(batch_size log capacity).
        """
        if not _is_positive_int(batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        segment = self.total / batch_size
        indices = self.find((np.arange(batch_size) + rng.random(batch_size)) * segment)
        return indices, self.priorities(indices)
