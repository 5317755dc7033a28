"""Decoded images kept in memory for training: `--cache_decoded`.

Decoding the JPEGs is about a third of the training input pipeline's CPU time.
With this option each input pipeline decodes its share of the split once, keeps
the decoded pixels in an in-memory lookup table (serialized tensors keyed by
example number), and from then on only jitters. The preprocessing is the same
as without the cache; the order differs because whole epochs are shuffled by
example number instead of through a buffer of records.

Memory: width x height x 3 bytes per example (about 1.2 GB for Cityscapes
train; one channel for gray sides, 4 bytes per value for 16-bit ones), checked
against the available memory first. Each epoch's order is a stateless
permutation of the example numbers, so a resumed run rebuilds the table from the
TFRecords and continues at its position exactly.
"""

from __future__ import annotations

import os

import tensorflow as tf

from pix2pix_tf.data import streams

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


def training_examples(table: DecodedTable, order_key, start: int) -> tf.data.Dataset:
    """Endless (A, B, key) elements from element `start` on, each epoch in a new order.

    `order_key(epoch)` is the stateless random key of an epoch's permutation, so
    the stream from any element on is rebuilt exactly.
    """

    def one_epoch(epoch):
        numbers = tf.range(table.count, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(numbers, seed=order_key(epoch))
        )

    first_epoch, offset = divmod(start, table.count)
    numbers = tf.data.Dataset.range(first_epoch, streams.EPOCHS).flat_map(one_epoch)
    numbers = numbers.skip(offset)
    return numbers.map(table.lookup, num_parallel_calls=AUTOTUNE, deterministic=True)
