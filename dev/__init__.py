"""Development tools, not part of brogue's runtime API: benchmarks and corpus generators.

`python -m dev bench NAME` runs a benchmark (`make bench-NAME`), `python -m dev synthetic` writes
the espeak-ng demo corpus (`make synthetic`), `python -m dev stress` is the fault drill.
`speech_like` makes numpy signals that YAMNet hears as speech, for tests without espeak-ng.
"""
