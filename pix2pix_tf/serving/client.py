"""Clients for a pix2pix model served by TF Serving: gRPC and REST.

    python -m pix2pix_tf.serving_client --grpc localhost:8500 --input a.png --output out/
    python -m pix2pix_tf.serving_client --rest http://localhost:8501 --input a.png --output out/

gRPC needs tensorflow-serving-api, installed without a second TensorFlow:
`pip install --no-deps tensorflow-serving-api==2.21.0` (its other dependencies, grpcio
and protobuf, come with TensorFlow). REST needs only the standard library.
"""

from __future__ import annotations

import base64
import json
import urllib.request

INPUT_KEY = "image_bytes"
OUTPUT_KEY = "image_bytes"
# Generated PNGs of large inputs exceed gRPC's default 4 MiB message limit.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def grpc_generate(
    address: str,
    images: list[bytes],
    model_name: str = "pix2pix",
    signature_name: str = "serving_default",
    timeout: float = 60.0,
) -> list[bytes]:
    """Encoded input images -> PNG bytes, through PredictionService.Predict."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs[INPUT_KEY].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return list(response.outputs[OUTPUT_KEY].string_val)


def rest_generate(
    url: str,
    images: list[bytes],
    model_name: str = "pix2pix",
    signature_name: str = "serving_default",
    timeout: float = 60.0,
) -> list[bytes]:
    """Encoded input images -> PNG bytes, through POST /v1/models/<name>:predict."""
    body = {
        "signature_name": signature_name,
        "instances": [{"b64": base64.b64encode(image).decode("ascii")} for image in images],
    }
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model_name}:predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        predictions = json.load(response)["predictions"]
    # An output whose name ends in `_bytes` comes back base64-encoded as {"b64": ...}.
    return [base64.b64decode(prediction["b64"]) for prediction in predictions]
