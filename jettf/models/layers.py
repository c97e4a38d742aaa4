"""Custom Keras 3 layers shared by the model zoo.

Every layer here uses public Keras 3 APIs only (``keras.ops``, ``keras.layers.Layer``), so it runs on the
TensorFlow and the JAX backend, and is registered with
``keras.saving.register_keras_serializable(package="jettf")`` so that ``.keras`` files load after
``import jettf.models`` without ``custom_objects``.
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = [
    "ClassProbabilities",
    "ImagenetPreprocess",
    "ConstituentFeatures",
    "WeightedSum",
    "SeparableResize",
    "PFN_FEATURES",
    "PFN_LINEAR_FEATURES",
    "PFN_FEATURE_SCALING",
    "EFN_FEATURES",
]

_PACKAGE = "jettf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassProbabilities(keras.layers.Layer):
    """Softmax over the last axis, always in float32, carrying the class names.

    The zoo's output layer (named ``"probabilities"``). It computes in float32 whatever the global dtype
    policy (so ``mixed_bfloat16`` training keeps a float32 softmax and loss), and it stores the class names and
    a small JSON-able build record in its config, so both survive ``model.save("x.keras")`` /
    ``keras.saving.load_model``. Read them with ``jettf.models.model_class_names(model)`` and
    ``jettf.models.model_metadata(model)``.
    """

    def __init__(self, class_names=None, metadata=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.class_names = [str(c) for c in class_names] if class_names is not None else None
        self.metadata = dict(metadata) if metadata else {}

    def call(self, logits):
        return ops.softmax(ops.cast(logits, "float32"), axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"class_names": self.class_names, "metadata": self.metadata})
        return config


# Keras' `imagenet_utils.preprocess_input` constants (channels last), reproduced with keras.ops so that the
# backbone preprocessing lives inside the model as a serializable layer instead of a Lambda.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ImagenetPreprocess(keras.layers.Layer):
    """``keras.applications.<backbone>.preprocess_input`` as a layer, after multiplying by ``scale``.

    ``mode`` is the one the backbone expects: ``"caffe"`` (ResNet50: RGB->BGR, subtract the ImageNet mean
    pixel), ``"tf"`` (InceptionV3: map [0, 255] to [-1, 1]) or ``"torch"``. ImageNet backbones expect pixels in
    [0, 255]; jet images of pT fractions live in [0, 1], so ``scale`` (default 255) brings them to that range
    first. Inputs must have 3 channels (channels last). Computes in float32; note that under ``mixed_bfloat16``
    the backbone still casts the result (pixel values shifted by ~100 in "caffe" mode) to bfloat16, whose
    ~3 significant digits blur pixels below ~1 % of the image maximum.
    """

    def __init__(self, mode="caffe", scale=1.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf", "torch"):
            raise ValueError(f"ImagenetPreprocess: mode={mode!r}; expected 'caffe', 'tf' or 'torch'")
        self.mode = mode
        self.scale = float(scale)

    def call(self, x):
        x = x * ops.cast(self.scale, x.dtype)
        if self.mode == "tf":
            return x / ops.cast(127.5, x.dtype) - ops.cast(1.0, x.dtype)
        if self.mode == "torch":
            x = x / ops.cast(255.0, x.dtype)
            mean = ops.cast(ops.convert_to_tensor(_TORCH_MEAN), x.dtype)
            std = ops.cast(ops.convert_to_tensor(_TORCH_STD), x.dtype)
            return (x - mean) / std
        x = ops.flip(x, axis=-1)  # RGB -> BGR
        return x - ops.cast(ops.convert_to_tensor(_CAFFE_MEAN_BGR), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "scale": self.scale})
        return config


#: Per-particle features computed by ``ConstituentFeatures(mode="pfn")``, in this order.
PFN_FEATURES = (
    "log_pt",  # log(pT / GeV)
    "log_e",  # log(E / GeV)
    "log_pt_frac",  # log(pT / sum pT)
    "log_e_frac",  # log(E / sum E)
    "delta_eta",  # eta - eta_c (pT-weighted centroid)
    "delta_phi",  # wrap(phi - phi_c)
    "delta_r",  # hypot(delta_eta, delta_phi)
)
#: Fixed (centre, scale) applied as (x - centre) * scale to the PFN features so they are O(1): the values of
#: ParticleNet / ParT's JetClass input configuration (weaver), whose particle features these are.
PFN_FEATURE_SCALING = {
    "log_pt": (1.7, 0.7),
    "log_e": (2.0, 0.7),
    "log_pt_frac": (-4.7, 0.7),
    "log_e_frac": (-4.7, 0.7),
    "delta_eta": (0.0, 1.0),
    "delta_phi": (0.0, 1.0),
    "delta_r": (0.2, 4.0),
}
#: Per-particle features of ``ConstituentFeatures(mode="pfn", features="linear")``: 004's PFN inputs (App. A.1.2:
#: the pixels' own values, standardized by the model's ``constituents_norm`` layer with training statistics).
PFN_LINEAR_FEATURES = ("pt", "delta_eta", "delta_phi")
#: Angular inputs of the EFN's Phi network; the EFN's weights are the pT fractions z_i.
EFN_FEATURES = ("delta_eta", "delta_phi")


def _wrap_phi(x):
    """Wrap an angle difference (radians) into [-pi, pi)."""
    two_pi = ops.cast(2.0 * math.pi, x.dtype)
    pi = ops.cast(math.pi, x.dtype)
    return ops.mod(x + pi, two_pi) - pi


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SeparableResize(keras.layers.Layer):
    """``keras.layers.Resizing`` (any interpolation, antialiasing included) as two matrix products.

    Image resizing is separable and linear, so it equals ``A @ x @ B^T`` per channel, with ``A`` the resize of
    the identity along the height and ``B`` along the width, computed once by ``keras.ops.image.resize`` itself:
    the same numbers as ``Resizing`` (to float rounding), in a form every exporter can express (ONNX has no
    antialiased resize; TensorFlow's ``ScaleAndTranslate`` op does not convert).
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", antialias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)
        self.interpolation, self.antialias = interpolation, bool(antialias)

    def _matrix(self, size_in: int, size_out: int):
        """``[size_out, size_in]``: the resize of each unit impulse along one axis."""
        impulses = ops.reshape(ops.eye(size_in, dtype="float32"), (size_in, size_in, 1, 1))
        resized = ops.image.resize(impulses, (size_out, 1), interpolation=self.interpolation,
                                   antialias=self.antialias, data_format="channels_last")
        return ops.transpose(ops.reshape(resized, (size_in, size_out)))

    def build(self, input_shape):
        self.rows = self._matrix(int(input_shape[1]), self.height)
        self.columns = self._matrix(int(input_shape[2]), self.width)
        self.built = True

    def call(self, x):
        return ops.einsum("hp,bpqc,wq->bhwc", ops.cast(self.rows, x.dtype), x, ops.cast(self.columns, x.dtype))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, interpolation=self.interpolation,
                      antialias=self.antialias)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConstituentFeatures(keras.layers.Layer):
    """Per-particle inputs of the Deep-Sets models from zero-padded constituents ``[N, M, 4]``.

    Input columns are (pt [GeV], eta, phi [rad], energy [GeV]); a particle is real when pt > 0 (padding is
    all zeros). With ``center="centroid"`` (jets) angles are taken relative to the jet's pT-weighted centroid:
    eta_c = sum z_i eta_i and phi_c = phi_lead + sum z_i wrap(phi_i - phi_lead) (computed around the hardest
    particle so that jets across the phi = +-pi seam are handled), with z_i = pT_i / sum_j pT_j. With
    ``center="origin"`` the angles are taken as given: inputs already relative to an object's position, e.g.
    calorimeter pixels around a muon, whose angle to the muon 004 (section 4.6) finds essential.

    Returns ``(weights [N, M], features [N, M, K])``:

    * ``mode="efn"``: weights are the pT fractions z_i (IRC-safe energy weighting, Komiske et al. 2019) and
      features are (delta_eta, delta_phi), see ``EFN_FEATURES``.
    * ``mode="pfn"``: weights are the 0/1 particle mask (a masked sum) and features are ``PFN_FEATURES``,
      brought to O(1) by the fixed ``PFN_FEATURE_SCALING`` unless ``scaled=False``; with ``features="linear"``
      they are ``PFN_LINEAR_FEATURES`` as they are (the model standardizes them).

    Padded particles get weight 0 and all-zero features. Computed in float32 even under mixed precision.
    """

    def __init__(self, mode="pfn", scaled=True, center="centroid", features="log", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in ("pfn", "efn"):
            raise ValueError(f"ConstituentFeatures: mode={mode!r}; expected 'pfn' or 'efn'")
        if center not in ("centroid", "origin"):
            raise ValueError(
                f"ConstituentFeatures: center={center!r}; expected 'centroid' (jets) or 'origin' (angles as given)"
            )
        if features not in ("log", "linear"):
            raise ValueError(f"ConstituentFeatures: features={features!r}; expected 'log' or 'linear'")
        self.mode = mode
        self.scaled = bool(scaled)
        self.center = center
        self.features = features

    def call(self, constituents):
        x = ops.cast(constituents, "float32")
        pt, eta, phi, energy = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
        mask = ops.cast(pt > 0.0, "float32")
        tiny = 1e-12
        pt_sum = ops.sum(pt * mask, axis=1, keepdims=True)
        z = pt * mask / ops.maximum(pt_sum, tiny)
        if self.center == "origin":
            deta, dphi = eta * mask, phi * mask
        else:
            lead = ops.argmax(pt, axis=1)
            phi_lead = ops.take_along_axis(phi, ops.expand_dims(lead, 1), axis=1)
            eta_c = ops.sum(z * eta, axis=1, keepdims=True)
            phi_c = phi_lead + ops.sum(z * _wrap_phi(phi - phi_lead), axis=1, keepdims=True)
            deta = (eta - eta_c) * mask
            dphi = _wrap_phi(phi - phi_c) * mask
        if self.mode == "efn":
            return z, ops.stack([deta, dphi], axis=-1)
        if self.features == "linear":
            return mask, ops.stack([pt * mask, deta, dphi], axis=-1)

        def safe_log(v):
            return ops.where(mask > 0, ops.log(ops.maximum(v, tiny)), 0.0)

        e_sum = ops.sum(energy * mask, axis=1, keepdims=True)
        raw = {
            "log_pt": safe_log(pt),
            "log_e": safe_log(energy),
            "log_pt_frac": safe_log(z),
            "log_e_frac": safe_log(energy / ops.maximum(e_sum, tiny)),
            "delta_eta": deta,
            "delta_phi": dphi,
            "delta_r": ops.sqrt(deta * deta + dphi * dphi),
        }
        feats = []
        for key in PFN_FEATURES:
            centre, scale = PFN_FEATURE_SCALING[key]
            feats.append((raw[key] - centre) * scale * mask if self.scaled else raw[key])
        return mask, ops.stack(feats, axis=-1)

    def compute_output_shape(self, input_shape):
        n, m = input_shape[0], input_shape[1]
        k = len(EFN_FEATURES if self.mode == "efn" else PFN_LINEAR_FEATURES if self.features == "linear"
                else PFN_FEATURES)
        return (n, m), (n, m, k)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "scaled": self.scaled, "center": self.center, "features": self.features})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WeightedSum(keras.layers.Layer):
    """Sum over particles: ``[N, M, L], [N, M] -> [N, L]`` with ``out = sum_i w_i * phi_i``.

    With 0/1 weights it is the PFN's masked sum; with pT fractions it is the EFN's energy-weighted sum.
    """

    def call(self, inputs):
        phi, weights = inputs
        weights = ops.cast(weights, phi.dtype)
        return ops.sum(phi * ops.expand_dims(weights, -1), axis=1)

    def compute_output_shape(self, input_shape):
        phi_shape = input_shape[0]
        return (phi_shape[0], phi_shape[-1])
