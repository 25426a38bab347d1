"""`brogue serve`: a trained run behind an HTTP API and one page (the `serve/` folder).

- `settings.py`: what a server is told (the run, limits, token, CORS), one frozen object;
- `inference.py`: the guards in front of brogue's inference (the duration, read from the
  header before decoding) and the loaded model, which answers through `brogue.inference`;
- `batcher.py`: requests arriving together go through the engine together;
- `upload.py`: a request's audio into a temporary file and then a waveform, within the limits;
- `app.py`: the FastAPI app factory: routes that translate HTTP to those calls, errors mapped
  to status codes in one place;
- `figure.py`: what the page draws beside an answer;
- `commands.py`: the `serve` verb (uvicorn); `static/`: the page, with every asset local.
"""
