"""FID and KID: generated against real target images of a split, in InceptionV3's features.

Both metrics compare the distribution of InceptionV3's 2048-d pool features
(`keras.applications.InceptionV3(include_top=False, pooling="avg")`) over the
generated images with their distribution over the real target images of the same
split. Each image is clipped to [-1, 1], gray repeated to RGB, resized to 299x299
(bilinear) and scaled as `inception_v3.preprocess_input` expects.

- FID (Heusel et al. 2017): |mu_g - mu_r|^2 + Tr(S_g + S_r - 2 (S_g S_r)^1/2), the
  Frechet distance between Gaussians fitted to the two feature sets. The means and
  covariances come from running float64 sums over the split; the trace of the root
  is that of (S_g^1/2 S_r S_g^1/2)^1/2, two symmetric eigendecompositions (no complex
  round-off, unlike a general matrix square root).
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the kernel
  k(x, y) = (x.y / d + 1)^3, averaged over KID_SUBSETS random subsets of
  min(KID_SUBSET_SIZE, n) images of each side (their code's 50 x 1000); the std over
  the subsets is reported beside it. KID needs the features themselves: up to
  MAX_KEPT_FEATURES per side are kept (float32, 8 KB an image), every one for splits
  up to that size, a uniform reservoir sample beyond.

The weights come from the Keras cache (`$KERAS_HOME` or ~/.keras, then
models/WEIGHTS_FILE, where Keras downloads them) or an explicit path; any model
with the same interface (images [N, 299, 299, 3] in [-1, 1] -> features [N, d]) can
stand in for Inception, which is how the tests run without the real weights.
"""

from __future__ import annotations

import os

import numpy as np

WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = (
    f"https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/{WEIGHTS_FILE}"
)
# The MD5 that keras.applications.InceptionV3 checks for this file.
WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
INCEPTION_SIZE = (299, 299)
KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000
MAX_KEPT_FEATURES = 10_000


class InceptionWeightsError(FileNotFoundError):
    """The InceptionV3 weights are not on this machine (message: the file and what to do)."""


def keras_home() -> str:
    """Where Keras keeps downloads, as keras.utils.get_file resolves it."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cached_weights_path() -> str:
    return os.path.join(keras_home(), "models", WEIGHTS_FILE)


def _missing_message(path: str, flag: str, reason: str = "") -> str:
    return (
        f"InceptionV3 weights not found: {path}{reason}. Download {WEIGHTS_URL} on a machine "
        f"with internet and place it at {cached_weights_path()} (evaluate.py also takes "
        f"--inception_weights PATH); {flag} off gives the other metrics."
    )


def load_inception(mode: str, weights: str | None = None, flag: str = "--fid"):
    """InceptionV3's pool-feature model, or None (mode "off", or "auto" without weights).

    `weights`: a weights file; None: the Keras cache, downloaded there by Keras with
    mode "on" when it is missing. Missing weights with mode "on" (or a `weights` path
    that does not exist) raise InceptionWeightsError, one line naming the file.
    """
    if mode == "off":
        return None
    if weights is not None:
        if not os.path.isfile(weights):
            raise InceptionWeightsError(
                f"--inception_weights {weights}: no such file. Download {WEIGHTS_URL} on a "
                f"machine with internet and pass its path, or place it at "
                f"{cached_weights_path()}; {flag} off gives the other metrics."
            )
        return build_inception(weights)
    path = cached_weights_path()
    if not os.path.isfile(path):
        if mode == "auto":
            print(f"FID/KID skipped: {_missing_message(path, flag)}")
            return None
        import keras

        try:
            path = keras.utils.get_file(
                WEIGHTS_FILE,
                WEIGHTS_URL,
                cache_dir=keras_home(),
                cache_subdir="models",
                file_hash=WEIGHTS_MD5,
            )
        except Exception as error:  # Offline: Keras raises a bare Exception naming the URL.
            reason = f" and the download failed ({type(error).__name__})"
            raise InceptionWeightsError(_missing_message(path, flag, reason)) from None
    return build_inception(path)


def build_inception(weights: str | None):
    """InceptionV3 without its top, average-pooled: [N, 299, 299, 3] -> [N, 2048].

    `weights`: a weights file, or None for random weights (same cost, for timing).
    """
    import keras

    try:
        return keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights=weights, input_shape=(*INCEPTION_SIZE, 3)
        )
    except (OSError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{weights}: not InceptionV3 weights without the top ({message}); expected "
            f"{WEIGHTS_FILE} from {WEIGHTS_URL}."
        ) from None


def inception_inputs(images):
    """[N, h, w, 1 or 3] in [-1, 1] -> [N, 299, 299, 3] as preprocess_input leaves them."""
    import keras
    import tensorflow as tf

    images = tf.clip_by_value(tf.cast(images, tf.float32), -1.0, 1.0)
    # Gray -> RGB by broadcasting (RGB stays as it is): the channel count may be
    # unknown inside a function traced with reduce_retracing.
    images = tf.broadcast_to(images, tf.concat([tf.shape(images)[:-1], [3]], axis=0))
    images = tf.ensure_shape(images, [None, None, None, 3])
    images = tf.image.resize(images, INCEPTION_SIZE, method="bilinear")
    # [-1, 1] -> [0, 255] -> preprocess_input's own scaling (back to [-1, 1]).
    return keras.applications.inception_v3.preprocess_input((images + 1.0) * 127.5)


class InceptionFeatures:
    """feature_model's features of generated and real images, one traced function for a run."""

    def __init__(self, feature_model):
        import tensorflow as tf

        self.model = feature_model

        @tf.function(reduce_retracing=True)
        def features(images):
            return tf.cast(feature_model(inception_inputs(images), training=False), tf.float32)

        self.features = features

    def distance(self) -> FeatureDistance:
        """A fresh accumulator for one pass over a split."""
        return FeatureDistance(self)


