"""--remat: a generator recomputed in segments in the backward pass.

`SegmentedModel` is the functional generator (the same layers, variables and checkpoint
layout) whose training call runs each segment, a group of consecutive layers, under
`recompute_grad` (tf.recompute_grad, with each segment's backward pass finished before
the next one's starts): the backward pass keeps only the tensors that enter and leave a
segment and recomputes the ones inside it, one segment at a time. Per-layer
rematerialisation (keras.RematScope) keeps every layer's input, which for
convolution, norm and ReLU chains is every activation; a segment keeps one.

The recomputation must compute what the forward pass computed and change nothing:

- batch norm normalises with the batch's statistics again, but its moving statistics
  are updated once, by the forward pass (the recomputation runs with momentum 1, whose
  update writes back the same values);
- dropout multiplies by the same mask: the forward pass draws the seed from the
  layer's seed generator once, as without --remat, and the recomputation reuses it.

Layers that call batch norm or dropout themselves (models/resnet.py's residual block)
call them through `call_layer` so that both rules hold inside them too.

With --remat the discriminators' PatchGANs are recomputed in segments too
(`discriminator_segments`, one per layer; models/multiscale.py's with_features).

`generator_segments` is the policy: a U-Net level (its convolution, norm, activation,
dropout and the skip concatenation that feeds it), a ResNet unit (pad, convolution,
norm, ReLU), and `residual_group` residual blocks (3: about the square root of 9) per
segment.
"""

from __future__ import annotations

import re
import threading

import keras
import tensorflow as tf
from keras.src.random.seed_generator import SeedGenerator
from tensorflow.python.eager import record as _record  # what tf.recompute_grad uses

# Residual blocks per segment; the U-Net levels and ResNet units are one each.
RESIDUAL_GROUP = 3

# The suffixes of the layers of one unit (models/generator.py, models/resnet.py).
_UNIT_PART = re.compile(r"(.+)_(pad|conv|deconv|norm|relu|lrelu|dropout|tanh)")
_RESIDUAL = re.compile(r"(.*)residual_(\d+)")
_SKIP = re.compile(r"decoder_(\d+)_skip")

_STATE = threading.local()


class _Pass:
    """One segment call: the dropout seeds its forward pass drew, and which pass runs."""

    def __init__(self):
        self.calls = 0
        self.seeds = []
        self.index = 0

    @property
    def recomputing(self) -> bool:
        return self.calls > 0

    def seed(self, layer):
        if not self.recomputing:
            self.seeds.append(layer.seed_generator.next())
        seed = self.seeds[self.index]
        self.index += 1
        return seed


class _FixedSeed(SeedGenerator):
    """A seed generator that gives one seed (keras.random takes seeds as generators)."""

    def __init__(self, seed):  # noqa: D107 - no state of its own.
        self._seed = seed

    def next(self, ordered=True):
        return self._seed


def call_layer(layer, *args, training=None, **kwargs):
    """`layer(*args, training=training, **kwargs)`, inside a segment as the rules above say."""
    if getattr(layer, "_call_has_training_arg", False) and training is not None:
        kwargs["training"] = training
    current = getattr(_STATE, "current", None)
    if current is None or not training:
        return layer(*args, **kwargs)
    if isinstance(layer, keras.layers.Dropout) and layer.rate > 0:
        (inputs,) = args
        seed = _FixedSeed(current.seed(layer))
        return keras.random.dropout(inputs, layer.rate, noise_shape=layer.noise_shape, seed=seed)
    if isinstance(layer, keras.layers.BatchNormalization) and current.recomputing:
        if layer.renorm:
            raise ValueError("--remat does not recompute batch renormalization.")
        momentum = layer.momentum
        layer.momentum = 1.0
        try:
            return layer(*args, **kwargs)
        finally:
            layer.momentum = momentum
    return layer(*args, **kwargs)


