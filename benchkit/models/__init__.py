"""Models: references and the hub, the GGUF reader, shape-exact synthetic stand-ins, presets and quantization types."""
