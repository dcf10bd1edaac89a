"""GGUF files run natively: the file read and mapped (reader.py), its tokenizer (tokenizer.py),
and the llama-family decoder that computes on its weights with the engine's kernels
(decoder.py)."""
