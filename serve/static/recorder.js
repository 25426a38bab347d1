// The microphone's samples, as the audio thread sees them, handed to the page in blocks.
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels.length) this.port.postMessage(channels[0].slice());
    return true;
  }
}
registerProcessor("capture", Capture);