def generator_segments(
    layer_names, *, generator: str, residual_group: int = RESIDUAL_GROUP
) -> dict[str, str]:
    """{layer name: segment name} of a `generator`'s layers; layers not named run alone."""
    names = set(layer_names)
    segments = {}
    for name in layer_names:
        skip, residual, unit = (
            pattern.fullmatch(name) for pattern in (_SKIP, _RESIDUAL, _UNIT_PART)
        )
        if generator == "unet" and skip:
            # The concatenation feeds the next level, which recomputes it.
            following = f"decoder_{int(skip.group(1)) + 1}"
            segments[name] = following if f"{following}_deconv" in names else "output"
        elif generator == "unet" and name in ("output_deconv", "generated_image"):
            segments[name] = "output"
        elif residual:
            group = (int(residual.group(2)) - 1) // residual_group
            segments[name] = f"{residual.group(1)}residual_group_{group + 1}"
        elif name == "local_merge":
            segments[name] = "local_residual_group_1"
        elif name.startswith(("local_input_", "local_output_")):
            # The enhancer's full-size layers, recomputed with their neighbours at half
            # size: the backward pass keeps no full-size tensor of ngf filters.
            segments[name] = "local_down" if name.startswith("local_input_") else "local_up"
        elif unit:
            segments[name] = unit.group(1)
    return segments


class SegmentedModel(keras.Model):
    """A functional model whose training call recomputes `segments` ({layer name:
    segment name}) in the backward pass; otherwise the functional model it is built as
    (same layers, same variables, same checkpoints)."""

    def __init__(self, inputs, outputs, *, segments: dict[str, str], ordered=False, name=None):
        super().__init__(inputs, outputs, name=name)
        # Plain strings: nothing here is tracked or checkpointed.
        self._segment_items = tuple(sorted(segments.items()))
        # Each segment's backward pass finished before the next one's (recompute_grad).
        self.ordered = bool(ordered)
        self._plan = None

    @property
    def segments(self) -> dict[str, str]:
        return dict(self._segment_items)

    def _steps(self):
        """The nodes in topological order, grouped: one list per segment, one per other node."""
        if self._plan is None:
            segments = dict(self._segment_items)
            steps, by_segment = [], {}
            for depth in sorted(self._nodes_by_depth, reverse=True):
                for node in self._nodes_by_depth[depth]:
                    if not node.operation or node.is_input:
                        continue
                    segment = segments.get(node.operation.name)
                    if segment is None:
                        steps.append([node])
                    elif segment in by_segment:
                        by_segment[segment].append(node)
                    else:
                        by_segment[segment] = [node]
                        steps.append(by_segment[segment])
            consumers = {}
            for step in steps:
                for node in step:
                    for tensor in node.input_tensors:
                        consumers.setdefault(id(tensor), set()).add(id(step))
            model_outputs = {id(tensor) for tensor in self.outputs}
            plan = []
            for step in steps:
                made = {id(tensor) for node in step for tensor in node.outputs}
                inputs = []
                for node in step:
                    for tensor in node.input_tensors:
                        if id(tensor) not in made and all(tensor is not t for t in inputs):
                            inputs.append(tensor)
                outputs = [
                    tensor
                    for node in step
                    for tensor in node.outputs
                    if id(tensor) in model_outputs or consumers.get(id(tensor), set()) - {id(step)}
                ]
                plan.append((step, inputs, outputs))
            self._plan = plan
        return self._plan

    def call(self, inputs, training=None, mask=None):
        if not training:
            return super().call(inputs, training=training, mask=mask)
        inputs = self._standardize_inputs(inputs)
        values = {id(x): y for x, y in zip(self.inputs, inputs, strict=True)}
        pending = list(self._steps())
        while pending:
            ready = [item for item in pending if all(id(t) in values for t in item[1])]
            if not ready:
                raise ValueError(f"{self.name}: the segments of --remat form a cycle.")
            for item in ready:
                pending.remove(item)
                nodes, step_inputs, step_outputs = item
                arguments = [values[id(t)] for t in step_inputs]
                if len(nodes) == 1:
                    results = _run(nodes, step_inputs, step_outputs, arguments, training)
                else:
                    results = _recompute(
                        nodes, step_inputs, step_outputs, arguments, training, self.ordered
                    )
                values.update(zip((id(t) for t in step_outputs), results, strict=True))
        outputs = [values[id(x)] for x in self.outputs]
        return outputs[0] if len(outputs) == 1 else outputs


