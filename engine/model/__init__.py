"""The engine's own forward pass over GGUF weights."""