class FeatureDistance:
    """Accumulates the features of generated and real batches; FID and KID at the end."""

    def __init__(self, extractor: InceptionFeatures, max_kept: int = MAX_KEPT_FEATURES):
        self.extractor = extractor
        self.generated = FeatureStats(max_kept, seed=0)
        self.real = FeatureStats(max_kept, seed=1)

    def update(self, generated, real) -> None:
        import tensorflow as tf

        # One call for both halves (real targets may be 16-bit floats; all in [-1, 1]).
        both = tf.concat([tf.cast(generated, tf.float32), tf.cast(real, tf.float32)], axis=0)
        features = self.extractor.features(both).numpy()
        count = int(generated.shape[0])
        self.generated.add(features[:count])
        self.real.add(features[count:])

    def result(self) -> dict[str, float]:
        return compare(self.generated, self.real)


class FeatureStats:
    """Running float64 sums for the mean and covariance, and up to `max_kept` features.

    The sums are of (x - shift), shift being the first batch's mean, so that the
    covariance does not lose digits to large means. Rows wait in a buffer of up to
    FLUSH_ROWS, so that the d x d sum is updated once per buffer rather than per batch.
    """

    FLUSH_ROWS = 512

    def __init__(self, max_kept: int = MAX_KEPT_FEATURES, seed: int = 0):
        self.count = 0
        self.max_kept = max_kept
        self._rng = np.random.default_rng(seed)
        self._shift = self._sum = self._outer = None
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._kept: list[np.ndarray] = []

    def add(self, features: np.ndarray) -> None:
        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"features must be [N, d], got shape {features.shape}.")
        values = features.astype(np.float64)
        if self._shift is None:
            self._shift = values.mean(axis=0)
            self._sum = np.zeros_like(self._shift)
            self._outer = np.zeros((values.shape[1], values.shape[1]))
        self._pending.append(values - self._shift)
        self._pending_rows += len(values)
        if self._pending_rows >= self.FLUSH_ROWS:
            self._flush()
        for row in features.astype(np.float32):
            # Reservoir sampling: every feature seen so far is kept with equal probability.
            if len(self._kept) < self.max_kept:
                self._kept.append(row)
            else:
                slot = self._rng.integers(0, self.count + 1)
                if slot < self.max_kept:
                    self._kept[slot] = row
            self.count += 1

    def _flush(self) -> None:
        if self._pending:
            centred = np.concatenate(self._pending)
            self._sum += centred.sum(axis=0)
            self._outer += centred.T @ centred
            self._pending, self._pending_rows = [], 0

    def mean(self) -> np.ndarray:
        self._flush()
        return self._shift + self._sum / self.count

    def covariance(self) -> np.ndarray:
        """The unbiased sample covariance (divided by n - 1)."""
        self._flush()
        return (self._outer - np.outer(self._sum, self._sum) / self.count) / (self.count - 1)

    def kept(self) -> np.ndarray:
        return np.stack(self._kept)


