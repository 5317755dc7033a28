"""Serving: from a trained generator to answers for clients.

Owns the serving graph with its signatures (`graph`), decoding to the generator's
channels and bit depth and PNG encoding (`codec`), the versioned SavedModel
export for TF Serving (`export`), the paper's test-time mode (`paper_mode`),
batch inference from the command line (`predict`) and the gRPC / REST clients
(`client`).
"""
