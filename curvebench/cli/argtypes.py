"""argparse types and option groups shared by every ``curvebench`` subcommand.

Each type raises :class:`argparse.ArgumentTypeError`, so argparse names the option in its
one-line error.
"""

from __future__ import annotations

import argparse

from probes.weights_spec import WeightsSpec

__all__ = ["positive_int", "nonnegative_int", "name_list", "int_list", "weights_spec", "input_transform",
           "INPUT_TRANSFORM_HELP", "add_model_options", "channel_selection", "CHANNELS_HELP"]

INPUT_TRANSFORM_HELP = (
    "for 'module.path:factory' models: map from images in [0, 1] to the network's input: identity, imagenet "
    "(torchvision mean/std), pm1 ((x-0.5)/0.5), caffe (x*255-117), or affine:SCALE:SHIFT (each one number or "
    "three comma-separated, per RGB); default the module's `input_transform` attribute, else identity")


#: ``--channels`` of plot and report (sweep files).
CHANNELS_HELP = (
    "channels to show: auto (default) = the layer's known curve family (the article's for InceptionV1), else the "
    "curve detectors of a `curvebench discover` family.nc of the same model and weights found beside the file or "
    "in ./results, else the channels that pass discover's curve-detector test on the sweep itself (one polarity), "
    "at most 16, evenly spaced in preferred orientation; all; family (the known family); ids like 3,17,42; or a "
    "FAMILY.nc of `curvebench discover`. Each figure says how its channels were chosen")


def _int_at_least(text: str, minimum: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
    if n < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {n}")
    return n


def positive_int(text: str) -> int:
    """An integer >= 1 (counts and sizes)."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0)


def name_list(text: str) -> list[str]:
    """A comma-separated list of names (layers, channels as text), blanks dropped; at least one."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return names


def int_list(text: str) -> list[int]:
    """A comma-separated list of integers (channel ids); at least one."""
    try:
        return [int(s) for s in name_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def channel_selection(*allowed: str):
    """The ``--channels`` type of a command that accepts the selection modes ``allowed``
    (see :mod:`suites.specs.channel_selection`; all of them when none is named)."""
    from suites.specs.channel_selection import MODES, parse_channels

    modes = tuple(allowed) or MODES

    def parse(text: str):
        try:
            return parse_channels(text, modes)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "channels"  # argparse names the type in some messages
    return parse


def weights_spec(text: str) -> WeightsSpec:
    """``--weights``: a weights file path or ``random``, parsed once into a :class:`~probes.weights_spec.WeightsSpec`."""
    try:
        return WeightsSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_transform(text: str) -> str:
    """An ``--input-transform`` value (see ``probes.parse_input_transform``), checked, returned as text."""
    from probes.base import parse_input_transform

    try:
        parse_input_transform(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_model_options(parser: argparse.ArgumentParser, *, default: str | None = "groundtruth",
                      weights_default: str = "the cached download; groundtruth takes none") -> None:
    """``--model`` (a registry id or ``module.path:factory``), ``--input-transform`` and ``--weights``.

    ``default=None`` makes ``--model`` required.
    """
    text = ("model id, e.g. inceptionv1, efficientnet-lite0, groundtruth (see `curvebench models`), or "
            "module.path:factory for any torch model (a callable returning an nn.Module)")
    if default is None:
        parser.add_argument("--model", required=True, help=text)
    else:
        parser.add_argument("--model", default=default, help=f"{text} (default {default})")
    parser.add_argument("--input-transform", type=input_transform, default=None, metavar="FORM",
                        help=INPUT_TRANSFORM_HELP)
    parser.add_argument("--weights", type=weights_spec, default=None, metavar="PATH",
                        help=f"weights file or 'random' (default: {weights_default})")