def _run(nodes, step_inputs, step_outputs, arguments, training):
    values = {id(t): value for t, value in zip(step_inputs, arguments, strict=True)}
    for node in nodes:
        args, kwargs = node.arguments.fill_in(values)
        kwargs.pop("training", None)
        result = call_layer(node.operation, *args, training=training, **kwargs)
        values.update(zip((id(t) for t in node.outputs), keras.tree.flatten(result), strict=True))
    return [values[id(t)] for t in step_outputs]


def _recompute(nodes, step_inputs, step_outputs, arguments, training, ordered):
    record = _Pass()

    def segment(*arguments):
        outer = getattr(_STATE, "current", None)
        _STATE.current, record.index = record, 0
        try:
            return _run(nodes, step_inputs, step_outputs, arguments, training)
        finally:
            _STATE.current = outer
            record.calls += 1

    wrap = recompute_grad if ordered else tf.recompute_grad
    return wrap(segment)(*arguments)


def recompute_grad(function):
    """tf.recompute_grad(function), whose backward pass also finishes a segment before the
    next one starts: the gradients it passes on to the segment before it wait for its
    variables' gradients.

    Without it the input gradients ran ahead down the whole network, segment after
    segment, while each segment's variable gradients (the convolutions' filter
    gradients), which hold its recomputed inputs and its output gradients, waited: a
    memory profile of a remat U-Net step at 512x1024 (hd512) showed every decoder level's
    recomputed skip concatenation and gradients live at once, 64 + 64 MB at the
    outermost level alone, although tf.recompute_grad returns all gradients through one
    IdentityN. With the control dependency each segment's recomputed tensors are freed
    before the next segment is recomputed.
    Otherwise this is TensorFlow's recompute_grad (graph mode): the recomputation waits
    for the output gradients (a data dependency on them, which XLA keeps), and
    gradients that do not reach a variable are zeros.
    """

    @tf.custom_gradient
    def call(*arguments):
        # The forward pass is not recorded on the tapes (the gradient below replaces it).
        with _record.stop_recording():
            result = function(*arguments)

        def gradient(*output_gradients, variables=None):
            variables = list(variables or ())
            with tf.GradientTape() as tape:
                inputs = [tf.identity(x) for x in arguments]
                if not tf.executing_eagerly():
                    # Recompute only once the output gradients exist (as TensorFlow's).
                    first = tf.reshape(output_gradients[0], [-1])[:1]
                    ready = tf.cast(tf.reduce_max(first), tf.bool)
                    zero = tf.where(tf.equal(ready, ready), 0.0, float("nan"))
                    inputs = [x + tf.cast(zero, x.dtype) for x in inputs]
                tape.watch(inputs)
                tape.watch(variables)
                recomputed = function(*inputs)
            gradients = tape.gradient(
                recomputed,
                inputs + variables,
                output_gradients=list(output_gradients),
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            input_gradients, variable_gradients = (
                gradients[: len(inputs)],
                gradients[len(inputs) :],
            )
            if variable_gradients and not tf.executing_eagerly():
                with tf.control_dependencies(variable_gradients):
                    input_gradients = [tf.identity(g) for g in input_gradients]
            return input_gradients, variable_gradients

        return result, gradient

    return call


def discriminator_segments(layer_names) -> dict[str, str]:
    """{layer name: segment name} of a PatchGAN's layers (models/discriminator.py): each
    layer's convolution, norm and LeakyReLU (whose output, a feature, is kept)."""
    units = {name: _UNIT_PART.fullmatch(name) for name in layer_names}
    return {name: unit.group(1) for name, unit in units.items() if unit}


def segmented(model: keras.Model, *, generator: str, name: str | None = None) -> SegmentedModel:
    """`model`'s layers as a SegmentedModel with `generator_segments`."""
    segments = generator_segments([layer.name for layer in model.layers], generator=generator)
    return SegmentedModel(
        model.inputs,
        model.outputs,
        segments=segments,
        # The U-Net's levels hold their skip concatenations until their filter
        # gradients run: ordered, its remat peak at hd512 fell 58 MB (docs/generators.md);
        # the ResNet's live tensors rose 124 MB and global_local's did not change.
        ordered=generator == "unet",
        name=name or model.name,
    )
