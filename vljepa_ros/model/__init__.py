"""The VL-JEPA network, ROS-free: X-encoder (V-JEPA 2), predictor (Llama layers), Y-encoder (EmbeddingGemma),
Y-decoders, presets, checkpoints, loss and training. Import submodules directly, e.g.
`from vljepa_ros.model.checkpoint import load_model`."""
