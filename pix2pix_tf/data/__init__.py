"""Data: from a dataset's source to batches of NHWC tensors.

Owns the dataset builders (`datasets/`: the Berkeley archives, the embedded
synthetic streets, the user's own folders, written as TFRecords through TensorFlow
Datasets), `prepare` (idempotent, locked, rebuilt beside the old copy), the
`tf.data` input pipeline (`pipeline`: decode, split by direction, the paper's
jitter, batches per replica), the in-memory decoded cache (`cache`) and the
Cityscapes label palette (`cityscapes_labels`).
"""
