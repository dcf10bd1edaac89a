"""`specedit api`: an OpenAI-compatible chat completions server whose Predicted Outputs
(`prediction`) are the draft for speculative decoding. See README.md here."""
