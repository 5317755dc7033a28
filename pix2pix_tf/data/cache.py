"""Decoded images kept in memory for training: `--cache_decoded`.

Decoding the JPEGs is about a third of the training input pipeline's CPU time.
With this option each input pipeline decodes its share of the split once, keeps
the decoded pixels in an in-memory lookup table (serialized tensors keyed by
example number), and from then on only jitters. The preprocessing is the same
as without the cache; the order differs because whole epochs are shuffled by
example number instead of through a buffer of records.

Memory: width x height x 3 bytes per example (about 1.2 GB for Cityscapes
train; one channel for gray sides, 4 bytes per value for 16-bit ones), checked
against the available memory first. Iterator checkpoints stay small: they hold
the shuffled example numbers, not the table, which is rebuilt identically from
the TFRecords when the pipeline is built again.
"""

from __future__ import annotations

import os

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
# Share of the currently available memory the cache may take.
MAX_MEMORY_FRACTION = 0.5


def _available_bytes() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class DecodedTable:
    """Example number -> (A, B) uint8 pixels and the key, for one pipeline's records."""

    def __init__(self, records: tf.data.Dataset, decode_fn, count: int, split: str):
        """Decodes `records` (finite, in a fixed order) into memory.

        Args:
          records: the serialized records of this input pipeline.
          decode_fn: serialized record -> (A, B, key).
          count: an upper bound of the number of records, for the memory check.
          split: the split name, for messages.
        """

        def serialize(record):
            a, b, key = decode_fn(record)
            return tf.io.serialize_tensor(a), tf.io.serialize_tensor(b), key

        # dtype (uint8, or float32 for 16-bit sides) and shape [None, None, channels].
        self._specs = records.map(decode_fn).element_spec[:2]
        decoded = records.map(serialize, num_parallel_calls=AUTOTUNE, deterministic=True)
        first = next(iter(decoded), None)
        if first is None:
            raise ValueError(f"--cache_decoded: this input pipeline has no {split!r} records.")
        first_a, first_b, _ = first
        estimate = count * (len(first_a.numpy()) + len(first_b.numpy()))
        available = _available_bytes()
        if available is not None and estimate > MAX_MEMORY_FRACTION * available:
            raise ValueError(
                f"--cache_decoded: the decoded {split!r} split needs about "
                f"{estimate / 2**30:.1f} GiB of memory but only {available / 2**30:.1f} GiB "
                "are available; run without --cache_decoded."
            )
        values_a, values_b, keys = next(iter(decoded.batch(max(count, 1))))
        self.count = int(keys.shape[0])
        numbers = tf.range(self.count, dtype=tf.int64)
        self._keys = keys
        self._tables = [
            tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(numbers, values), default_value=b""
            )
            for values in (values_a, values_b)
        ]

    def lookup(self, number: tf.Tensor):
        """(A, B, key) of example `number`."""
        a, b = (
            tf.io.parse_tensor(table.lookup(number), spec.dtype)
            for table, spec in zip(self._tables, self._specs, strict=True)
        )
        a.set_shape(self._specs[0].shape)
        b.set_shape(self._specs[1].shape)
        return a, b, tf.gather(self._keys, number)


def training_examples(table: DecodedTable, shuffle_seed: int) -> tf.data.Dataset:
    """Endless (A, B, key) elements, each epoch in a new order."""
    numbers = tf.data.Dataset.range(table.count).shuffle(table.count, seed=shuffle_seed)
    return numbers.repeat().map(table.lookup, num_parallel_calls=AUTOTUNE, deterministic=True)


def external_state_options() -> tf.data.Options:
    """Lets the iterator be checkpointed although it reads the lookup tables."""
    options = tf.data.Options()
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    return options
