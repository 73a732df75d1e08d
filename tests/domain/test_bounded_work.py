"""Work grows with the size of the question, not with its square: counted, not timed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import overload

from partition_deps.domain.definitions import DynamicPartitions, Evaluation
from partition_deps.domain.dependencies import downstream_partitions, upstream_partitions
from partition_deps.domain.mappings.kinds import IdentityMapping

KEYS = 2_000


class CountedKeys(Sequence[str]):
    """Dynamic keys that count how many times one of them is read."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys
        self.reads = 0

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        self.reads += 1
        return self._keys[index]

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        for key in self._keys:
            self.reads += 1
            yield key


def test_an_identity_mapping_over_every_dynamic_key_reads_each_key_a_few_times() -> None:
    # It read the keys once per queried key (a scan for membership, another for the order):
    # 20,000 keys took 10 s, the allowed 100,000 several minutes.
    keys = [f"customer-{index:06d}" for index in range(KEYS)]
    upstream_keys, downstream_keys = CountedKeys(keys), CountedKeys(keys)
    at = Evaluation(
        datetime(2024, 3, 1, tzinfo=UTC),
        {"upstream": upstream_keys, "downstream": downstream_keys},
    )
    upstream, downstream = DynamicPartitions("upstream"), DynamicPartitions("downstream")

    up = upstream_partitions(upstream, downstream, IdentityMapping(), keys, at)
    down = downstream_partitions(upstream, downstream, IdentityMapping(), keys, at)

    assert list(up.partitions) == keys
    assert list(down.partitions) == keys
    assert upstream_keys.reads + downstream_keys.reads <= 20 * KEYS
