"""Silero VAD, a real offline speech model: voice activity per 32 ms chunk of 16 kHz audio.

The ``silero-vad`` wheel on PyPI (MIT licence, extra ``hoodwink[speech]``)
ships the model as TorchScript (``silero_vad/data/silero_vad.jit``) and as
ONNX. For every chunk of 512 samples it gives a speech probability; the
model is stateful (an LSTM carries over from chunk to chunk) and sees each
chunk with the 64 samples before it (zeros before the first chunk). A chunk
reads as speech when its probability is at least 0.5, the wheel's own
threshold (``get_speech_timestamps``).

:class:`SileroVAD` is the 16 kHz network rebuilt in plain PyTorch with the
weights of the TorchScript file: the front end (STFT as a convolution,
magnitude, four convolutions) runs on all chunks of all clips at once and
only the LSTM runs step by step (one fused ``nn.LSTM`` call). It equals the
TorchScript model's own streaming use, ``model(chunk, 16000)`` chunk by chunk
with its state and context, to about 1e-6 (a test proves it), and is some
50 times faster to differentiate. A clip whose length is not a multiple of 512
gets its last chunk padded with zeros, as the wheel's ``get_speech_timestamps``
and ``audio_forward`` do; a clip shorter than one chunk is one padded chunk.

Clip-level decision. :class:`SileroClip` turns the per-chunk logits ``z_i``
(speech probability ``sigmoid(z_i)``) into two class scores
``("no-speech", "speech")``: ``[0, s]``. The class "speech" wins when ``s > 0``.
``goal="hide"`` (the default): ``s = sum_i relu(z_i)`` when some chunk reads
as speech, else ``max_i z_i``, so the clip is "no-speech" exactly when *every*
chunk is below 0.5 and ``s`` measures how much speech is left. ``goal="show"``:
``s = min_i z_i`` when every chunk reads as speech, else ``-sum_i relu(-z_i)``,
so the clip is "speech" exactly when every chunk is at least 0.5. Only the
value of ``s`` is exact; its gradient is that of a smooth surrogate, a sum of
soft hinges ``t * softplus((z_i + k) / t)`` over the chunks (``-z_i`` for
"show") with margin ``k = 1`` and temperature ``t = 0.2``, so that one gradient
step works on every chunk still short of the goal instead of only the worst.
Ties at exactly ``p = 0.5`` (a logit within float rounding of 0) are left to
:func:`chunk_probabilities`, which applies the per-chunk rule itself.

Importing the ``silero_vad`` package sets ``torch.set_num_threads(1)`` for
the whole process; hoodwink never imports it, it only reads the wheel's data
files.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hoodwink._validation import check_choice, check_real
from hoodwink.errors import ConfigError, InputError, MissingDependencyError, ShapeError
from hoodwink.models.callable import CallableClassifier
from hoodwink.models.torch import TorchClassifier

__all__ = [
    "CHUNK", "CLASS_NAMES", "CONTEXT", "LEVELS", "RATE", "Goal", "SileroClip", "SileroVAD",
    "chunk_probabilities", "clip_score", "data_file", "load_net", "load_silero_vad",
    "load_silero_vad_onnx", "n_chunks", "streaming_probabilities",
]

#: Samples per chunk at 16 kHz (32 ms); one probability each.
CHUNK = 512
#: Samples of the previous chunk the model sees before each chunk.
CONTEXT = 64
#: The sample rate the model takes.
RATE = 16000
#: Class names of the clip-level decision.
CLASS_NAMES = ("no-speech", "speech")
#: 16-bit PCM over bounds (-1, 1): the grid k / 32768, k in [-32768, 32768].
LEVELS = 65537
Goal = Literal["hide", "show"]
_TINY = float(torch.finfo(torch.float32).tiny)

_SPEECH_EXTRA = ("Silero VAD needs the silero-vad wheel: pip install 'hoodwink[speech]' "
                 "(or pip install silero-vad).")
#: TorchScript parameter names -> SileroVAD's.
_NAMES = {
    "stft.forward_basis_buffer": "stft.weight",
    "encoder.0.reparam_conv.weight": "conv1.weight", "encoder.0.reparam_conv.bias": "conv1.bias",
    "encoder.1.reparam_conv.weight": "conv2.weight", "encoder.1.reparam_conv.bias": "conv2.bias",
    "encoder.2.reparam_conv.weight": "conv3.weight", "encoder.2.reparam_conv.bias": "conv3.bias",
    "encoder.3.reparam_conv.weight": "conv4.weight", "encoder.3.reparam_conv.bias": "conv4.bias",
    "decoder.rnn.weight_ih": "lstm.weight_ih_l0", "decoder.rnn.weight_hh": "lstm.weight_hh_l0",
    "decoder.rnn.bias_ih": "lstm.bias_ih_l0", "decoder.rnn.bias_hh": "lstm.bias_hh_l0",
    "decoder.decoder.2.weight": "head.weight", "decoder.decoder.2.bias": "head.bias",
}


def data_file(name: str) -> Path:
    """A file of the ``silero-vad`` wheel's ``silero_vad/data`` folder, found without importing it.

    Raises
    ------
    MissingDependencyError
        The wheel is not installed, or lacks the file.
    """
    spec = importlib.util.find_spec("silero_vad")  # finds; does not run the package
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        p = Path(root) / "data" / name
        if p.is_file():
            return p
    raise MissingDependencyError(
        f"{_SPEECH_EXTRA} (looked for silero_vad/data/{name})" if roots else _SPEECH_EXTRA
    )


def n_chunks(samples: int) -> int:
    """Number of 512-sample chunks of a clip of ``samples`` samples (the last one padded)."""
    return max(1, -(-int(samples) // CHUNK))


class SileroVAD(nn.Module):
    """The 16 kHz Silero VAD network in plain PyTorch, batched over clips and chunks.

    ``forward(x)`` takes clips of shape (N, T) at 16 kHz in [-1, 1] and returns
    the speech logit of every chunk, shape (N, ceil(T / 512)); the speech
    probability is its sigmoid. Build it with :func:`load_net`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stft = nn.Conv1d(1, 258, 256, stride=128, bias=False)
        self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
        self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
        self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        self.head = nn.Conv1d(128, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2:
            raise ShapeError(f"SileroVAD takes clips of shape (N, T); got {tuple(x.shape)}.")
        n, t = x.shape
        c = n_chunks(t)
        # Zeros before the first chunk (the model's initial context) and after the last.
        padded = F.pad(x, (CONTEXT, c * CHUNK - t))
        frames = padded.unfold(1, CHUNK + CONTEXT, CHUNK).reshape(n * c, 1, CHUNK + CONTEXT)
        z = self.stft(F.pad(frames, (0, CONTEXT), mode="reflect"))
        # The magnitude; the floor (1e-38) keeps its gradient finite at exact silence, where
        # sqrt's would be 0 * inf = NaN, and changes no value by more than 1e-19.
        z = (z[:, :129] ** 2 + z[:, 129:] ** 2).clamp_min(_TINY).sqrt()
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            z = F.relu(conv(z))
        h, _ = self.lstm(z.reshape(n, c, 128))
        out: torch.Tensor = F.conv1d(F.relu(h).transpose(1, 2), self.head.weight,
                                     self.head.bias)[:, 0]
        return out


@functools.lru_cache(maxsize=1)
def _jit_state() -> dict[str, torch.Tensor]:
    path = data_file("silero_vad.jit")
    # TorchScript, not a pickle: no code of the file runs in Python.
    jit = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    inner = jit._model
    found = {k: v.detach().clone() for k, v in [*inner.named_parameters(),
                                                 *inner.named_buffers()]}
    return {_NAMES[k]: v for k, v in found.items() if k in _NAMES}


def load_net() -> SileroVAD:
    """A fresh :class:`SileroVAD` with the weights of the wheel's TorchScript model, in eval mode.

    Raises
    ------
    MissingDependencyError
        ``silero-vad`` is not installed.
    """
    net = SileroVAD()
    net.load_state_dict(_jit_state())
    return net.eval()


@functools.lru_cache(maxsize=1)
def _shared_net() -> SileroVAD:
    net = load_net()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _as_clips(samples: Any, owner: str) -> torch.Tensor:
    if not isinstance(samples, torch.Tensor) or not samples.is_floating_point():
        raise InputError(f"{owner} takes a float tensor of shape (T,) or (N, T) at 16 kHz.")
    x = samples[None] if samples.ndim == 1 else samples
    if x.ndim != 2 or x.shape[1] == 0:
        raise ShapeError(
            f"{owner} takes samples of shape (T,) or (N, T) with T >= 1; got "
            f"{tuple(samples.shape)}."
        )
    return x.detach().float().cpu()


def chunk_probabilities(samples: torch.Tensor) -> torch.Tensor:
    """Speech probability of every 512-sample chunk, as the model's own streaming use gives it.

    Parameters
    ----------
    samples : torch.Tensor, shape (T,) or (N, T)
        16 kHz audio in [-1, 1].

    Returns
    -------
    torch.Tensor, shape (N, ceil(T / 512)), float32
        A chunk reads as speech when its probability is at least 0.5.
    """
    x = _as_clips(samples, "chunk_probabilities")
    with torch.no_grad():
        return torch.sigmoid(_shared_net()(x))


def streaming_probabilities(samples: torch.Tensor) -> torch.Tensor:
    """The reference: the TorchScript model run as its authors run it, chunk by chunk.

    ``model.reset_states()``, then ``model(chunk, 16000)`` for each zero-padded
    512-sample chunk in order, carrying its state and 64-sample context. Slow
    (one call per chunk); :func:`chunk_probabilities` gives the same numbers.

    Parameters
    ----------
    samples : torch.Tensor, shape (T,) or (N, T)

    Returns
    -------
    torch.Tensor, shape (N, ceil(T / 512))
    """
    x = _as_clips(samples, "streaming_probabilities")
    jit = torch.jit.load(str(data_file("silero_vad.jit")),  # type: ignore[no-untyped-call]
                         map_location="cpu")
    jit.eval()
    c = n_chunks(x.shape[1])
    x = F.pad(x, (0, c * CHUNK - x.shape[1]))
    jit.reset_states()
    with torch.no_grad():
        outs = [jit(x[:, i * CHUNK:(i + 1) * CHUNK], RATE) for i in range(c)]
    return torch.cat(outs, dim=1)


class SileroClip(nn.Module):
    """Two class scores ``("no-speech", "speech")`` for whole clips, from the chunk logits.

    Parameters
    ----------
    net : SileroVAD
    goal : {"hide", "show"}, default "hide"
        "hide": the clip is "speech" when any chunk reads as speech (so an
        attack away from "speech" must silence every chunk). "show": the clip
        is "speech" only when every chunk does (an attack towards "speech"
        must make every chunk read as speech). See the module docstring.
    margin : float >= 0, default 1.0
        Margin ``k`` of the surrogate's soft hinges, in logits.
    temperature : float > 0, default 0.2
        Temperature ``t`` of the soft hinges.
    """

    def __init__(self, net: SileroVAD, goal: Goal = "hide", *, margin: float = 1.0,
                 temperature: float = 0.2) -> None:
        super().__init__()
        self.net = net
        self.goal: Goal = check_choice("SileroClip", "goal", goal, get_args(Goal))
        self.margin = check_real("SileroClip", "margin", margin, low=0)
        self.temperature = check_real("SileroClip", "temperature", temperature, low=0,
                                      closed="neither")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        s = clip_score(z.detach(), self.goal)
        sign = 1.0 if self.goal == "hide" else -1.0
        t = self.temperature
        surrogate = sign * t * F.softplus((sign * z + self.margin) / t).sum(dim=1)
        # The exact value with the surrogate's gradient.
        s = s + (surrogate - surrogate.detach())
        return torch.stack([torch.zeros_like(s), s], dim=1)

    def extra_repr(self) -> str:
        return f"goal={self.goal!r}, margin={self.margin}, temperature={self.temperature}"


def clip_score(z: torch.Tensor, goal: Goal) -> torch.Tensor:
    """The clip's "speech" score ``s`` from chunk logits ``z`` of shape (N, C) (see the module)."""
    if goal == "hide":
        return torch.where(z.amax(dim=1) >= 0, F.relu(z).sum(dim=1), z.amax(dim=1))
    return torch.where(z.amin(dim=1) < 0, -F.relu(-z).sum(dim=1), z.amin(dim=1))


def load_silero_vad(goal: Goal = "hide", *,
                    device: str | torch.device | None = None) -> TorchClassifier:
    """Silero VAD as a :class:`~hoodwink.TorchClassifier` over 16 kHz clips of shape (T,).

    Parameters
    ----------
    goal : {"hide", "show"}, default "hide"
        Which clip-level decision the two classes encode (:class:`SileroClip`).
    device : str or torch.device, optional

    Returns
    -------
    TorchClassifier
        Inputs of shape (N, T), any T; bounds (-1, 1); ``levels=65537``, the
        16-bit grid ``k / 32768``; class names ``("no-speech", "speech")``.
    """
    return TorchClassifier(SileroClip(load_net(), goal).eval(), bounds=(-1.0, 1.0),
                           levels=LEVELS, class_names=CLASS_NAMES, device=device, batch_size=64)


class _OnnxStream:
    """Runs the wheel's ONNX model with onnxruntime, chunk by chunk, and scores whole clips.

    ``self(batch)`` takes a float32 array (n, T) and returns the clip scores
    ``[0, s]`` of :func:`clip_score`, from chunk logits ``log(p / (1 - p))`` of
    the ONNX probabilities ``p`` (clipped to [1e-30, 1 - 2**-24] first, so a
    saturated chunk gives a finite logit of the right sign).
    """

    def __init__(self, goal: Goal) -> None:
        from hoodwink.models.onnx import _ort

        ort = _ort()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.goal = goal
        self.session = ort.InferenceSession(str(data_file("silero_vad.onnx")), sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def probabilities(self, a: np.ndarray) -> np.ndarray:
        """Chunk probabilities (n, C) of clips ``a`` (n, T)."""
        n, t = a.shape
        c = n_chunks(t)
        x = np.zeros((n, CONTEXT + c * CHUNK), dtype=np.float32)
        x[:, CONTEXT:CONTEXT + t] = a
        state = np.zeros((2, n, 128), dtype=np.float32)
        sr = np.array(RATE, dtype=np.int64)
        out = np.empty((n, c), dtype=np.float32)
        for i in range(c):
            p, state = self.session.run(
                None, {"input": x[:, i * CHUNK:i * CHUNK + CHUNK + CONTEXT], "state": state,
                       "sr": sr})
            out[:, i] = p[:, 0]
        return out

    def __call__(self, a: np.ndarray) -> np.ndarray:
        p = np.clip(self.probabilities(a).astype(np.float64), 1e-30, 1 - 2.0**-24)
        z = torch.from_numpy(np.log(p) - np.log1p(-p))
        s = clip_score(z, self.goal).numpy()
        return np.stack([np.zeros_like(s), s], axis=1)


def load_silero_vad_onnx(goal: Goal = "hide", *,
                         device: str | torch.device | None = None) -> CallableClassifier:
    """Silero VAD's ONNX file through onnxruntime, scores only: the black-box target.

    Parameters
    ----------
    goal : {"hide", "show"}, default "hide"
        As in :func:`load_silero_vad`; the scores are the same clip scores,
        computed from the ONNX model's chunk probabilities.
    device : None or "cpu"
        onnxruntime runs on the CPU here.

    Returns
    -------
    CallableClassifier
        Output "logits" (no gradients), bounds (-1, 1), ``levels=65537``,
        class names ``("no-speech", "speech")``. The wrapped
        :class:`_OnnxStream` is ``model.fn``. Queries are counted by the
        attacks' query gate, one per clip scored.

    Notes
    -----
    :class:`hoodwink.OnnxClassifier` maps one input to one output per call and
    cannot carry the model's state from chunk to chunk, so the loop over
    chunks lives here, around the same onnxruntime session.
    """
    if device is not None and torch.device(device).type != "cpu":
        raise ConfigError(
            f"silero-vad-onnx runs on the CPU through onnxruntime; got device={device!r}. "
            "Leave device out, or use silero-vad (PyTorch) for another device."
        )
    goal = check_choice("load_silero_vad_onnx", "goal", goal, get_args(Goal))
    return CallableClassifier(_OnnxStream(goal), num_classes=2, bounds=(-1.0, 1.0),
                              output="logits", levels=LEVELS, class_names=CLASS_NAMES,
                              batch_size=16)
