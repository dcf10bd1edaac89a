"""The decoding core: a runner feeds a model, proposers guess, one loop verifies.

runner.py (one model and its KV cache), loop.py (the decoding loop and its greedy rule),
sampling.py (the sampled rule), proposers/ (who guesses), draft_length.py (how far to guess
given what a pass costs), methods.py (method names and the proposer factory), stopping.py
(where an output ends), stats.py (what a run reports). Nothing here loads a model or knows
about prompts.
"""