def compare(generated: FeatureStats, real: FeatureStats) -> dict[str, float]:
    """{"fid", "kid", "kid_std", "kid_subset_size"} of two accumulated feature sets."""
    if min(generated.count, real.count) < 2:
        raise ValueError("FID and KID need at least 2 images on each side.")
    results = {
        "fid": frechet_distance(
            generated.mean(), generated.covariance(), real.mean(), real.covariance()
        )
    }
    kid, kid_std = kernel_inception_distance(generated.kept(), real.kept())
    subset_size = min(KID_SUBSET_SIZE, len(generated.kept()), len(real.kept()))
    results.update(kid=kid, kid_std=kid_std, kid_subset_size=subset_size)
    return results


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), in float64.

    With S1 = V diag(w) V^T and A = V diag(w)^1/2 (S1 = A A^T), S1 S2 = A A^T S2 has
    the eigenvalues of the symmetric PSD A^T S2 A, so Tr (S1 S2)^1/2 is the sum of
    the roots of A^T S2 A's eigenvalues: two symmetric eigendecompositions, no
    complex round-off (this is Tr (S1^1/2 S2 S1^1/2)^1/2 in one matmul fewer).
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    values, vectors = np.linalg.eigh((cov1 + cov1.T) / 2.0)
    factor = vectors * np.sqrt(np.clip(values, 0.0, None))
    middle = factor.T @ cov2 @ factor
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_root = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    difference = mean1 - mean2
    value = difference @ difference + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_root
    # Identical sets give 0 up to round-off, which may fall a hair below it.
    return float(max(value, 0.0))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples [m, d], kernel (x.y / d + 1)^3."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, dims = x.shape
    if y.shape != x.shape or m < 2:
        raise ValueError(f"need two samples of the same shape [m >= 2, d]: {x.shape}, {y.shape}.")
    k_xx = (x @ x.T / dims + 1.0) ** 3
    k_yy = (y @ y.T / dims + 1.0) ** 3
    k_xy = (x @ y.T / dims + 1.0) ** 3
    # Within-sample sums without the diagonal (i != j); the cross term over all pairs.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of polynomial_mmd2 over `subsets` random subsets of each side.

    Each subset holds min(subset_size, n1, n2) features of each side, drawn without
    replacement (as in Binkowski et al.'s code).
    """
    size = min(subset_size, len(features1), len(features2))
    if size == len(features1) == len(features2):
        # Every subset is a permutation of both whole sets: the same MMD^2 each time.
        return polynomial_mmd2(features1, features2), 0.0
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd2(
            features1[rng.choice(len(features1), size, replace=False)],
            features2[rng.choice(len(features2), size, replace=False)],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def time_features(batch_size: int = 8, batches: int = 3, examples: int = 500) -> dict[str, float]:
    """The cost on this machine: InceptionV3 (random weights: the same work) per image, and
    the FID/KID arithmetic for `examples` images per side of 2048-d features."""
    import time

    import tensorflow as tf

    extractor = InceptionFeatures(build_inception(None))
    images = tf.random.stateless_uniform((batch_size, 256, 256, 3), (0, 0), -1.0, 1.0)
    extractor.features(images)  # Traced and warmed up.
    started = time.perf_counter()
    for _ in range(batches):
        extractor.features(images).numpy()
    per_image = (time.perf_counter() - started) / (batches * batch_size)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    generated, real = FeatureStats(), FeatureStats()
    for start in range(0, examples, batch_size):
        count = min(batch_size, examples - start)
        generated.add(rng.random((count, 2048), np.float32))
        real.add(rng.random((count, 2048), np.float32))
    compare(generated, real)
    return {"ms_per_image": 1000.0 * per_image, "metrics_seconds": time.perf_counter() - started}


if __name__ == "__main__":
    # python -m pix2pix_tf.evaluation.fid: what FID/KID cost on this machine.
    costs = time_features()
    print(
        f"InceptionV3 features: {costs['ms_per_image']:.0f} ms per image (256x256 resized to "
        f"299x299, batch 8); FID + KID of 500 + 500 images: {costs['metrics_seconds']:.1f} s"
    )
