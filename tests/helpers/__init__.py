"""Test helpers shared by every part: tiny models, a scripted model, an LSP client."""
