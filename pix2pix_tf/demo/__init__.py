"""The interactive browser demo: paint a label map, watch the generated image appear.

    python -m pix2pix_tf.demo --model checkpoints/synthetic-quick

serves one page on http://127.0.0.1:8000/ (`__main__.py`): a canvas to paint with the
dataset's classes (the Cityscapes palette by name) or any colour, an eraser, brush size,
undo and clear, uploads and the val split's inputs as starting points, and the
generated image beside the input after each stroke. The page (`static/`) is plain HTML
and JavaScript served by the standard library's HTTP server (`server.py`), with nothing
loaded from elsewhere; the model is predict.py's or a TF Serving REST endpoint
(`backend.py`).
"""
