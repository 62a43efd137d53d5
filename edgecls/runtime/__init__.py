"""What a camera box needs, and nothing more: the spec, artifact files, image decoding, preprocessing, the
Predictor over one module per runtime (backends/, found through the one runtime table in runtimes.py), streams, drift
monitoring, the on-device self-check.

It imports nothing from edgecls but the error types and the version (tests/test_layering.py), so
`pip install 'edgecls[onnx]'` on a device never loads training, compression, export or reporting code.
"""
