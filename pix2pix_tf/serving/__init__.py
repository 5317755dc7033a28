"""Serving: from a trained generator to answers for clients.

Owns the serving graph with its signatures (`graph`), the versioned SavedModel
export for TF Serving (`export`), the paper's test-time mode (`paper_mode`),
batch inference from the command line (`predict`) and the gRPC / REST clients
(`client`).
"""
