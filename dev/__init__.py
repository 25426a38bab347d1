"""Development tools, not part of brogue's runtime API: benchmarks and corpus generators.

`brogue bench NAME` runs a benchmark, `brogue synthetic` writes the espeak-ng demo corpus.
`speech_like` makes numpy signals that YAMNet hears as speech, for tests without espeak-ng.
"""
